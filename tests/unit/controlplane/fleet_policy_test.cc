#include "controlplane/fleet_policy.h"

#include <gtest/gtest.h>

namespace tenure::controlplane {
namespace {

class FleetPolicyTest : public ::testing::Test {
 protected:
  FleetPolicyTest() : policy(options()) { sm.set_history(&history); }
  static FleetPolicyOptions options() {
    FleetPolicyOptions o;
    o.lease_ms = 3000;
    o.check_interval_ms = 10;
    o.placement_min_interval_ms = 0;
    return o;
  }
  void apply(Command c) { sm.apply(c); }
  /// Applies every decision due at `now` (as if each committed at once).
  std::vector<Decision> step(uint64_t now) {
    auto ds = policy.tick(sm, now, now);
    for (auto& d : ds) {
      sm.apply(d.command);
      policy.finished(d);
    }
    policy.on_applied(sm, now);
    return ds;
  }
  size_t count(const std::vector<Decision>& ds, Decision::Kind k) {
    return static_cast<size_t>(std::count_if(ds.begin(), ds.end(), [k](const Decision& d) { return d.kind == k; }));
  }
  MemoryHistory history;
  StateMachine sm;
  FleetPolicy policy;
};

TEST_F(FleetPolicyTest, SilentWorkerIsDeclaredDeadOnlyAfterItsLease) {
  apply(Command{"", 0, RegisterWorker{WorkerId("w1"), "a", "", 1}});
  apply(Command{"", 0, RegisterWorker{WorkerId("w2"), "b", "", 1}});
  apply(Command{"", 0, CreateShards{{ShardId("s1"), ShardId("s2")}}});
  policy.start_leading(sm, 1000);
  step(1010);  // placement
  EXPECT_EQ(sm.count(ShardState::kActive), 2u);
  // w2 keeps heartbeating, w1 is silent.
  for (uint64_t t = 1500; t <= 4000; t += 500) {
    policy.heartbeat(sm, WorkerId("w2"), t);
    EXPECT_EQ(count(step(t), Decision::Kind::kDeclareDead), 0u) << t;
  }
  policy.heartbeat(sm, WorkerId("w2"), 4010);
  auto ds = step(4010);  // 3010 ms after the leader started: past w1's full lease
  ASSERT_EQ(count(ds, Decision::Kind::kDeclareDead), 1u);
  EXPECT_EQ(sm.worker(WorkerId("w1"))->state, WorkerState::kDead);
  EXPECT_EQ(sm.shards_of(WorkerId("w2")).size(), 2u);
}

// A removed worker's last heartbeat is not kept by the leader until its
// next election: the lease check drops it (first, middle and last ids).
TEST_F(FleetPolicyTest, RemovedWorkersAreForgottenByTheLeaseCheck) {
  for (const char* id : {"w1", "w2", "w3", "w4"}) apply(Command{"", 0, RegisterWorker{WorkerId(id), "a", "", 1}});
  policy.start_leading(sm, 1000);
  step(1010);
  EXPECT_EQ(policy.workers_heard(), 4u);
  for (const char* id : {"w1", "w3", "w4"}) {
    apply(Command{"", 0, SetDraining{WorkerId(id), true}});
    ASSERT_EQ(sm.apply(Command{"", 0, RemoveWorker{WorkerId(id)}}).code, ApplyCode::kOk) << id;
  }
  policy.heartbeat(sm, WorkerId("w2"), 1500);
  step(1500);
  EXPECT_EQ(policy.workers_heard(), 1u);
  apply(Command{"", 0, SetDraining{WorkerId("w2"), true}});
  ASSERT_EQ(sm.apply(Command{"", 0, RemoveWorker{WorkerId("w2")}}).code, ApplyCode::kOk);
  step(1600);
  EXPECT_EQ(policy.workers_heard(), 0u);
}

TEST_F(FleetPolicyTest, NewLeaderGivesEveryoneAFullLease) {
  apply(Command{"", 0, RegisterWorker{WorkerId("w1"), "a", "", 1}});
  policy.start_leading(sm, 100000);  // nobody heard from w1 for ages before
  EXPECT_EQ(count(step(102000), Decision::Kind::kDeclareDead), 0u);
  EXPECT_EQ(count(step(103001), Decision::Kind::kDeclareDead), 1u);
}

TEST_F(FleetPolicyTest, DeadWorkerIsToldSo) {
  apply(Command{"", 0, RegisterWorker{WorkerId("w1"), "a", "", 1}});
  policy.start_leading(sm, 0);
  step(3001);
  EXPECT_EQ(policy.heartbeat(sm, WorkerId("w1"), 3002).status, HeartbeatAnswer::Status::kDead);
  EXPECT_EQ(policy.heartbeat(sm, WorkerId("nobody"), 3002).status, HeartbeatAnswer::Status::kUnknown);
}

TEST_F(FleetPolicyTest, UnconfirmedHandoffCompletesAfterTheLease) {
  apply(Command{"", 0, RegisterWorker{WorkerId("w1"), "a", "", 1}});
  apply(Command{"", 0, CreateShards{{ShardId("s1")}}});
  apply(Command{"", 0, AssignShards{{Placement{ShardId("s1"), WorkerId("w1"), Epoch(0)}}, ChangeReason::kCreated}});
  apply(Command{"", 0, RegisterWorker{WorkerId("w2"), "b", "", 1}});
  policy.start_leading(sm, 0);
  apply(Command{"", 0, BeginMoves{{Placement{ShardId("s1"), WorkerId("w2"), Epoch(1)}}, ChangeReason::kManual}});
  policy.on_applied(sm, 500);
  // The old owner heartbeats and hears of the revoke, but never releases.
  auto a = policy.heartbeat(sm, WorkerId("w1"), 600);
  ASSERT_EQ(a.revoked.size(), 1u);
  EXPECT_EQ(a.revoked[0].first, ShardId("s1"));
  for (uint64_t t = 600; t <= 3600; t += 100) {
    // Seen at 500: until 500 + lease the old owner may still be serving.
    if (t == 3500) {
      EXPECT_EQ(sm.shard(ShardId("s1"))->state, ShardState::kHandoff);
    }
    policy.heartbeat(sm, WorkerId("w1"), t);
    policy.heartbeat(sm, WorkerId("w2"), t);
    step(t);
  }
  EXPECT_EQ(sm.shard(ShardId("s1"))->state, ShardState::kActive);
  EXPECT_EQ(sm.shard(ShardId("s1"))->worker, WorkerId("w2"));
  EXPECT_EQ(sm.shard(ShardId("s1"))->epoch, Epoch(2));
}

TEST_F(FleetPolicyTest, AnswerNamesTheRevisionOfTheWorkersLastEvent) {
  // After a handoff from w1 completed by expiry, w1's answers no longer
  // name the shard as revoked; the worker revision is what tells its agent
  // to wait for the revoke before it extends its lease (LeaseLedger).
  apply(Command{"", 0, RegisterWorker{WorkerId("w1"), "a", "", 1}});
  apply(Command{"", 0, RegisterWorker{WorkerId("w2"), "b", "", 1}});
  apply(Command{"", 0, CreateShards{{ShardId("s1")}}});
  apply(Command{"", 0, AssignShards{{Placement{ShardId("s1"), WorkerId("w1"), Epoch(0)}}, ChangeReason::kCreated}});
  policy.start_leading(sm, 0);
  apply(Command{"", 0, BeginMoves{{Placement{ShardId("s1"), WorkerId("w2"), Epoch(1)}}, ChangeReason::kManual}});
  Revision revoke = sm.revision();
  apply(Command{"", 0, CompleteMoves{WorkerId("w1"), {ShardId("s1")}, {Epoch(1)}, true}});
  apply(Command{"", 0, CreateShards{{ShardId("other")}}});
  auto a = policy.heartbeat(sm, WorkerId("w1"), 100);
  EXPECT_TRUE(a.revoked.empty());
  EXPECT_EQ(a.worker_revision, revoke);
  EXPECT_GT(a.revision, revoke);
  auto b = policy.heartbeat(sm, WorkerId("w2"), 100);
  EXPECT_EQ(b.worker_revision, history.of(ShardId("s1")).back().revision);
}

TEST_F(FleetPolicyTest, ShardCreatedAgainAfterDeletionWaitsOutTheOldOwnersLease) {
  // w1 may serve s1 until its lease lapses, whatever the deletion did to
  // the epoch; the same id created again must not be granted meanwhile.
  apply(Command{"", 0, RegisterWorker{WorkerId("w1"), "a", "", 1}});
  apply(Command{"", 0, RegisterWorker{WorkerId("w2"), "b", "", 1}});
  apply(Command{"", 0, CreateShards{{ShardId("s1"), ShardId("fresh")}}});
  policy.start_leading(sm, 0);
  step(10);
  ASSERT_EQ(sm.count(ShardState::kActive), 2u);
  apply(Command{"", 0, DeleteShard{ShardId("s1")}});
  policy.on_applied(sm, 1000);
  apply(Command{"", 0, CreateShards{{ShardId("s1"), ShardId("new")}}});
  policy.on_applied(sm, 1000);
  for (uint64_t t = 1000; t < 4000; t += 50) {
    policy.heartbeat(sm, WorkerId("w1"), t);
    policy.heartbeat(sm, WorkerId("w2"), t);
    step(t);
    // A shard never owned is placed at once; s1 only after 1000 + lease.
    if (t >= 1000 + 50) {
      EXPECT_EQ(sm.shard(ShardId("new"))->state, ShardState::kActive);
    }
    EXPECT_EQ(sm.shard(ShardId("s1"))->state, ShardState::kUnassigned) << "at " << t;
  }
  auto dry = policy.plan(sm, 4000);
  EXPECT_TRUE(dry.assignments.empty());
  for (uint64_t t = 4000; t <= 4100; t += 50) step(t);
  EXPECT_EQ(sm.shard(ShardId("s1"))->state, ShardState::kActive);
  EXPECT_EQ(sm.shard(ShardId("s1"))->epoch, Epoch(3));  // 1 granted, 2 deleted, 3 granted again
}

TEST_F(FleetPolicyTest, NewLeaderHoldsUnassignedShardsThatHadAnOwner) {
  // A deletion the previous leader saw: this one cannot know when, so it
  // holds every unassigned shard with a history of owners for a full lease.
  apply(Command{"", 0, RegisterWorker{WorkerId("w1"), "a", "", 1}});
  apply(Command{"", 0, CreateShards{{ShardId("s1")}}});
  apply(Command{"", 0, AssignShards{{Placement{ShardId("s1"), WorkerId("w1"), Epoch(0)}}, ChangeReason::kCreated}});
  apply(Command{"", 0, DeleteShard{ShardId("s1")}});
  apply(Command{"", 0, CreateShards{{ShardId("s1")}}});
  policy.start_leading(sm, 10000);
  for (uint64_t t = 10000; t < 13000; t += 50) {
    policy.heartbeat(sm, WorkerId("w1"), t);
    step(t);
    EXPECT_EQ(sm.shard(ShardId("s1"))->state, ShardState::kUnassigned) << "at " << t;
  }
  for (uint64_t t = 13000; t <= 13100; t += 50) {
    policy.heartbeat(sm, WorkerId("w1"), t);
    step(t);
  }
  EXPECT_EQ(sm.shard(ShardId("s1"))->worker, WorkerId("w1"));
}

TEST_F(FleetPolicyTest, NewLeaderHoldsAShardCreatedAgainAfterItStarted) {
  // The deletion applied before this leader started (so it saw no event of
  // it) and the shard was created again after: still held for a lease from
  // the start (tenure-sim --fleet seeds 3941 and 13804 found this).
  apply(Command{"", 0, RegisterWorker{WorkerId("w1"), "a", "", 1}});
  apply(Command{"", 0, CreateShards{{ShardId("s1")}}});
  apply(Command{"", 0, AssignShards{{Placement{ShardId("s1"), WorkerId("w1"), Epoch(0)}}, ChangeReason::kCreated}});
  apply(Command{"", 0, DeleteShard{ShardId("s1")}});
  policy.start_leading(sm, 10000);
  apply(Command{"", 0, CreateShards{{ShardId("s1"), ShardId("never-owned")}}});
  policy.on_applied(sm, 10100);
  for (uint64_t t = 10100; t < 13000; t += 50) {
    policy.heartbeat(sm, WorkerId("w1"), t);
    step(t);
    EXPECT_EQ(sm.shard(ShardId("s1"))->state, ShardState::kUnassigned) << "at " << t;
  }
  EXPECT_EQ(sm.shard(ShardId("never-owned"))->state, ShardState::kActive);
  for (uint64_t t = 13000; t <= 13100; t += 50) {
    policy.heartbeat(sm, WorkerId("w1"), t);
    step(t);
  }
  EXPECT_EQ(sm.shard(ShardId("s1"))->state, ShardState::kActive);
}

TEST_F(FleetPolicyTest, WorkerBackFromTheDeadGetsAFreshLease) {
  apply(Command{"", 0, RegisterWorker{WorkerId("w1"), "a", "", 1}});
  policy.start_leading(sm, 0);
  policy.heartbeat(sm, WorkerId("w1"), 100);
  EXPECT_EQ(count(step(3101), Decision::Kind::kDeclareDead), 1u);
  apply(Command{"", 5000, RegisterWorker{WorkerId("w1"), "a", "", 1}});  // back, before its heartbeat arrives
  EXPECT_EQ(count(step(5000), Decision::Kind::kDeclareDead), 0u);
  EXPECT_EQ(count(step(8001), Decision::Kind::kDeclareDead), 1u);  // a full lease later, silent again
}

TEST_F(FleetPolicyTest, InFlightDecisionsAreNotRepeated) {
  apply(Command{"", 0, RegisterWorker{WorkerId("w1"), "a", "", 1}});
  policy.start_leading(sm, 0);
  auto first = policy.tick(sm, 3001, 3001);
  ASSERT_EQ(count(first, Decision::Kind::kDeclareDead), 1u);
  // Not yet applied: the next tick must not decide it again.
  EXPECT_EQ(count(policy.tick(sm, 3100, 3100), Decision::Kind::kDeclareDead), 0u);
  policy.finished(first[0]);  // failed (e.g. leadership lost): decide again
  EXPECT_EQ(count(policy.tick(sm, 3200, 3200), Decision::Kind::kDeclareDead), 1u);
}

}  // namespace
}  // namespace tenure::controlplane
