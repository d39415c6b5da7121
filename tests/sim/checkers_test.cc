// The simulator's checkers, fed bad histories directly: each must fire on
// the violation it exists for and stay quiet on a correct history.
#include <gtest/gtest.h>

#include "sim/checkers.h"

namespace tenure::sim {
namespace {

using consensus::ConfChange;
using consensus::ConfChangeType;
using consensus::HardState;
using consensus::RaftLog;

Entry entry(uint64_t index, uint64_t term, std::string data = "") {
  Entry e;
  e.index = LogIndex(index);
  e.term = Term(term);
  e.data = std::move(data);
  return e;
}

// A log holding `terms[k]` at index k + 1.
RaftLog log_of(const std::vector<uint64_t>& terms, uint64_t commit = 0) {
  std::vector<Entry> entries;
  for (size_t k = 0; k < terms.size(); ++k) entries.push_back(entry(k + 1, terms[k], "e" + std::to_string(k + 1)));
  return RaftLog(consensus::Snapshot{}, entries, LogIndex(commit));
}

TEST(LeaderPerTerm, FiresOnTwoLeadersInOneTerm) {
  LeaderPerTerm c;
  EXPECT_FALSE(c.observe(NodeId("a"), Term(2)));
  EXPECT_FALSE(c.observe(NodeId("a"), Term(2)));
  EXPECT_FALSE(c.observe(NodeId("b"), Term(3)));
  auto v = c.observe(NodeId("b"), Term(2));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checker, "leader-per-term");
  EXPECT_EQ(v->term, Term(2));
}

TEST(LogMatching, FiresOnSameIndexAndTermWithOtherCommand) {
  LogMatching c;
  EXPECT_FALSE(c.observe(NodeId("a"), Term(1), {entry(2, 2, "x"), entry(3, 2, "y")}));
  EXPECT_FALSE(c.observe(NodeId("b"), Term(1), {entry(2, 2, "x")}));
  auto v = c.observe(NodeId("c"), Term(2), {entry(3, 2, "z")});
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checker, "log-matching");
  EXPECT_EQ(v->index, LogIndex(3));
}

TEST(LogMatching, FiresOnSameIndexAndTermAfterAnotherTerm) {
  LogMatching c;
  EXPECT_FALSE(c.observe(NodeId("a"), Term(1), {entry(5, 3, "x")}));
  EXPECT_TRUE(c.observe(NodeId("b"), Term(2), {entry(5, 3, "x")}));
}

TEST(LogMatching, CompareFindsDivergentPrefixes) {
  RaftLog a = log_of({1, 1, 2, 3});
  RaftLog b = log_of({1, 1, 2, 3});
  EXPECT_FALSE(LogMatching::compare(NodeId("a"), a, NodeId("b"), b));
  RaftLog c = log_of({1, 2, 2, 3});  // agrees on (4, 3) but not at index 2
  auto v = LogMatching::compare(NodeId("a"), a, NodeId("c"), c);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->index, LogIndex(2));
  RaftLog d = log_of({1, 1, 4});  // diverges at the tail only: fine
  EXPECT_FALSE(LogMatching::compare(NodeId("a"), a, NodeId("d"), d));
}

TEST(LeaderCompleteness, FiresWhenALaterLeaderLacksACommittedEntry) {
  History h;
  ASSERT_FALSE(h.record(NodeId("a"), Term(1), entry(1, 1, "e1")));
  ASSERT_FALSE(h.record(NodeId("a"), Term(2), entry(2, 2, "x")));
  RaftLog lacking = log_of({1, 3});
  auto v = check_leader_completeness(NodeId("b"), Term(3), lacking, h, LogIndex(1), h.last());
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checker, "leader-completeness");
  EXPECT_EQ(v->index, LogIndex(2));
  // A leader of the very term the entry committed in is not "later".
  EXPECT_FALSE(check_leader_completeness(NodeId("b"), Term(2), log_of({1}), h, LogIndex(1), h.last()));
  RaftLog holding = log_of({1, 2, 3});
  EXPECT_FALSE(check_leader_completeness(NodeId("c"), Term(3), holding, h, LogIndex(1), h.last()));
}

TEST(CommitSafety, FiresWhenAMemberLackingACommittedEntryCanWin) {
  // Figure 8: index 2 of term 2 "committed" by counting while c holds a
  // term-3 entry there and a, b still store term 2 as their last entry.
  auto view = [](const char* id, uint64_t last_term, uint64_t last_index, bool holds) {
    ElectorView v;
    v.id = NodeId(id);
    v.can_campaign = true;
    v.voters = {NodeId("a"), NodeId("b"), NodeId("c")};
    v.last_term = v.durable_last_term = Term(last_term);
    v.last_index = v.durable_last_index = LogIndex(last_index);
    v.holds_committed = holds;
    return v;
  };
  std::vector<ElectorView> figure8{view("a", 2, 2, true), view("b", 2, 2, true), view("c", 3, 2, false)};
  auto v = check_commit_safety(figure8, LogIndex(2), Term(2));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checker, "commit-safety");
  EXPECT_EQ(v->node, NodeId("c"));
  // Once a current-term entry is on a majority, c can no longer win.
  std::vector<ElectorView> safe{view("a", 4, 3, true), view("b", 4, 3, true), view("c", 3, 2, false)};
  EXPECT_FALSE(check_commit_safety(safe, LogIndex(3), Term(4)));
  // A member that cannot campaign (down, or a learner) is no threat.
  figure8[2].can_campaign = false;
  EXPECT_FALSE(check_commit_safety(figure8, LogIndex(2), Term(2)));
}

TEST(AppliedPrefix, FiresOnADifferentEntryAtACommittedIndex) {
  History h;
  AppliedPrefix c;
  EXPECT_FALSE(c.on_apply(h, NodeId("a"), Term(1), entry(1, 1, "x")));
  EXPECT_FALSE(c.on_apply(h, NodeId("b"), Term(1), entry(1, 1, "x")));
  auto v = c.on_apply(h, NodeId("c"), Term(2), entry(1, 2, "y"));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checker, "applied-prefix");
}

TEST(AppliedPrefix, FiresOnAGapOrRepeat) {
  History h;
  AppliedPrefix c;
  EXPECT_FALSE(c.on_apply(h, NodeId("a"), Term(1), entry(1, 1)));
  EXPECT_TRUE(c.on_apply(h, NodeId("a"), Term(1), entry(3, 1)));
  AppliedPrefix d;
  EXPECT_FALSE(d.on_apply(h, NodeId("a"), Term(1), entry(1, 1)));
  EXPECT_TRUE(d.on_apply(h, NodeId("a"), Term(1), entry(1, 1)));
}

TEST(AppliedPrefix, FiresOnASnapshotThatDisagreesWithTheHistory) {
  History h;
  ASSERT_FALSE(h.record(NodeId("a"), Term(1), entry(1, 1, KvRegister::encode_put("k", "v1"))));
  ASSERT_FALSE(h.record(NodeId("a"), Term(1), entry(2, 1, KvRegister::encode_put("k", "v2"))));
  AppliedPrefix c;
  KvRegister good;
  good.apply(LogIndex(1), KvRegister::encode_put("k", "v1"));
  good.apply(LogIndex(2), KvRegister::encode_put("k", "v2"));
  consensus::Snapshot s;
  s.index = LogIndex(2);
  s.term = Term(1);
  EXPECT_FALSE(c.on_restore(h, NodeId("b"), s, good));
  KvRegister stale;
  stale.apply(LogIndex(1), KvRegister::encode_put("k", "v1"));
  EXPECT_TRUE(c.on_restore(h, NodeId("b"), s, stale));
  s.term = Term(2);
  EXPECT_TRUE(c.on_restore(h, NodeId("b"), s, good));
}

TEST(DurableTermVote, FiresWhenThePersistedStateGoesBack) {
  DurableTermVote c;
  HardState t3{Term(3), NodeId("a"), LogIndex(5)};
  EXPECT_FALSE(c.on_persist(NodeId("x"), t3, HardState{Term(4), NodeId(), LogIndex(5)}));
  EXPECT_TRUE(c.on_persist(NodeId("x"), t3, HardState{Term(2), NodeId("a"), LogIndex(5)}));
  EXPECT_TRUE(c.on_persist(NodeId("x"), t3, HardState{Term(3), NodeId("b"), LogIndex(5)}));
  EXPECT_TRUE(c.on_persist(NodeId("x"), t3, HardState{Term(3), NodeId("a"), LogIndex(4)}));
}

TEST(DurableTermVote, FiresWhenARestartForgetsAPromise) {
  DurableTermVote c;
  HardState durable{Term(5), NodeId("b"), LogIndex(0)};
  Message grant;
  grant.type = MessageType::kVoteResponse;
  grant.to = NodeId("b");
  grant.term = Term(5);
  EXPECT_FALSE(c.on_send(NodeId("x"), grant, durable));
  EXPECT_FALSE(c.on_restart(NodeId("x"), durable, Term(5), NodeId("b")));
  auto v = c.on_restart(NodeId("x"), HardState{Term(5), NodeId(), LogIndex(0)}, Term(5), NodeId());
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checker, "durable-term-vote");
  EXPECT_TRUE(c.on_restart(NodeId("x"), HardState{Term(4), NodeId("b"), LogIndex(0)}, Term(4), NodeId("b")));
  // Raft must come back with what it was given.
  EXPECT_TRUE(c.on_restart(NodeId("x"), durable, Term(6), NodeId("b")));
}

TEST(DurableTermVote, FiresOnAMessageFromATermNotYetDurable) {
  DurableTermVote c;
  Message m;
  m.type = MessageType::kAppendResponse;
  m.term = Term(7);
  EXPECT_TRUE(c.on_send(NodeId("x"), m, HardState{Term(6), NodeId(), LogIndex(0)}));
  m.type = MessageType::kPreVote;  // carries the term it would campaign in
  EXPECT_FALSE(c.on_send(NodeId("x"), m, HardState{Term(6), NodeId(), LogIndex(0)}));
}

TEST(AckPersisted, FiresOnAnAckOfAnEntryNotDurable) {
  DurableStore d;
  consensus::Ready rd;
  rd.entries = {entry(1, 1), entry(2, 1)};
  ASSERT_FALSE(d.persist(rd));
  RaftLog log = log_of({1, 1, 1});
  Message ack;
  ack.type = MessageType::kAppendResponse;
  ack.to = NodeId("leader");
  ack.term = Term(1);
  ack.index = LogIndex(2);
  AckPersisted c;
  EXPECT_FALSE(c.on_send(NodeId("f"), ack, d, log.term(ack.index)));
  ack.index = LogIndex(3);
  auto v = c.on_send(NodeId("f"), ack, d, log.term(ack.index));
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checker, "ack-persisted");
  ack.reject = true;  // a rejection acknowledges nothing
  EXPECT_FALSE(c.on_send(NodeId("f"), ack, d, log.term(ack.index)));
  // Durable, but with another term than the log now holds there.
  RaftLog other = log_of({1, 2});
  ack.reject = false;
  ack.index = LogIndex(2);
  EXPECT_TRUE(c.on_send(NodeId("f"), ack, d, other.term(ack.index)));
}

TEST(AckPersisted, FiresOnAVoteNotDurable) {
  DurableStore d;
  consensus::Ready rd;
  rd.hard_state = HardState{Term(4), NodeId(), LogIndex(0)};
  ASSERT_FALSE(d.persist(rd));
  Message grant;
  grant.type = MessageType::kVoteResponse;
  grant.to = NodeId("c");
  grant.term = Term(4);
  AckPersisted c;
  EXPECT_TRUE(c.on_send(NodeId("x"), grant, d, std::nullopt));
  Message ask;
  ask.type = MessageType::kVote;
  ask.to = NodeId("c");
  ask.term = Term(4);
  EXPECT_TRUE(c.on_send(NodeId("x"), ask, d, std::nullopt));
  rd.hard_state = HardState{Term(4), NodeId("c"), LogIndex(0)};
  ASSERT_FALSE(d.persist(rd));
  EXPECT_FALSE(c.on_send(NodeId("x"), grant, d, std::nullopt));
}

TEST(AckedWrites, FiresOnAnAcknowledgedWriteMissingFromTheHistory) {
  History h;
  ASSERT_FALSE(h.record(NodeId("a"), Term(2), entry(1, 2, "put k v")));
  AckedWrites c;
  EXPECT_FALSE(c.on_ack(h, AckedWrites::Ack{NodeId("a"), LogIndex(1), Term(2), "put k v"}));
  EXPECT_TRUE(c.on_ack(h, AckedWrites::Ack{NodeId("a"), LogIndex(1), Term(1), "put k v"}));
  AckedWrites d;
  EXPECT_FALSE(d.on_ack(h, AckedWrites::Ack{NodeId("a"), LogIndex(1), Term(2), "put k v"}));
  RaftLog leader_without = log_of({3});
  EXPECT_TRUE(d.final(h, NodeId("b"), &leader_without));
  RaftLog leader_with = log_of({2, 3});
  EXPECT_FALSE(d.final(h, NodeId("b"), &leader_with));
}

TEST(LinearizableReads, FiresOnAStaleOrFutureRead) {
  History h;
  ASSERT_FALSE(h.record(NodeId("a"), Term(1), entry(1, 1, KvRegister::encode_put("k", "old"))));
  ASSERT_FALSE(h.record(NodeId("a"), Term(1), entry(2, 1, KvRegister::encode_put("k", "new"))));
  LinearizableReads c;
  LogIndex before_ack = c.begin();
  c.on_write_ack(LogIndex(2));
  LogIndex after_ack = c.begin();
  // A read that began before the write was acknowledged may miss it.
  EXPECT_FALSE(c.on_read(h, ReadRecord{NodeId("a"), "k", before_ack, LogIndex(1), LogIndex(1), "old"}));
  // One that began after it may not (a stale leader answering alone).
  auto v = c.on_read(h, ReadRecord{NodeId("a"), "k", after_ack, LogIndex(1), LogIndex(1), "old"});
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checker, "linearizable-reads");
  EXPECT_FALSE(c.on_read(h, ReadRecord{NodeId("a"), "k", after_ack, LogIndex(2), LogIndex(2), "new"}));
  // The value must be the history's at the served index.
  EXPECT_TRUE(c.on_read(h, ReadRecord{NodeId("a"), "k", after_ack, LogIndex(2), LogIndex(2), "old"}));
  // Served before its read index was applied.
  EXPECT_TRUE(c.on_read(h, ReadRecord{NodeId("a"), "k", after_ack, LogIndex(2), LogIndex(1), "old"}));
  // Nothing from beyond the committed history.
  EXPECT_TRUE(c.on_read(h, ReadRecord{NodeId("a"), "k", after_ack, LogIndex(3), LogIndex(3), "new"}));
}

TEST(History, RecordsOnceAndReportsConflicts) {
  History h;
  EXPECT_FALSE(h.record(NodeId("a"), Term(3), entry(1, 2, KvRegister::encode_put("k", "v"))));
  EXPECT_FALSE(h.record(NodeId("b"), Term(2), entry(1, 2, KvRegister::encode_put("k", "v"))));
  EXPECT_EQ(h.at(LogIndex(1))->commit_term, Term(2));  // the lowest term it was seen committed in
  EXPECT_TRUE(h.record(NodeId("c"), Term(4), entry(1, 4, KvRegister::encode_put("k", "w"))));
  EXPECT_EQ(h.value_at("k", LogIndex(0)), "");
  EXPECT_EQ(h.value_at("k", LogIndex(1)), "v");
  EXPECT_EQ(h.keys(), std::vector<std::string>{"k"});
}

}  // namespace
}  // namespace tenure::sim
