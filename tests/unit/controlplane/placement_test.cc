#include "controlplane/placement.h"

#include <gtest/gtest.h>

namespace tenure::controlplane {
namespace {

Command cmd(CommandBody body, uint64_t at_ms = 1000) { return Command{"", at_ms, std::move(body)}; }

class PlacementTest : public ::testing::Test {
 protected:
  void add_worker(const std::string& id, const std::string& zone = "z", double cap = 1, uint64_t at = 1000) {
    sm.apply(cmd(RegisterWorker{WorkerId(id), id + ":1", zone, cap}, at));
  }
  void add_shards(int n) {
    CreateShards c;
    for (int i = 0; i < n; ++i) c.ids.emplace_back("s" + std::to_string(1000 + i));
    sm.apply(cmd(c));
  }
  /// Applies a plan the way the leader does: assignments, then handoffs
  /// completed as if every old owner released at once.
  void apply(const Plan& p) {
    AssignShards a;
    for (const auto& m : p.assignments) a.placements.push_back({m.shard, m.to, m.epoch});
    sm.apply(cmd(a));
    BeginMoves b;
    std::map<WorkerId, CompleteMoves> done;
    for (const auto& m : p.moves) {
      b.placements.push_back({m.shard, m.to, m.epoch});
      auto& c = done[m.from];
      c.from = m.from;
      c.shards.push_back(m.shard);
      c.epochs.push_back(m.epoch);
    }
    sm.apply(cmd(b));
    for (auto& [w, c] : done) sm.apply(cmd(c));
  }
  void settle(PlacementOptions opt = {}) {
    for (int i = 0; i < 100; ++i) {
      Plan p = plan_placement(sm, opt);
      if (p.assignments.empty() && p.moves.empty()) return;
      apply(p);
    }
    FAIL() << "placement did not converge";
  }
  size_t held(const std::string& w) { return sm.shards_of(WorkerId(w)).size(); }
  StateMachine sm;
};

TEST_F(PlacementTest, QuotasAreWithinOneOfWeightedShare) {
  auto q = fair_quotas({{WorkerId("a"), 1}, {WorkerId("b"), 2}, {WorkerId("c"), 1}}, 10);
  EXPECT_EQ(q[WorkerId("a")] + q[WorkerId("b")] + q[WorkerId("c")], 10u);
  EXPECT_EQ(q[WorkerId("b")], 5u);
  EXPECT_GE(q[WorkerId("a")], 2u);
  EXPECT_LE(q[WorkerId("a")], 3u);
}

TEST_F(PlacementTest, EveryShardGetsAnOwnerAndBalanceHolds) {
  for (auto w : {"w1", "w2", "w3"}) add_worker(w);
  add_shards(100);
  settle();
  EXPECT_EQ(sm.count(ShardState::kUnassigned), 0u);
  for (auto w : {"w1", "w2", "w3"}) {
    EXPECT_GE(held(w), 33u) << w;
    EXPECT_LE(held(w), 34u) << w;
  }
}

TEST_F(PlacementTest, CapacityWeighted) {
  add_worker("small", "z", 1);
  add_worker("big", "z", 3);
  add_shards(100);
  settle();
  EXPECT_EQ(held("big"), 75u);
  EXPECT_EQ(held("small"), 25u);
}

TEST_F(PlacementTest, JoinMovesOnlyWhatBalanceRequires) {
  for (auto w : {"w1", "w2", "w3"}) add_worker(w);
  add_shards(90);
  settle();
  add_worker("w4");
  Plan p = plan_placement(sm, {});
  EXPECT_TRUE(p.assignments.empty());
  // 90 shards over 4 workers: w4 should get 22 or 23, and nothing else moves.
  EXPECT_GE(p.moves.size(), 22u);
  EXPECT_LE(p.moves.size(), 23u);
  for (const auto& m : p.moves) {
    EXPECT_EQ(m.to, WorkerId("w4"));
    EXPECT_EQ(m.reason, ChangeReason::kRebalance);
  }
}

TEST_F(PlacementTest, ConcurrentMovesAreBounded) {
  for (auto w : {"w1", "w2"}) add_worker(w);
  add_shards(100);
  settle();
  add_worker("w3");
  PlacementOptions opt;
  opt.max_concurrent_moves = 5;
  Plan p = plan_placement(sm, opt);
  EXPECT_EQ(p.moves.size(), 5u);
  // Begin them without completing: the next pass sees 5 in flight and plans none.
  BeginMoves b;
  for (const auto& m : p.moves) b.placements.push_back({m.shard, m.to, m.epoch});
  sm.apply(cmd(b));
  EXPECT_TRUE(plan_placement(sm, opt).moves.empty());
}

TEST_F(PlacementTest, DrainEmptiesTheWorker) {
  for (auto w : {"w1", "w2", "w3"}) add_worker(w);
  add_shards(30);
  settle();
  sm.apply(cmd(SetDraining{WorkerId("w2"), true}));
  Plan p = plan_placement(sm, {});
  for (const auto& m : p.moves) EXPECT_EQ(m.reason, ChangeReason::kDrain);
  settle();
  EXPECT_EQ(held("w2"), 0u);
  EXPECT_EQ(held("w1"), 15u);
  EXPECT_EQ(held("w3"), 15u);
}

TEST_F(PlacementTest, JoinDelayKeepsNewWorkersEmpty) {
  add_worker("old", "z", 1, 1000);
  add_shards(10);
  settle();
  add_worker("new", "z", 1, 50000);
  PlacementOptions opt;
  opt.join_delay_ms = 10000;
  opt.now_ms = 55000;
  EXPECT_TRUE(plan_placement(sm, opt).moves.empty());
  opt.now_ms = 61000;
  EXPECT_EQ(plan_placement(sm, opt).moves.size(), 5u);
}

TEST_F(PlacementTest, ZonesFillInProportion) {
  add_worker("a1", "za");
  add_worker("a2", "za");
  add_worker("b1", "zb");
  add_worker("b2", "zb");
  add_shards(2);
  settle();
  // Two shards over two equal zones: one per zone, never both in one.
  size_t za = held("a1") + held("a2"), zb = held("b1") + held("b2");
  EXPECT_EQ(za, 1u);
  EXPECT_EQ(zb, 1u);
}

TEST_F(PlacementTest, FailoverSpreadsTheDeadWorkersShards) {
  for (auto w : {"w1", "w2", "w3", "w4"}) add_worker(w);
  add_shards(40);
  settle();
  auto placements = plan_failover(sm, WorkerId("w1"), {});
  ASSERT_EQ(placements.size(), 10u);
  std::map<WorkerId, int> got;
  for (const auto& p : placements) {
    EXPECT_NE(p.worker, WorkerId("w1"));
    ++got[p.worker];
  }
  for (const auto& [w, n] : got) {
    EXPECT_GE(n, 3);
    EXPECT_LE(n, 4);
  }
  sm.apply(cmd(DeclareDead{WorkerId("w1"), placements, ChangeReason::kDeadWorker}));
  EXPECT_EQ(sm.count(ShardState::kUnassigned), 0u);
  EXPECT_EQ(held("w1"), 0u);
}

}  // namespace
}  // namespace tenure::controlplane
