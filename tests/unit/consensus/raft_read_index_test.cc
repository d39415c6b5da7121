// Linearizable reads by ReadIndex (thesis §6.4): batching per heartbeat
// round, reads at followers (§6.4.1), waiting for a current-term commit, and
// never answering without a quorum's confirmation.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/cluster.h"

namespace tenure::testing {
namespace {

/// Counts the heartbeats `from` sends while the filter is installed.
struct HeartbeatCounter {
  int count = 0;
  void install(Cluster& c, const std::string& from) {
    c.set_filter([this, from](const Message& m) {
      if (m.from == NodeId(from) && m.type == MessageType::kHeartbeat) ++count;
      return false;
    });
  }
};

/// A group led by a that has committed an entry of a's term.
Cluster ready_for_reads(RaftConfig cfg = RaftConfig()) {
  Cluster c({"a", "b", "c"}, cfg);
  EXPECT_TRUE(c.elect("a"));
  EXPECT_TRUE(c.node("a").propose("w1").ok());
  c.stabilize();
  EXPECT_TRUE(c.node("a").committed_in_current_term());
  return c;
}

TEST(RaftReadIndex, ManyReadsAtTheLeaderCostOneHeartbeatRound) {
  Cluster c = ready_for_reads();
  HeartbeatCounter hb;
  hb.install(c, "a");
  for (uint64_t id = 1; id <= 100; ++id) ASSERT_TRUE(c.node("a").read_index(id).ok());
  c.stabilize();
  EXPECT_EQ(hb.count, 2);  // one heartbeat per follower
  const auto& reads = c.read_states("a");
  ASSERT_EQ(reads.size(), 100u);
  for (uint64_t k = 0; k < reads.size(); ++k) {
    EXPECT_EQ(reads[k].request_id, k + 1);
    EXPECT_EQ(reads[k].index, c.node("a").log().committed());
  }
}

TEST(RaftReadIndex, ReadsArrivingDuringARoundJoinTheNextOne) {
  Cluster c = ready_for_reads();
  // Round 1 cannot be confirmed while heartbeat answers are lost.
  c.set_filter([](const Message& m) { return m.type == MessageType::kHeartbeatResponse; });
  for (uint64_t id = 1; id <= 5; ++id) ASSERT_TRUE(c.node("a").read_index(id).ok());
  c.stabilize();
  // Meanwhile a write commits and is acknowledged; reads that begin after
  // that must see it, so round 1 (started before it) cannot answer them.
  ASSERT_TRUE(c.node("a").propose("w2").ok());
  c.stabilize();
  LogIndex w2 = c.node("a").log().last_index();
  ASSERT_EQ(c.node("a").log().committed(), w2);
  for (uint64_t id = 6; id <= 10; ++id) ASSERT_TRUE(c.node("a").read_index(id).ok());
  HeartbeatCounter hb;
  hb.install(c, "a");  // replaces the filter: answers get through from now on
  c.stabilize();
  EXPECT_EQ(hb.count, 0);  // one round at a time: round 1 is still in flight
  EXPECT_TRUE(c.read_states("a").empty());
  c.tick("a");  // the periodic heartbeat carries round 1 again; now it is answered
  c.stabilize();
  EXPECT_EQ(hb.count, 4);  // the tick's heartbeats, then round 2 for reads 6..10
  const auto& reads = c.read_states("a");
  ASSERT_EQ(reads.size(), 10u);
  for (const auto& r : reads) {
    if (r.request_id <= 5) {
      EXPECT_LT(r.index, w2) << r.request_id;
    } else {
      EXPECT_GE(r.index, w2) << r.request_id;
    }
  }
}

TEST(RaftReadIndex, ReadsAtFollowersGoThroughTheLeader) {
  Cluster c = ready_for_reads();
  // b has not even heard that w2 committed when its reads arrive.
  c.set_filter([](const Message& m) { return m.to == NodeId("b") && m.type == MessageType::kAppend; });
  ASSERT_TRUE(c.node("a").propose("w2").ok());
  c.stabilize();
  LogIndex w2 = c.node("a").log().last_index();
  ASSERT_EQ(c.node("a").log().committed(), w2);
  ASSERT_LT(c.node("b").log().committed(), w2);
  c.heal();
  HeartbeatCounter hb;
  hb.install(c, "a");
  for (uint64_t id = 1; id <= 50; ++id) ASSERT_TRUE(c.node("b").read_index(id).ok());
  c.stabilize();
  EXPECT_EQ(hb.count, 2);
  const auto& reads = c.read_states("b");
  ASSERT_EQ(reads.size(), 50u);
  // Linearizable: each read index covers every write committed before it began.
  for (const auto& r : reads) EXPECT_GE(r.index, w2);
  EXPECT_TRUE(c.read_states("a").empty());
}

TEST(RaftReadIndex, NewLeaderWaitsForACommitInItsTerm) {
  Cluster c({"a", "b", "c"});
  // a is elected but nothing it appends is acknowledged yet.
  c.set_filter([](const Message& m) { return m.type == MessageType::kAppendResponse; });
  ASSERT_TRUE(c.elect("a"));
  ASSERT_FALSE(c.node("a").committed_in_current_term());
  HeartbeatCounter hb;
  ASSERT_TRUE(c.node("a").read_index(1).ok());
  c.stabilize();
  EXPECT_TRUE(c.read_states("a").empty());
  hb.install(c, "a");
  c.tick("a");  // heartbeats; the no-op commits through their answers
  c.stabilize();
  ASSERT_TRUE(c.node("a").committed_in_current_term());
  ASSERT_EQ(c.read_states("a").size(), 1u);
  // The read covers the no-op, hence whatever earlier leaders committed.
  EXPECT_GE(c.read_states("a")[0].index, c.node("a").log().last_index());
}

/// a is isolated while b takes over and commits "new"; then a, unaware,
/// serves a read. Returns a's read states.
std::vector<ReadState> read_at_deposed_leader(TestingKnobs knobs, LogIndex* new_commit) {
  RaftConfig cfg;
  cfg.knobs = knobs;
  Cluster c = ready_for_reads(cfg);
  c.isolate("a");
  c.tick("b", cfg.election_ticks);
  c.tick("c", cfg.election_ticks);
  EXPECT_TRUE(c.elect("b"));
  EXPECT_TRUE(c.node("b").propose("new").ok());
  c.stabilize();
  *new_commit = c.node("b").log().committed();
  EXPECT_EQ(c.node("a").role(), Role::kLeader);  // it has not noticed yet
  EXPECT_TRUE(c.node("a").read_index(7).ok());
  c.stabilize();
  return c.read_states("a");
}

TEST(RaftReadIndex, DeposedLeaderCannotServeAStaleRead) {
  LogIndex new_commit;
  EXPECT_TRUE(read_at_deposed_leader({}, &new_commit).empty());
  // The planted bug answers from its own commit index: a stale read.
  TestingKnobs bug;
  bug.read_index_without_quorum = true;
  auto stale = read_at_deposed_leader(bug, &new_commit);
  ASSERT_EQ(stale.size(), 1u);
  EXPECT_LT(stale[0].index, new_commit);
}

TEST(RaftReadIndex, PendingReadsAreDroppedWhenLeadershipIsLost) {
  Cluster c = ready_for_reads();
  c.isolate("a");
  ASSERT_TRUE(c.node("a").read_index(42).ok());
  std::vector<uint64_t> dropped;
  for (int i = 0; i < 3 * RaftConfig().election_ticks && c.node("a").role() == Role::kLeader; ++i) {
    c.tick("a");
    while (c.node("a").has_ready()) {
      Ready rd = c.node("a").ready();
      c.storage("a").persist(rd);
      dropped.insert(dropped.end(), rd.dropped_reads.begin(), rd.dropped_reads.end());
      c.node("a").advance();
    }
  }
  ASSERT_NE(c.node("a").role(), Role::kLeader);
  while (c.node("a").has_ready()) {
    Ready rd = c.node("a").ready();
    dropped.insert(dropped.end(), rd.dropped_reads.begin(), rd.dropped_reads.end());
    c.node("a").advance();
  }
  EXPECT_EQ(dropped, std::vector<uint64_t>{42});
  EXPECT_TRUE(c.read_states("a").empty());
}

TEST(RaftReadIndex, SingleMemberAnswersAtOnce) {
  Cluster c({"a"});
  ASSERT_TRUE(c.elect("a"));
  c.stabilize();
  ASSERT_TRUE(c.node("a").read_index(3).ok());
  c.stabilize();
  ASSERT_EQ(c.read_states("a").size(), 1u);
  EXPECT_EQ(c.read_states("a")[0].index, c.node("a").log().committed());
}

}  // namespace
}  // namespace tenure::testing
