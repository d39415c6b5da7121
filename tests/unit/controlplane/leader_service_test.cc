// The leader's loop (controlplane/leader_service.h) over a fake port: when
// it decides, what it proposes, and the planted bug no_full_lease.
#include <gtest/gtest.h>

#include "controlplane/leader_service.h"
#include "fake_port.h"

namespace tenure::controlplane {
namespace {

using testing::FakePort;
using testing::kLease;
using testing::test_options;

class Recorder final : public LeaderObserver {
 public:
  void on_leading(consensus::Term term, const StateMachine&) override { terms.push_back(term); }
  void on_decided(const Decision& d) override { decided.push_back(d.kind); }
  void on_decision_done(const Decision& d, const PortError* err, const ApplyResult*) override {
    done.push_back({d.kind, err != nullptr});
  }
  std::vector<consensus::Term> terms;
  std::vector<Decision::Kind> decided;
  std::vector<std::pair<Decision::Kind, bool>> done;
};

class LeaderServiceTest : public ::testing::Test {
 protected:
  explicit LeaderServiceTest(FleetPolicyOptions o = test_options()) : leader(port, o, &recorder) {
    port.apply(RegisterWorker{WorkerId("w1"), "a:1", "", 1});
  }
  /// Ticks at `t` and says whether w1 was declared dead by then.
  bool dead_at(uint64_t t) {
    port.steady_ms_ = t;
    leader.on_tick();
    return testing::declares_dead(port, WorkerId("w1"));
  }

  FakePort port;
  Recorder recorder;
  LeaderService leader;
};

TEST_F(LeaderServiceTest, ANewLeaderGivesEveryWorkerAFullLease) {
  port.steady_ms_ = 5000;
  leader.on_tick();
  ASSERT_EQ(recorder.terms.size(), 1u);
  EXPECT_FALSE(dead_at(5000 + kLease)) << "w1 was never heard by this leader, but its lease runs from the election";
  EXPECT_TRUE(dead_at(5000 + kLease + 20));
  EXPECT_EQ(recorder.decided.front(), Decision::Kind::kDeclareDead);
}

// The leader's strand stalled for 0.7 s, then 2 s (its ticks ran that late): w1's
// heartbeats waited in the leader's queues, so its lease is held 2.7 s more;
// a worker that stays silent is still declared dead, that much later.
TEST_F(LeaderServiceTest, ALeadersOwnStallDoesNotCountAgainstTheLeases) {
  port.steady_ms_ = 5000;
  leader.on_tick();
  port.stalled_ms_ = 700;  // a first stall of 700 ms
  EXPECT_FALSE(dead_at(5000 + kLease));
  port.stalled_ms_ = 2700;  // 2 s more, seen at the next tick
  EXPECT_FALSE(dead_at(5000 + kLease + 20)) << "the stall counted against w1's lease";
  EXPECT_FALSE(dead_at(5000 + kLease + 700 + 2000));
  EXPECT_TRUE(dead_at(5000 + kLease + 700 + 2000 + 20));
}

// Stalls while following are not the leadership's: a new leader's full
// lease is not lengthened by them.
TEST_F(LeaderServiceTest, StallsBeforeLeadingHoldNoLease) {
  port.leading_ = false;
  port.steady_ms_ = 2000;
  leader.on_tick();
  port.stalled_ms_ = 5000;
  port.leading_ = true;
  port.steady_ms_ = 5000;
  leader.on_tick();
  EXPECT_FALSE(dead_at(5000 + kLease));
  EXPECT_TRUE(dead_at(5000 + kLease + 20));
}

TEST_F(LeaderServiceTest, DecidesNothingUntilCaughtUpInItsTerm) {
  port.caught_up_ = false;
  port.steady_ms_ = 1000;
  leader.on_tick();
  EXPECT_FALSE(dead_at(1000 + 5 * kLease));
  EXPECT_TRUE(port.proposals().empty());
  port.caught_up_ = true;
  EXPECT_TRUE(dead_at(1000 + 5 * kLease + 20));
}

TEST_F(LeaderServiceTest, NotLeadingDecidesNothingAndANewTermStartsOver) {
  port.steady_ms_ = 1000;
  leader.on_tick();
  EXPECT_TRUE(leader.leading());
  port.leading_ = false;
  EXPECT_FALSE(dead_at(1000 + 2 * kLease));
  EXPECT_FALSE(leader.leading());
  // Leading again, in a later term: a full lease from then, not from 1000.
  port.leading_ = true;
  port.term_ = consensus::Term(3);
  EXPECT_FALSE(dead_at(1000 + 2 * kLease));
  ASSERT_EQ(recorder.terms.size(), 2u);
  EXPECT_EQ(recorder.terms.back(), consensus::Term(3));
  EXPECT_FALSE(dead_at(1000 + 3 * kLease));
  EXPECT_TRUE(dead_at(1000 + 3 * kLease + 20));
}

TEST_F(LeaderServiceTest, AFailedDecisionMayBeDecidedAgain) {
  port.steady_ms_ = 1000;
  leader.on_tick();
  ASSERT_TRUE(dead_at(1000 + kLease + 20));
  port.fail_next(PortError::Code::kTimeout);
  ASSERT_FALSE(recorder.done.empty());
  EXPECT_EQ(recorder.done.back(), std::make_pair(Decision::Kind::kDeclareDead, true));
  // While in flight it was not decided twice; once failed, it is again.
  EXPECT_TRUE(dead_at(1000 + kLease + 40));
  port.apply_all();
  EXPECT_EQ(port.sm_.worker(WorkerId("w1"))->state, WorkerState::kDead);
}

TEST_F(LeaderServiceTest, ExecuteProposesThePlanAndCountsTheChanges) {
  port.apply(CreateShards{{ShardId("s1"), ShardId("s2")}});
  Plan p = leader.plan();
  EXPECT_EQ(p.assignments.size(), 2u);
  std::optional<size_t> changed;
  leader.execute(p, [&](const PortError* err, size_t n) {
    EXPECT_EQ(err, nullptr);
    changed = n;
  });
  port.apply_all();
  ASSERT_TRUE(changed);
  EXPECT_EQ(*changed, 2u);
  EXPECT_EQ(port.sm_.shard(ShardId("s1"))->worker, WorkerId("w1"));
}

/// The planted bug fleet-no-full-lease (a testing knob).
class NoFullLeaseKnobTest : public LeaderServiceTest {
 protected:
  static FleetPolicyOptions knob() {
    FleetPolicyOptions o = test_options();
    o.testing.no_full_lease = true;
    return o;
  }
  NoFullLeaseKnobTest() : LeaderServiceTest(knob()) {}
};

TEST_F(NoFullLeaseKnobTest, CountsEveryLeaseHalfGone) {
  port.steady_ms_ = 5000;
  leader.on_tick();
  EXPECT_TRUE(dead_at(5000 + kLease / 2 + 20));
}

TEST(FleetPlantedBugs, NamesSwitchTheirKnobs) {
  for (const auto& name : fleet_planted_bug_names()) {
    FleetTestingKnobs k;
    EXPECT_TRUE(enable_fleet_planted_bug(k, name)) << name;
    EXPECT_TRUE(k.any()) << name;
  }
  FleetTestingKnobs k;
  EXPECT_FALSE(enable_fleet_planted_bug(k, "fleet-lease-no-margin"));  // the agent's, not the leader's
  EXPECT_FALSE(k.any());
}

}  // namespace
}  // namespace tenure::controlplane
