// Replication flow control and repair (thesis §3.5, §5.2; etcd-io/raft's
// progress tracking): many entries per message and its byte bound, the
// pipelining window, backpressure on uncommitted bytes, fast backtracking
// over divergent logs, and snapshots for followers behind the log's start.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/cluster.h"

namespace tenure::testing {
namespace {

/// Counts messages of one type from one member (delivering all of them).
struct Counter {
  std::map<std::string, int> per_recipient;
  int total = 0;
  void install(Cluster& c, const std::string& from, MessageType type, bool with_entries_only = false) {
    c.set_filter([this, from, type, with_entries_only](const Message& m) {
      if (m.from == NodeId(from) && m.type == type && (!with_entries_only || !m.entries.empty())) {
        ++per_recipient[m.to.str()];
        ++total;
      }
      return false;
    });
  }
};

FollowerStatus follower(const Raft& leader, const std::string& id) {
  for (const auto& f : leader.status().followers) {
    if (f.id == NodeId(id)) return f;
  }
  ADD_FAILURE() << "no progress for " << id;
  return {};
}

TEST(RaftReplication, OneAppendCarriesAWholeBatch) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  Counter appends;
  appends.install(c, "a", MessageType::kAppend, /*with_entries_only=*/true);
  std::vector<std::string> batch(100, std::string(16, 'x'));
  ASSERT_TRUE(c.node("a").propose_batch(batch).ok());
  c.stabilize();
  EXPECT_EQ(appends.per_recipient["b"], 1);
  EXPECT_EQ(appends.per_recipient["c"], 1);
  EXPECT_EQ(c.node("b").log().committed(), c.node("a").log().last_index());
}

TEST(RaftReplication, AppendsRespectMaxBytesPerMessage) {
  RaftConfig cfg;
  cfg.max_bytes_per_msg = 1000;
  Cluster c({"a", "b", "c"}, cfg);
  ASSERT_TRUE(c.elect("a"));
  size_t largest = 0;
  c.set_filter([&largest](const Message& m) {
    if (m.type == MessageType::kAppend) {
      size_t bytes = 0;
      for (const auto& e : m.entries) bytes += e.data.size();
      largest = std::max(largest, bytes);
    }
    return false;
  });
  std::vector<std::string> batch(50, std::string(100, 'x'));
  ASSERT_TRUE(c.node("a").propose_batch(batch).ok());
  c.stabilize();
  EXPECT_LE(largest, 1000u);
  EXPECT_GE(largest, 900u);  // it still packs messages
  EXPECT_EQ(c.node("c").log().committed(), c.node("a").log().last_index());
}

TEST(RaftReplication, EntryOverheadBoundsMessagesOfManySmallEntries) {
  RaftConfig cfg;
  cfg.max_bytes_per_msg = 1000;
  cfg.entry_overhead_bytes = 32;
  Cluster c({"a", "b", "c"}, cfg);
  ASSERT_TRUE(c.elect("a"));
  size_t most = 0;
  c.set_filter([&most](const Message& m) {
    if (m.type == MessageType::kAppend) most = std::max(most, m.entries.size());
    return false;
  });
  // Without the overhead 1000 one-byte entries would travel in one message.
  ASSERT_TRUE(c.node("a").propose_batch(std::vector<std::string>(1000, "x")).ok());
  c.stabilize();
  EXPECT_EQ(most, 1000u / 33);
  EXPECT_EQ(c.node("c").log().committed(), c.node("a").log().last_index());
}

TEST(RaftReplication, EntryLargerThanTheMaxIsRefusedNamingTheLimit) {
  RaftConfig cfg;
  cfg.max_entry_bytes = 100;
  Cluster c({"a", "b", "c"}, cfg);
  ASSERT_TRUE(c.elect("a"));
  LogIndex last = c.node("a").log().last_index();
  auto refused = c.node("a").propose(std::string(101, 'x'));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), RaftError::kEntryTooLarge);
  EXPECT_NE(refused.error().message.find("100 bytes"), std::string::npos) << refused.error().message;
  // A batch with one such entry is refused whole; nothing reaches the log.
  EXPECT_FALSE(c.node("a").propose_batch({"ok", std::string(101, 'y')}).ok());
  EXPECT_EQ(c.node("a").log().last_index(), last);
  // At the limit it is accepted, and commits.
  ASSERT_TRUE(c.node("a").propose(std::string(100, 'z')).ok());
  c.stabilize();
  EXPECT_EQ(c.node("b").log().committed(), last.next());
}

TEST(RaftReplication, PipelineHoldsAtMostMaxInflightMsgs) {
  RaftConfig cfg;
  cfg.max_inflight_msgs = 4;
  cfg.max_bytes_per_msg = 1;  // one one-byte entry per append
  Cluster c({"a", "b", "c"}, cfg);
  ASSERT_TRUE(c.elect("a"));
  ASSERT_EQ(follower(c.node("a"), "b").state, ProgressState::kReplicate);
  // b stores what it gets but its answers are lost: nothing frees the window.
  int sent_to_b = 0;
  c.set_filter([&sent_to_b](const Message& m) {
    if (m.type == MessageType::kAppend && m.to == NodeId("b") && !m.entries.empty()) ++sent_to_b;
    return m.type == MessageType::kAppendResponse && m.from == NodeId("b");
  });
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(c.node("a").propose("x").ok());
    c.stabilize();
  }
  EXPECT_EQ(sent_to_b, 4);
  FollowerStatus fb = follower(c.node("a"), "b");
  EXPECT_EQ(fb.next, fb.match.plus(5));
  // c answers, so everything commits; b catches up once its answers flow.
  EXPECT_EQ(c.node("a").log().committed(), c.node("a").log().last_index());
  c.heal();
  for (int i = 0; i < 3; ++i) {
    c.tick("a");
    c.stabilize();
  }
  EXPECT_EQ(c.node("b").log().last_index(), c.node("a").log().last_index());
  EXPECT_EQ(follower(c.node("a"), "b").match, c.node("a").log().last_index());
}

TEST(RaftReplication, UncommittedBytesApplyBackpressure) {
  RaftConfig cfg;
  cfg.max_uncommitted_bytes = 100;
  Cluster c({"a", "b", "c"}, cfg);
  ASSERT_TRUE(c.elect("a"));
  c.isolate("a");  // nothing commits
  LogIndex last = c.node("a").log().last_index();
  ASSERT_TRUE(c.node("a").propose(std::string(60, 'x')).ok());
  auto refused = c.node("a").propose(std::string(60, 'y'));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), RaftError::kTooManyUncommitted);
  // A batch is all or nothing.
  auto batch = c.node("a").propose_batch({std::string(30, 'p'), std::string(30, 'q')});
  ASSERT_FALSE(batch.ok());
  EXPECT_EQ(c.node("a").log().last_index(), last.next());
  ASSERT_TRUE(c.node("a").propose(std::string(40, 'z')).ok());  // exactly at the bound
  EXPECT_FALSE(c.node("a").propose("1").ok());
  // Once the tail commits, room frees up.
  c.heal();
  c.tick("a");
  c.stabilize();
  ASSERT_EQ(c.node("a").log().committed(), c.node("a").log().last_index());
  EXPECT_TRUE(c.node("a").propose(std::string(60, 'y')).ok());
}

TEST(RaftReplication, OversizedProposalIsAcceptedIntoAnEmptyTail) {
  RaftConfig cfg;
  cfg.max_uncommitted_bytes = 10;
  Cluster c({"a", "b", "c"}, cfg);
  ASSERT_TRUE(c.elect("a"));
  // Refusing it would wedge the group forever; the bound applies to the tail.
  EXPECT_TRUE(c.node("a").propose(std::string(50, 'x')).ok());
  EXPECT_FALSE(c.node("a").propose("y").ok());
}

// --- Fast backtracking -------------------------------------------------------

std::vector<Entry> run(uint64_t first, uint64_t last, uint64_t term) {
  std::vector<Entry> out;
  for (uint64_t i = first; i <= last; ++i) out.push_back(Entry{Term(term), LogIndex(i), EntryType::kNormal, "d"});
  return out;
}

std::unique_ptr<Raft> member(const std::string& id, std::vector<Entry> log, Term term) {
  RaftConfig cfg;
  cfg.id = NodeId(id);
  cfg.pre_vote = false;
  InitialState s;
  s.snapshot.conf.voters = {NodeId("1"), NodeId("2"), NodeId("3")};
  s.entries = std::move(log);
  s.hard_state = HardState{term, NodeId(), LogIndex(1)};
  return std::make_unique<Raft>(cfg, std::move(s));
}

// A follower whose long tail diverges in three terms costs the leader a
// rejection per conflicting term at most, not one per entry: the follower
// answers with the last index of a term not newer than the probe's, and the
// leader skips its own entries of newer terms (etcd-io/raft §"fast log
// rejection", thesis §5.3 optimisation).
TEST(RaftReplication, FastBacktrackingTakesRoundTripsPerTermNotPerEntry) {
  std::vector<Entry> lead_log = run(1, 1, 1);
  for (auto& e : run(2, 101, 5)) lead_log.push_back(e);
  std::vector<Entry> follow_log = run(1, 1, 1);
  for (auto& e : run(2, 40, 2)) follow_log.push_back(e);
  for (auto& e : run(41, 80, 3)) follow_log.push_back(e);
  for (auto& e : run(81, 120, 4)) follow_log.push_back(e);
  auto lead = member("1", lead_log, Term(5));
  auto fol = member("2", follow_log, Term(5));
  std::map<NodeId, Raft*> net = {{NodeId("1"), lead.get()}, {NodeId("2"), fol.get()}};

  lead->campaign();
  int rejections = 0;
  for (int round = 0; round < 1000; ++round) {
    std::vector<Message> msgs;
    for (auto& [id, r] : net) {
      while (r->has_ready()) {
        Ready rd = r->ready();
        msgs.insert(msgs.end(), rd.early_messages.begin(), rd.early_messages.end());
        msgs.insert(msgs.end(), rd.messages.begin(), rd.messages.end());
        r->advance();
      }
    }
    if (msgs.empty()) break;
    for (auto& m : msgs) {
      if (m.type == MessageType::kAppendResponse && m.reject) ++rejections;
      auto it = net.find(m.to);
      if (it != net.end()) it->second->step(std::move(m));
    }
  }
  ASSERT_EQ(lead->role(), Role::kLeader);
  EXPECT_LE(rejections, 3);  // 119 divergent entries, three divergent terms
  EXPECT_EQ(fol->log().last_index(), lead->log().last_index());
  EXPECT_EQ(fol->log().slice(LogIndex(1), fol->log().last_index()),
            lead->log().slice(LogIndex(1), lead->log().last_index()));
}

// --- Snapshots (§5.2) ----------------------------------------------------------

/// a leads; it applied 30 entries and compacted its whole log into a snapshot.
void compact_leader(Cluster& c) {
  ASSERT_TRUE(c.elect("a"));
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(c.node("a").propose("v" + std::to_string(i)).ok());
  c.stabilize();
  std::string state = "state@" + std::to_string(c.node("a").log().applied().value());
  auto [snap, to] = c.node("a").compact(state, 0);
  c.storage("a").compact(snap, to);
  ASSERT_GT(c.node("a").log().first_index(), LogIndex(30));
}

// A snapshot encoded elsewhere while the group went on (the driver's
// off-strand snapshot): the point is fixed first, entries keep committing,
// and compact_at records it at that point, not at the applied index of
// the moment it lands; one that a newer snapshot overtook is refused.
TEST(RaftSnapshot, CompactAtRecordsTheEarlierPointAndRefusesOneOvertaken) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(c.node("a").propose("v" + std::to_string(i)).ok());
  c.stabilize();
  Snapshot point = c.node("a").snapshot_point();
  EXPECT_EQ(point.index, c.node("a").log().applied());
  EXPECT_EQ(point.conf, c.node("a").conf());
  for (int i = 10; i < 20; ++i) ASSERT_TRUE(c.node("a").propose("v" + std::to_string(i)).ok());
  c.stabilize();
  ASSERT_GT(c.node("a").log().applied(), point.index);
  point.data = std::make_shared<const std::string>("state@" + std::to_string(point.index.value()));
  auto done = c.node("a").compact_at(point, 0);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->first.index, point.index);
  EXPECT_EQ(done->second, point.index);
  EXPECT_EQ(c.node("a").log().first_index(), point.index.next());
  // The entries after the point are all still there and still replicate.
  EXPECT_EQ(c.node("a").log().last_index(), c.node("b").log().last_index());
  Snapshot older = point;
  older.index = LogIndex(point.index.value() - 1);
  EXPECT_FALSE(c.node("a").compact_at(older, 0).has_value());
  EXPECT_FALSE(c.node("a").compact_at(point, 0).has_value());
  EXPECT_EQ(c.node("a").log().snapshot().index, point.index);
}

// While a follower is being sent a snapshot, a later compact_at keeps the
// entries right after that snapshot: once it has installed it, it catches
// up from the log, not from the next snapshot.
TEST(RaftSnapshot, CompactAtKeepsTheEntriesAFollowerReceivingASnapshotNeeds) {
  Cluster c({"a", "b", "c"});
  compact_leader(c);
  const LogIndex sent = c.node("a").log().snapshot().index;
  // d joins behind the log and is sent the snapshot, which is in flight.
  c.add_empty_node("d");
  c.set_filter([](const Message& m) { return m.type == MessageType::kSnapshot; });
  ASSERT_TRUE(c.node("a").propose_conf_change({ConfChangeType::kAddLearner, NodeId("d"), ""}).ok());
  c.stabilize();
  c.tick("a");
  c.stabilize();
  ASSERT_EQ(follower(c.node("a"), "d").state, ProgressState::kSnapshot);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(c.node("a").propose("w" + std::to_string(i)).ok());
  c.stabilize();
  Snapshot point = c.node("a").snapshot_point();
  ASSERT_GT(point.index, sent.plus(20));
  point.data = std::make_shared<const std::string>("state@" + std::to_string(point.index.value()));
  auto done = c.node("a").compact_at(point, 0);
  ASSERT_TRUE(done.has_value());
  EXPECT_EQ(done->first.index, point.index);
  // Not past the snapshot d is being sent: once installed, d continues from
  // the entry after it.
  EXPECT_EQ(done->second, sent);
  EXPECT_EQ(c.node("a").log().first_index(), sent.next());
  // Without a transfer in flight the same call compacts up to the point.
  c.node("a").report_snapshot(NodeId("d"), /*delivered=*/false);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(c.node("a").propose("x" + std::to_string(i)).ok());
  c.set_filter(nullptr);
  for (int i = 0; i < 3; ++i) {
    c.tick("a");
    c.stabilize();
  }
  Snapshot later = c.node("a").snapshot_point();
  later.data = std::make_shared<const std::string>("state@" + std::to_string(later.index.value()));
  auto again = c.node("a").compact_at(later, 0);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(again->second, later.index);
}

TEST(RaftSnapshot, NewMemberBehindTheLogIsSentTheSnapshotOnce) {
  Cluster c({"a", "b", "c"});
  compact_leader(c);
  const Snapshot snap = c.node("a").log().snapshot();
  Counter snaps;
  snaps.install(c, "a", MessageType::kSnapshot);
  c.add_empty_node("d");
  ASSERT_TRUE(c.node("a").propose_conf_change({ConfChangeType::kAddLearner, NodeId("d"), "addr"}).ok());
  c.stabilize();
  for (int i = 0; i < 3; ++i) {
    c.tick("a");
    c.stabilize();
  }
  EXPECT_EQ(snaps.total, 1);
  EXPECT_EQ(snaps.per_recipient["d"], 1);
  // d restored the state machine from the snapshot and replayed the rest.
  const Snapshot& got = c.storage("d").snapshot();
  EXPECT_EQ(got.index, snap.index);
  EXPECT_EQ(got.term, snap.term);
  ASSERT_TRUE(got.data);
  EXPECT_EQ(*got.data, *snap.data);
  EXPECT_EQ(c.node("d").log().committed(), c.node("a").log().committed());
  EXPECT_TRUE(c.node("d").conf().learners.count(NodeId("d")));
  EXPECT_EQ(c.node("d").conf().voters, c.node("a").conf().voters);
  ASSERT_FALSE(c.applied("d").empty());
  EXPECT_EQ(c.applied("d").front().index, snap.index.next());
  // Afterwards it is replicated to like anyone else.
  FollowerStatus fd = follower(c.node("a"), "d");
  EXPECT_EQ(fd.state, ProgressState::kReplicate);
  EXPECT_TRUE(fd.learner);
  ASSERT_TRUE(c.node("a").propose("after").ok());
  c.stabilize();
  EXPECT_EQ(c.applied("d").back().data, "after");
}

TEST(RaftSnapshot, UndeliveredSnapshotIsSentAgain) {
  Cluster c({"a", "b", "c"});
  compact_leader(c);
  c.add_empty_node("d");
  c.set_filter([](const Message& m) { return m.type == MessageType::kSnapshot; });
  ASSERT_TRUE(c.node("a").propose_conf_change({ConfChangeType::kAddLearner, NodeId("d"), ""}).ok());
  c.stabilize();
  c.tick("a");
  c.stabilize();
  ASSERT_EQ(follower(c.node("a"), "d").state, ProgressState::kSnapshot);
  c.node("a").report_snapshot(NodeId("d"), /*delivered=*/false);
  EXPECT_EQ(follower(c.node("a"), "d").state, ProgressState::kProbe);
  c.heal();
  for (int i = 0; i < 3; ++i) {
    c.tick("a");
    c.stabilize();
  }
  EXPECT_EQ(c.storage("d").snapshot().index, c.node("a").log().snapshot().index);
  EXPECT_EQ(c.node("d").log().committed(), c.node("a").log().committed());
}

TEST(RaftSnapshot, RestartedFollowerKeepsTheSnapshotItInstalled) {
  Cluster c({"a", "b", "c"});
  c.crash("c");
  compact_leader(c);
  c.restart("c");
  for (int i = 0; i < 3; ++i) {
    c.tick("a");
    c.stabilize();
  }
  ASSERT_EQ(c.storage("c").snapshot().index, c.node("a").log().snapshot().index);
  c.crash("c");
  c.restart("c");
  EXPECT_EQ(c.node("c").log().first_index(), c.node("a").log().snapshot().index.next());
  EXPECT_EQ(c.node("c").conf(), c.node("a").conf());
  ASSERT_TRUE(c.node("a").propose("later").ok());
  c.stabilize();
  EXPECT_EQ(c.node("c").log().committed(), c.node("a").log().committed());
}

}  // namespace
}  // namespace tenure::testing
