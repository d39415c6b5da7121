// The Ready contract between the core and its driver (raft.h; etcd-io/raft
// rawnode.go; thesis §3.8 and §10.2.1): what is durable before which message
// may leave, and what the core may assume once advance() is called.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "consensus/raft.h"
#include "tests/support/cluster.h"

namespace tenure::testing {
namespace {

NodeId nid(const char* s) { return NodeId(s); }

/// A member of voters a, b, c restarting from `log` at `hs` (membership from
/// an index-0 snapshot, so the log holds only what the test puts there).
std::unique_ptr<Raft> member(const char* id, std::vector<Entry> log = {}, HardState hs = {},
                             TestingKnobs knobs = {}) {
  RaftConfig cfg;
  cfg.id = NodeId(id);
  cfg.knobs = knobs;
  InitialState s;
  s.snapshot.conf.voters = {nid("a"), nid("b"), nid("c")};
  s.entries = std::move(log);
  s.hard_state = hs;
  return std::make_unique<Raft>(cfg, std::move(s));
}

std::vector<Entry> entries(uint64_t first, uint64_t last, uint64_t term) {
  std::vector<Entry> out;
  for (uint64_t i = first; i <= last; ++i) out.push_back(Entry{Term(term), LogIndex(i), EntryType::kNormal, "e"});
  return out;
}

Message append(const char* from, uint64_t term, uint64_t prev, uint64_t prev_term, std::vector<Entry> ents,
               uint64_t commit = 0) {
  Message m;
  m.type = MessageType::kAppend;
  m.from = nid(from);
  m.to = nid("b");
  m.term = Term(term);
  m.index = LogIndex(prev);
  m.log_term = Term(prev_term);
  m.entries = std::move(ents);
  m.commit = LogIndex(commit);
  return m;
}

bool has_type(const std::vector<Message>& msgs, MessageType t) {
  for (const auto& m : msgs) {
    if (m.type == t) return true;
  }
  return false;
}

// §3.8: a follower may acknowledge entries only once they are durable, so its
// AppendResponse travels in Ready::messages (sent after the fsync), never in
// early_messages.
TEST(RaftReady, FollowerAckIsSentOnlyAfterPersisting) {
  auto b = member("b");
  b->step(append("a", 2, 0, 0, entries(1, 3, 2)));
  Ready rd = b->ready();
  EXPECT_EQ(rd.entries.size(), 3u);
  EXPECT_FALSE(has_type(rd.early_messages, MessageType::kAppendResponse));
  ASSERT_TRUE(has_type(rd.messages, MessageType::kAppendResponse));
  EXPECT_TRUE(rd.must_sync());
  b->advance();

  // The planted bug acknowledges early: this check is what catches it.
  TestingKnobs bug;
  bug.ack_append_before_persist = true;
  auto buggy = member("b", {}, {}, bug);
  buggy->step(append("a", 2, 0, 0, entries(1, 3, 2)));
  EXPECT_TRUE(has_type(buggy->ready().early_messages, MessageType::kAppendResponse));
}

// §3.8: currentTerm and votedFor are durable before the vote is granted: the
// Ready that carries the VoteResponse names the new hard state, and the
// response may only go out after it is persisted.
TEST(RaftReady, VoteIsDurableBeforeItsResponseLeaves) {
  auto b = member("b", {}, HardState{Term(1), NodeId(), LogIndex(0)});
  Message v;
  v.type = MessageType::kVote;
  v.from = nid("c");
  v.to = nid("b");
  v.term = Term(2);
  b->step(v);
  Ready rd = b->ready();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term, Term(2));
  EXPECT_EQ(rd.hard_state->vote, nid("c"));
  EXPECT_FALSE(has_type(rd.early_messages, MessageType::kVoteResponse));
  ASSERT_TRUE(has_type(rd.messages, MessageType::kVoteResponse));
  b->advance();
  EXPECT_FALSE(b->has_ready());

  TestingKnobs bug;
  bug.forget_vote_on_persist = true;
  auto buggy = member("b", {}, HardState{Term(1), NodeId(), LogIndex(0)}, bug);
  buggy->step(v);
  Ready brd = buggy->ready();
  ASSERT_TRUE(brd.hard_state.has_value());
  EXPECT_TRUE(brd.hard_state->vote.empty());
}

// A candidate's own term and vote are in the Ready that carries its
// RequestVotes, and those wait for the fsync too.
TEST(RaftReady, CandidatePersistsTermAndSelfVoteBeforeAskingForVotes) {
  auto b = member("b", {}, HardState{Term(1), NodeId(), LogIndex(0)});
  b->campaign();  // pre-vote first: no durable change, may go out at once
  Ready pre = b->ready();
  EXPECT_FALSE(pre.hard_state.has_value());
  EXPECT_TRUE(has_type(pre.messages, MessageType::kPreVote));
  b->advance();
  Message grant;
  grant.type = MessageType::kPreVoteResponse;
  grant.from = nid("a");
  grant.to = nid("b");
  grant.term = Term(2);
  b->step(grant);
  ASSERT_EQ(b->role(), Role::kCandidate);
  Ready rd = b->ready();
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term, Term(2));
  EXPECT_EQ(rd.hard_state->vote, nid("b"));
  EXPECT_FALSE(has_type(rd.early_messages, MessageType::kVote));
  EXPECT_TRUE(has_type(rd.messages, MessageType::kVote));
}

// §10.2.1: the leader may send its appends while it writes its own log, but
// it must not count its own copy toward commitment before advance() says the
// write is durable: otherwise one follower's ack plus the leader's unsynced
// write would "commit" an entry stored durably on one member only.
TEST(RaftReady, LeaderCountsItselfOnlyAfterAdvance) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  Raft& a = c.node("a");
  auto ticket = a.propose("x");
  ASSERT_TRUE(ticket.ok());
  LogIndex x = ticket.value().index;
  Ready rd = a.ready();
  ASSERT_EQ(rd.entries.size(), 1u);
  ASSERT_FALSE(rd.early_messages.empty());  // sent before the leader's own fsync
  for (const auto& m : rd.early_messages) {
    if (m.to == nid("b")) c.queue().push_back(m);
  }
  // b persists and acknowledges; a has not persisted x yet.
  c.deliver_all();
  while (c.process_ready("b")) {
  }
  for (auto& m : c.queue()) {
    if (m.to == nid("a")) a.step(m);
  }
  c.queue().clear();
  EXPECT_LT(a.log().committed(), x);
  // Now a's write is durable: a and b are a majority.
  c.storage("a").persist(rd);
  a.advance();
  EXPECT_EQ(a.log().committed(), x);
}

// The driver may step messages between ready() and advance() (as with
// etcd-io/raft's RawNode). If such a message replaces entries that the
// outstanding Ready is persisting, advance() must not mark the replacements
// stable: they were never handed out, and the ack for them would claim a
// write that never happened.
TEST(RaftReady, EntriesReplacedBetweenReadyAndAdvanceAreStillPersisted) {
  auto b = member("b", entries(1, 4, 1), HardState{Term(2), NodeId(), LogIndex(4)});
  b->step(append("a", 2, 4, 1, entries(5, 10, 2), 4));
  Ready first = b->ready();
  ASSERT_EQ(first.entries.size(), 6u);
  // Before the driver is done, the leader of term 3 overwrites 5..7.
  b->step(append("c", 3, 4, 1, entries(5, 7, 3), 4));
  b->advance();
  Ready second = b->ready();
  EXPECT_EQ(second.entries, entries(5, 7, 3));
  bool acked = false;
  for (const auto& m : second.messages) {
    if (m.type == MessageType::kAppendResponse && m.to == nid("c") && !m.reject) {
      acked = true;
      EXPECT_EQ(m.index, LogIndex(7));
    }
  }
  EXPECT_TRUE(acked);
  b->advance();
}

// Non-rejecting AppendResponses to `to` among `msgs`, by acknowledged index.
std::vector<LogIndex> acks_to(const std::vector<Message>& msgs, const char* to) {
  std::vector<LogIndex> out;
  for (const auto& m : msgs) {
    if (m.type == MessageType::kAppendResponse && !m.reject && m.to == nid(to)) out.push_back(m.index);
  }
  return out;
}

// tenure-sim seed 572 (async_fsync): while a Ready's fsync is in flight the
// driver steps on, so an ack for the old leader waits in the core for the
// next Ready. A newer leader then replaces the acknowledged entries. The
// next Ready persists the replacement, and the waiting ack must not leave
// with it: it claims entries (6 and 7 of term 2) that the durable log no
// longer holds once that Ready is written.
TEST(RaftReady, AckWaitingForTheNextReadyIsDroppedWhenItsEntriesAreReplaced) {
  auto b = member("b", entries(1, 4, 1), HardState{Term(2), NodeId(), LogIndex(4)});
  b->step(append("a", 2, 4, 1, entries(5, 5, 2), 4));
  Ready first = b->ready();  // persisting 5; the driver keeps stepping
  ASSERT_EQ(first.entries, entries(5, 5, 2));
  b->step(append("a", 2, 5, 2, entries(6, 6, 2), 4));
  b->step(append("a", 2, 6, 2, entries(7, 7, 2), 4));
  // The leader of term 3 has 6 of term 3: our 6 and 7 are replaced.
  b->step(append("c", 3, 5, 2, entries(6, 6, 3), 4));
  EXPECT_EQ(b->log().last_index(), LogIndex(6));
  b->advance();  // the fsync of 5 is done; its ack of 5 is true
  Ready second = b->ready();
  EXPECT_EQ(second.entries, entries(6, 6, 3));
  for (LogIndex i : acks_to(second.messages, "a")) EXPECT_LE(i, LogIndex(5)) << "acknowledges a replaced entry";
  EXPECT_EQ(acks_to(second.messages, "c"), std::vector<LogIndex>{LogIndex(6)});
  b->advance();
}

// The same through a snapshot: entries past the commit index that a waiting
// ack names are gone once a snapshot replaces the log.
TEST(RaftReady, AckWaitingForTheNextReadyIsDroppedWhenASnapshotReplacesTheLog) {
  auto b = member("b", entries(1, 4, 1), HardState{Term(2), NodeId(), LogIndex(4)});
  b->step(append("a", 2, 4, 1, entries(5, 6, 2), 4));
  Message snap;
  snap.type = MessageType::kSnapshot;
  snap.from = nid("c");
  snap.to = nid("b");
  snap.term = Term(3);
  snap.snapshot = Snapshot{LogIndex(7), Term(3), ConfState{}, std::make_shared<const std::string>("s")};
  snap.snapshot->conf.voters = {nid("a"), nid("b"), nid("c")};
  b->step(snap);
  Ready rd = b->ready();
  ASSERT_TRUE(rd.snapshot.has_value());
  for (LogIndex i : acks_to(rd.messages, "a")) EXPECT_LE(i, LogIndex(4)) << "acknowledges an entry not in the snapshot";
  EXPECT_EQ(acks_to(rd.messages, "c"), std::vector<LogIndex>{LogIndex(7)});
  b->advance();
}

// Committed entries handed out for applying never include one that no Ready
// has handed out for persisting, and each entry is applied once.
TEST(RaftReady, EachEntryIsPersistedBeforeOrWithItsApplication) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c.node("a").propose_batch({"p", "q"}).ok());
  c.stabilize();
  for (const auto& id : c.ids()) {
    const auto& applied = c.applied(id);
    for (size_t k = 1; k < applied.size(); ++k) ASSERT_EQ(applied[k].index, applied[k - 1].index.next()) << id;
    EXPECT_EQ(applied.back().index, c.storage(id).last_index()) << id;
    EXPECT_EQ(c.storage(id).hard_state().commit, applied.back().index) << id;
  }
}

TEST(RaftReady, NoReadyOnceEverythingIsProcessed) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  c.stabilize();
  for (const auto& id : c.ids()) EXPECT_FALSE(c.node(id).has_ready()) << id;
}

TEST(RaftReadyDeathTest, ReadyTwiceWithoutAdvanceAborts) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto b = member("b");
  b->step(append("a", 2, 0, 0, entries(1, 1, 2)));
  EXPECT_DEATH(
      {
        b->ready();
        b->ready();
      },
      "before advance");
}

}  // namespace
}  // namespace tenure::testing
