// The fleet mode's parts: its checkers fed bad states directly, its state
// machine's snapshots, its options, and whole fleet runs (deterministic,
// busy, and failing under a planted bug).
#include <gtest/gtest.h>

#include "controlplane/commands.h"
#include "sim/fleet_checkers.h"
#include "sim/fleet_state_machine.h"
#include "sim/options.h"
#include "sim/simulator.h"

namespace tenure::sim {
namespace {

using controlplane::Command;

agent::ShardEpoch se(const char* shard, uint64_t epoch) { return {ShardId(shard), Epoch(epoch)}; }

std::string put(controlplane::StateMachine& sm, Command c) {
  auto r = sm.apply(c);
  return r.code == controlplane::ApplyCode::kOk ? "" : r.message;
}

/// A state with w1 owning s1 at epoch 1.
controlplane::StateMachine owned_by_w1() {
  controlplane::StateMachine sm;
  put(sm, Command{"", 0, controlplane::RegisterWorker{WorkerId("w1"), "a", "", 1}});
  put(sm, Command{"", 0, controlplane::RegisterWorker{WorkerId("w2"), "b", "", 1}});
  put(sm, Command{"", 0, controlplane::CreateShards{{ShardId("s1")}}});
  put(sm, Command{"", 0,
                  controlplane::AssignShards{{controlplane::Placement{ShardId("s1"), WorkerId("w1"), Epoch(0)}},
                                             controlplane::ChangeReason::kCreated}});
  return sm;
}

TEST(FleetOneWriter, TwoAgentsAcceptingOneShardIsAViolation) {
  std::vector<AcceptingView> ok{{WorkerId("w1"), {se("s1", 1), se("s2", 3)}}, {WorkerId("w2"), {se("s3", 1)}}};
  EXPECT_FALSE(check_one_writer(ok));
  std::vector<AcceptingView> bad{{WorkerId("w1"), {se("s1", 1)}}, {WorkerId("w2"), {se("s1", 2)}}};
  auto v = check_one_writer(bad);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checker, "fleet-one-writer");
  auto c = one_writer_conflicts(bad);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].first, WorkerId("w1"));
  EXPECT_EQ(c[0].second_epoch, Epoch(2));
}

TEST(FleetEpochs, AStateWhoseEpochWentDownAlongTheLogIsAViolation) {
  EpochOwners e;
  controlplane::StateMachine sm = owned_by_w1();  // s1 at epoch 1
  EXPECT_FALSE(e.on_state(NodeId("n1"), LogIndex(10), sm, /*fresh=*/true));
  controlplane::StateMachine later = owned_by_w1();
  // Nobody can take it: failed over to nobody, epoch + 1.
  put(later, Command{"", 0, controlplane::DeclareDead{WorkerId("w1"), {controlplane::Placement{ShardId("s1"), WorkerId(), Epoch(1)}},
                                                      controlplane::ChangeReason::kDeadWorker}});
  ASSERT_EQ(later.shard(ShardId("s1"))->epoch, Epoch(2));
  EXPECT_FALSE(e.on_state(NodeId("n2"), LogIndex(20), later, true));
  // Another member shows the older epoch after a later index: impossible.
  auto v = e.on_state(NodeId("n3"), LogIndex(25), sm, true);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checker, "fleet-epoch-monotonic");
  // The same member going back within its life, too.
  EpochOwners f;
  EXPECT_FALSE(f.on_state(NodeId("n1"), LogIndex(20), later, true));
  v = f.on_state(NodeId("n1"), LogIndex(21), sm, false);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checker, "fleet-epoch-monotonic");
}

TEST(FleetEpochs, OneWorkerPerShardAndEpoch) {
  EpochOwners e;
  EXPECT_FALSE(e.on_state(NodeId("n1"), LogIndex(10), owned_by_w1(), true));
  // A member that gave epoch 1 of s1 to w2 instead.
  controlplane::StateMachine other;
  put(other, Command{"", 0, controlplane::RegisterWorker{WorkerId("w2"), "b", "", 1}});
  put(other, Command{"", 0, controlplane::CreateShards{{ShardId("s1")}}});
  put(other, Command{"", 0,
                     controlplane::AssignShards{{controlplane::Placement{ShardId("s1"), WorkerId("w2"), Epoch(0)}},
                                                controlplane::ChangeReason::kCreated}});
  auto v = e.on_state(NodeId("n2"), LogIndex(10), other, true);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checker, "fleet-epoch-owner");
}

TEST(FleetEpochs, AgentsHoldOnlyGrantsMadeToThemAndNeverForgetAnEpoch) {
  EpochOwners e;
  EXPECT_FALSE(e.on_state(NodeId("n1"), LogIndex(10), owned_by_w1(), true));
  agent::GrantTable table;
  agent::GrantChanges c(table);
  c.grant(ShardId("s1"), Epoch(1));
  table.install(c);
  std::map<std::string, agent::ShardRecord> durable = c.records();
  EXPECT_FALSE(e.on_agent(WorkerId("w1"), &table, durable));
  auto v = e.on_agent(WorkerId("w2"), &table, durable);  // w2 holding w1's grant
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checker, "fleet-epoch-owner");
  durable["s1"].max_epoch = Epoch(0);  // the durable table forgot epoch 1
  v = e.on_agent(WorkerId("w1"), nullptr, durable);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->checker, "fleet-epoch-monotonic");
}

TEST(FleetStateMachine, SnapshotRoundTripsBothParts) {
  FleetStateMachine a(controlplane::Limits{});
  a.apply(LogIndex(1), KvRegister::encode_put("k", "v"));
  a.apply(LogIndex(2), controlplane::encode_command(
                           Command{"", 5, controlplane::RegisterWorker{WorkerId("w1"), "a", "z", 2}}));
  EXPECT_EQ(a.last_result().code, controlplane::ApplyCode::kOk);
  FleetStateMachine b(controlplane::Limits{});
  ASSERT_TRUE(b.restore(a.snapshot()));
  EXPECT_EQ(b.query("k"), "v");
  ASSERT_NE(b.fleet().worker(WorkerId("w1")), nullptr);
  EXPECT_EQ(b.snapshot(), a.snapshot());
  EXPECT_FALSE(b.restore("garbage"));
  EXPECT_EQ(b.query("k"), "v");  // unchanged
}

TEST(FleetOptions, FleetLeavesTheRaftDrawsAlone) {
  // Except in precise runs, which calm the group (fleet_options.h,
  // clocks_at_bound): seed 1 draws one, 2, 3 and 99 do not.
  Overrides f;
  f.fleet = true;
  for (uint64_t seed : {1, 2, 3, 99}) {
    RunOptions a = draw_options(seed, {});
    RunOptions b = draw_options(seed, f);
    ASSERT_TRUE(b.fleet);
    EXPECT_GE(b.max_bytes_per_msg, size_t{64} << 10);
    b.max_bytes_per_msg = a.max_bytes_per_msg;
    b.fleet = false;
    EXPECT_EQ(b.fleet_options.clocks_at_bound, seed == 1) << seed;
    if (b.fleet_options.clocks_at_bound) {
      EXPECT_FALSE(b.storm);
      EXPECT_EQ(b.partition_gap_ticks + b.crash_gap_ticks + b.churn_gap_ticks + b.transfer_gap_ticks, 0);
      EXPECT_EQ(b.drop + b.dup + b.slow + b.fsync_stall, 0.0);
      EXPECT_EQ(b.fleet_options.check_interval_ms, 10u);
      EXPECT_EQ(b.fleet_options.watch_poll_ms, 1u);
      continue;
    }
    EXPECT_EQ(a.describe(), b.describe());
  }
  EXPECT_EQ(draw_options(5, f).replay(), "tenure-sim --seed 5 --nodes " + std::to_string(draw_options(5, f).nodes) +
                                              " --ticks 2000 --fleet");
}

TEST(FleetRun, IsDeterministicAndBusy) {
  Overrides f;
  f.fleet = true;
  f.ticks = 800;
  RunOptions o = draw_options(3, f);
  SimResult a = Simulator(o, nullptr).run();
  SimResult b = Simulator(o, nullptr).run();
  EXPECT_FALSE(a.violation) << a.violation->describe();
  EXPECT_EQ(a.stats.events, b.stats.events);
  EXPECT_EQ(describe(a.stats.fleet), describe(b.stats.fleet));
  // The fleet did something: leases, grants, decisions, and it settled.
  EXPECT_GT(a.stats.fleet.heartbeats_ok, 50u);
  EXPECT_GT(a.stats.fleet.grants, 0u);
  EXPECT_GT(a.stats.fleet.decisions, 0u);
  EXPECT_GE(a.stats.fleet.settled_ms, 0);
}

TEST(FleetRun, APlantedBugIsCaught) {
  Overrides f;
  f.fleet = true;
  f.bug = "fleet-lease-ignores-worker-revision";  // the quickest to catch there
  bool caught = false;
  // The range ctest asserts the fleet bugs on (tests/sim/CMakeLists.txt).
  for (uint64_t seed = 40001; seed <= 40300 && !caught; ++seed) {
    SimResult r = Simulator(draw_options(seed, f), nullptr).run();
    caught = r.violation && r.violation->checker == "fleet-one-writer";
  }
  EXPECT_TRUE(caught);
}

}  // namespace
}  // namespace tenure::sim
