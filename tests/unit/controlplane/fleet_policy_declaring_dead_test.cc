// A worker being declared dead gets no lease until the declaration is
// settled (tenure-sim --fleet, seed 24 of the first fleet batch: the leader
// decided w8 was dead, acknowledged a heartbeat w8 sent right after, then
// applied the DeclareDead that granted w8's shard s3 to w2 while w8's new
// lease ran: two agents accepted writes for s3).
#include <gtest/gtest.h>

#include "controlplane/fleet_policy.h"

namespace tenure::controlplane {
namespace {

constexpr uint64_t kLease = 3000;

FleetPolicyOptions options() {
  FleetPolicyOptions o;
  o.lease_ms = kLease;
  o.check_interval_ms = 10;
  return o;
}

class DeclaringDeadTest : public ::testing::Test {
 protected:
  DeclaringDeadTest() : policy(options()) {
    sm.apply(Command{"", 0, RegisterWorker{WorkerId("w1"), "a", "", 1}});
    sm.apply(Command{"", 0, RegisterWorker{WorkerId("w2"), "b", "", 1}});
    sm.apply(Command{"", 0, CreateShards{{ShardId("s1")}}});
    sm.apply(Command{"", 0, AssignShards{{Placement{ShardId("s1"), WorkerId("w1"), Epoch(0)}}, ChangeReason::kCreated}});
    policy.start_leading(sm, 0);
  }
  /// The DeclareDead of w1, decided (proposed) but not applied yet.
  Decision decide_w1_dead() {
    policy.heartbeat(sm, WorkerId("w2"), kLease);
    for (auto& d : policy.tick(sm, kLease + 1, kLease + 1)) {
      if (d.kind == Decision::Kind::kDeclareDead) return d;
    }
    ADD_FAILURE() << "w1 was not declared dead";
    return Decision{};
  }
  StateMachine sm;
  FleetPolicy policy;
};

TEST_F(DeclaringDeadTest, NoLeaseWhileTheDeclarationIsInFlight) {
  Decision d = decide_w1_dead();
  ASSERT_EQ(d.worker, WorkerId("w1"));
  // w1's heartbeat arrives before the DeclareDead is applied: granting a
  // lease now would let w1 write after its shards went to w2.
  EXPECT_EQ(policy.heartbeat(sm, WorkerId("w1"), kLease + 2).status, HeartbeatAnswer::Status::kUnknown);
  sm.apply(d.command);
  policy.finished(d);
  EXPECT_EQ(sm.shard(ShardId("s1"))->worker, WorkerId("w2"));
  EXPECT_EQ(policy.heartbeat(sm, WorkerId("w1"), kLease + 3).status, HeartbeatAnswer::Status::kDead);
}

TEST_F(DeclaringDeadTest, LeaseAgainOnceTheDeclarationFailed) {
  Decision d = decide_w1_dead();
  EXPECT_EQ(policy.heartbeat(sm, WorkerId("w1"), kLease + 2).status, HeartbeatAnswer::Status::kUnknown);
  policy.finished(d);  // never applied (e.g. leadership lost before it committed)
  auto a = policy.heartbeat(sm, WorkerId("w1"), kLease + 3);
  EXPECT_EQ(a.status, HeartbeatAnswer::Status::kOk);
  // And that heartbeat counts: no new declaration for a full lease.
  for (auto& dd : policy.tick(sm, 2 * kLease, 2 * kLease)) EXPECT_NE(dd.kind, Decision::Kind::kDeclareDead);
}

}  // namespace
}  // namespace tenure::controlplane
