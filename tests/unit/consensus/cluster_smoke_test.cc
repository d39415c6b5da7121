// End-to-end behaviour of a small in-memory group: the harness and the core together.
#include <gtest/gtest.h>

#include "tests/support/cluster.h"

namespace tenure::testing {
namespace {

TEST(ClusterSmoke, ElectsReplicatesAndCommits) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  ASSERT_TRUE(c.node("a").propose("hello").ok());
  c.stabilize();
  for (const auto& id : c.ids()) {
    ASSERT_FALSE(c.applied(id).empty()) << id;
    EXPECT_EQ(c.applied(id).back().data, "hello") << id;
  }
}

TEST(ClusterSmoke, TimeoutElectsSomeone) {
  Cluster c({"a", "b", "c"});
  for (int i = 0; i < 40 && c.leader().empty(); ++i) {
    for (const auto& id : c.ids()) c.tick(id);
    c.stabilize();
  }
  EXPECT_FALSE(c.leader().empty());
}

TEST(ClusterSmoke, ReadIndexAtFollower) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  ASSERT_TRUE(c.node("a").propose("x").ok());
  c.stabilize();
  ASSERT_TRUE(c.node("b").read_index(7).ok());
  c.stabilize();
  ASSERT_EQ(c.read_states("b").size(), 1u);
  EXPECT_EQ(c.read_states("b")[0].request_id, 7u);
  EXPECT_EQ(c.read_states("b")[0].index, c.node("a").log().committed());
}

TEST(ClusterSmoke, SnapshotCatchesUpCrashedFollower) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  c.crash("c");
  for (int i = 0; i < 50; ++i) ASSERT_TRUE(c.node("a").propose("v" + std::to_string(i)).ok());
  c.stabilize();
  auto [snap, to] = c.node("a").compact("state@" + std::to_string(c.node("a").log().applied().value()), 0);
  c.storage("a").compact(snap, to);
  c.restart("c");
  for (int i = 0; i < 3; ++i) {
    c.tick("a", 1);
    c.stabilize();
  }
  EXPECT_EQ(c.node("c").log().committed(), c.node("a").log().committed());
  EXPECT_EQ(c.storage("c").snapshot().index, snap.index);
}

TEST(ClusterSmoke, LeaderTransfer) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  ASSERT_TRUE(c.node("a").transfer_leadership(NodeId("c")).ok());
  c.stabilize();
  EXPECT_EQ(c.leader(), "c");
}

TEST(ClusterSmoke, AddLearnerThenPromote) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  c.add_empty_node("d");
  ASSERT_TRUE(c.node("a").propose_conf_change({ConfChangeType::kAddLearner, NodeId("d"), "addr"}).ok());
  c.stabilize();
  c.tick("a", 1);
  c.stabilize();
  EXPECT_TRUE(c.node("a").conf().learners.count(NodeId("d")));
  EXPECT_EQ(c.node("d").log().committed(), c.node("a").log().committed());
  ASSERT_TRUE(c.node("a").propose_conf_change({ConfChangeType::kAddVoter, NodeId("d"), ""}).ok());
  c.stabilize();
  EXPECT_EQ(c.node("a").conf().voters.size(), 4u);
  EXPECT_EQ(c.node("d").conf().voters.size(), 4u);
}

}  // namespace
}  // namespace tenure::testing
