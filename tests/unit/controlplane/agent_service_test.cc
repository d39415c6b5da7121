// The agents' calls at the leader (controlplane/agent_service.h) over a fake
// port: what is proposed, when a lease is granted, and the answers.
#include <gtest/gtest.h>

#include <optional>

#include "controlplane/agent_service.h"
#include "fake_port.h"

namespace tenure::controlplane {
namespace {

using testing::FakePort;
using testing::kLease;
using testing::test_options;

RegisterWorker reg(const std::string& id, const std::string& address = "127.0.0.1:8101") {
  return RegisterWorker{WorkerId(id), address, "z1", 1};
}

class AgentServiceTest : public ::testing::Test {
 protected:
  explicit AgentServiceTest(FleetPolicyOptions o = test_options()) : leader(port, o), agents(port, leader) {
    leader.on_tick();  // leads term 1 from t=1000
  }
  /// Registers `id` and applies, confirms and answers everything it needs.
  LeaseReply registered(const std::string& id) {
    std::optional<LeaseReply> got;
    agents.register_worker(reg(id), "", [&](LeaseReply r) { got = r; });
    port.apply_all();
    port.confirm_next();
    EXPECT_TRUE(got.has_value());
    return got.value_or(LeaseReply{});
  }
  /// w1 owns s1 at epoch 1; w2 is alive.
  void own_s1() {
    registered("w1");
    registered("w2");
    port.apply(CreateShards{{ShardId("s1")}});
    port.apply(AssignShards{{Placement{ShardId("s1"), WorkerId("w1"), Epoch(0)}}, ChangeReason::kCreated});
  }
  bool has_declare_dead(const WorkerId& w) const { return testing::declares_dead(port, w); }
  /// w1 silent past its lease: the leader decides it dead; then w1's
  /// heartbeat arrives and is confirmed while the DeclareDead is in flight.
  HeartbeatAnswer::Status heartbeat_while_declaring_w1_dead() {
    registered("w1");
    port.steady_ms_ = 1000 + kLease + 20;
    leader.on_tick();
    EXPECT_TRUE(has_declare_dead(WorkerId("w1")));
    std::optional<LeaseReply> got;
    agents.heartbeat(WorkerId("w1"), [&](LeaseReply r) { got = r; });
    port.confirm_next();
    EXPECT_TRUE(got && !got->error);
    return got ? got->lease.status : HeartbeatAnswer::Status::kOk;
  }

  FakePort port;
  LeaderService leader;
  AgentService agents;
};

TEST_F(AgentServiceTest, RegisterProposesOnlyWhenSomethingChanged) {
  std::optional<LeaseReply> got;
  agents.register_worker(reg("w1"), "req-1", [&](LeaseReply r) { got = r; });
  ASSERT_EQ(port.proposals().size(), 1u);
  EXPECT_EQ(port.proposals().front().first.request_id, "req-1");
  EXPECT_TRUE(std::holds_alternative<RegisterWorker>(port.proposals().front().first.body));
  port.apply_next();
  EXPECT_FALSE(got) << "the lease waits for the confirmation";
  port.confirm_next();
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->error);
  EXPECT_EQ(got->lease.status, HeartbeatAnswer::Status::kOk);
  EXPECT_EQ(got->lease_ms, kLease);

  // The same registration again (a reconnecting agent) costs no entry.
  got.reset();
  agents.register_worker(reg("w1"), "req-2", [&](LeaseReply r) { got = r; });
  EXPECT_TRUE(port.proposals().empty());
  port.confirm_next();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->lease.status, HeartbeatAnswer::Status::kOk);

  // A new address is a change: proposed.
  agents.register_worker(reg("w1", "127.0.0.1:9999"), "", [](LeaseReply) {});
  ASSERT_EQ(port.proposals().size(), 1u);
  EXPECT_EQ(std::get<RegisterWorker>(port.proposals().front().first.body).address, "127.0.0.1:9999");
}

TEST_F(AgentServiceTest, RegisterOfADeadWorkerIsProposed) {
  registered("w1");
  port.apply(DeclareDead{WorkerId("w1"), {}, ChangeReason::kDeadWorker});
  agents.register_worker(reg("w1"), "", [](LeaseReply) {});
  EXPECT_EQ(port.proposals().size(), 1u) << "same address, but dead: registering again is a change";
}

TEST_F(AgentServiceTest, RegisterRefusedIsAnErrorWithTheResult) {
  // A dead worker that still holds shards cannot register again.
  own_s1();
  port.apply(DeclareDead{WorkerId("w1"), {}, ChangeReason::kDeadWorker});
  std::optional<LeaseReply> got;
  agents.register_worker(reg("w1"), "", [&](LeaseReply r) { got = r; });
  ApplyResult r = port.apply_next();
  ASSERT_NE(r.code, ApplyCode::kOk);
  ASSERT_TRUE(got && got->error);
  EXPECT_EQ(got->error->kind, CallError::Kind::kRefused);
  EXPECT_EQ(got->error->refused.code, r.code);
  EXPECT_EQ(port.confirms_waiting(), 0u) << "no lease after a refusal";
}

TEST_F(AgentServiceTest, RegisterWhoseProposalFailsGrantsNoLease) {
  std::optional<LeaseReply> got;
  agents.register_worker(reg("w1"), "", [&](LeaseReply r) { got = r; });
  port.fail_next(PortError::Code::kTimeout);
  ASSERT_TRUE(got && got->error);
  EXPECT_EQ(got->error->kind, CallError::Kind::kConsensus);
  EXPECT_EQ(got->error->consensus.code, PortError::Code::kTimeout);
  EXPECT_EQ(port.confirms_waiting(), 0u);
}

TEST_F(AgentServiceTest, HeartbeatAnsweredOnlyAfterLeadershipIsConfirmed) {
  registered("w1");
  std::optional<LeaseReply> got;
  agents.heartbeat(WorkerId("w1"), [&](LeaseReply r) { got = r; });
  EXPECT_FALSE(got);
  EXPECT_EQ(port.confirms_waiting(), 1u);
  port.confirm_next();
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->error);
  EXPECT_EQ(got->lease.status, HeartbeatAnswer::Status::kOk);
  EXPECT_EQ(got->lease.revision, port.sm_.revision());
  EXPECT_EQ(got->lease.worker_revision, port.sm_.worker_events_revision(WorkerId("w1")));
}

TEST_F(AgentServiceTest, HeartbeatCountsAsOfTheConfirmation) {
  registered("w1");  // heard at t=1000
  // Sent at 3500, confirmed at 3900: the lease runs from the confirmation.
  port.steady_ms_ = 3500;
  agents.heartbeat(WorkerId("w1"), [](LeaseReply) {});
  port.steady_ms_ = 3900;
  port.confirm_next();
  // Past a lease from the sending, within one from the confirmation.
  port.steady_ms_ = 3500 + kLease + 100;
  leader.on_tick();
  EXPECT_FALSE(has_declare_dead(WorkerId("w1")));
}

TEST_F(AgentServiceTest, NoLeaseWhenLeadershipMovedBeforeTheConfirmation) {
  registered("w1");  // heard at t=1000
  std::optional<LeaseReply> got;
  port.steady_ms_ = 3900;
  agents.heartbeat(WorkerId("w1"), [&](LeaseReply r) { got = r; });
  port.leading_ = false;  // deposed while the ReadIndex round ran
  port.confirm_next();
  ASSERT_TRUE(got && got->error);
  EXPECT_EQ(got->error->kind, CallError::Kind::kLeadershipMoved);
  // The heartbeat was not counted: had this member kept leading, w1's
  // lease would have run out at 1000 + lease.
  port.leading_ = true;
  port.steady_ms_ = 1000 + kLease + 20;
  leader.on_tick();
  EXPECT_TRUE(has_declare_dead(WorkerId("w1")));
}

TEST_F(AgentServiceTest, FailedConfirmationIsTheConsensusError) {
  registered("w1");
  std::optional<LeaseReply> got;
  agents.heartbeat(WorkerId("w1"), [&](LeaseReply r) { got = r; });
  PortError e{PortError::Code::kNotLeader, "not the leader", consensus::NodeId("c2")};
  port.confirm_next(&e);
  ASSERT_TRUE(got && got->error);
  EXPECT_EQ(got->error->kind, CallError::Kind::kConsensus);
  EXPECT_EQ(got->error->consensus.code, PortError::Code::kNotLeader);
  EXPECT_EQ(got->error->consensus.leader, consensus::NodeId("c2"));
}

TEST_F(AgentServiceTest, UnknownAndDeadWorkers) {
  std::optional<LeaseReply> got;
  agents.heartbeat(WorkerId("nobody"), [&](LeaseReply r) { got = r; });
  port.confirm_next();
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->error);
  EXPECT_EQ(got->lease.status, HeartbeatAnswer::Status::kUnknown);

  registered("w1");
  port.apply(DeclareDead{WorkerId("w1"), {}, ChangeReason::kDeadWorker});
  got.reset();
  agents.heartbeat(WorkerId("w1"), [&](LeaseReply r) { got = r; });
  port.confirm_next();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->lease.status, HeartbeatAnswer::Status::kDead);
}

TEST_F(AgentServiceTest, HeartbeatNamesTheShardsBeingHandedOff) {
  own_s1();
  port.apply(BeginMoves{{Placement{ShardId("s1"), WorkerId("w2"), Epoch(1)}}, ChangeReason::kManual});
  std::optional<LeaseReply> got;
  agents.heartbeat(WorkerId("w1"), [&](LeaseReply r) { got = r; });
  port.confirm_next();
  ASSERT_TRUE(got);
  ASSERT_EQ(got->lease.revoked.size(), 1u);
  EXPECT_EQ(got->lease.revoked[0].first, ShardId("s1"));
  EXPECT_EQ(got->lease.revoked[0].second, Epoch(1));
}

TEST_F(AgentServiceTest, ReleaseCompletesTheConfirmedHandoffs) {
  own_s1();
  port.apply(BeginMoves{{Placement{ShardId("s1"), WorkerId("w2"), Epoch(1)}}, ChangeReason::kManual});
  std::optional<ReleaseReply> got;
  CompleteMoves c;
  c.from = WorkerId("w1");
  c.shards = {ShardId("s1"), ShardId("s-unknown")};
  c.epochs = {Epoch(1), Epoch(1)};
  agents.release(c, "rel-1", [&](ReleaseReply r) { got = r; });
  ASSERT_EQ(port.proposals().size(), 1u);
  EXPECT_EQ(port.proposals().front().first.request_id, "rel-1");
  port.apply_all();
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->error);
  EXPECT_EQ(got->released, 1u);
  EXPECT_EQ(got->revision, port.sm_.revision());
  EXPECT_EQ(port.sm_.shard(ShardId("s1"))->worker, WorkerId("w2"));
  EXPECT_EQ(port.sm_.shard(ShardId("s1"))->epoch, Epoch(2));

  // A release at a stale epoch completes nothing.
  got.reset();
  c.shards = {ShardId("s1")};
  c.epochs = {Epoch(1)};
  agents.release(c, "", [&](ReleaseReply r) { got = r; });
  port.apply_all();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->released, 0u);
}

TEST_F(AgentServiceTest, ReleaseThatFailsIsTheConsensusError) {
  own_s1();
  std::optional<ReleaseReply> got;
  CompleteMoves c;
  c.from = WorkerId("w1");
  c.shards = {ShardId("s1")};
  c.epochs = {Epoch(1)};
  agents.release(c, "", [&](ReleaseReply r) { got = r; });
  port.fail_next(PortError::Code::kBusy);
  ASSERT_TRUE(got && got->error);
  EXPECT_EQ(got->error->kind, CallError::Kind::kConsensus);
  EXPECT_EQ(got->error->consensus.code, PortError::Code::kBusy);
}

TEST_F(AgentServiceTest, LeaveMovesTheShardsAtOnce) {
  own_s1();
  std::optional<LeaveReply> got;
  agents.leave(WorkerId("w1"), "leave-1", [&](LeaveReply r) { got = r; });
  ASSERT_EQ(port.proposals().size(), 1u);
  const auto& d = std::get<DeclareDead>(port.proposals().front().first.body);
  EXPECT_EQ(d.id, WorkerId("w1"));
  EXPECT_EQ(d.reason, ChangeReason::kReleased);
  port.apply_all();
  ASSERT_TRUE(got);
  EXPECT_FALSE(got->error);
  EXPECT_EQ(got->moved, 1u);
  EXPECT_EQ(port.sm_.worker(WorkerId("w1"))->state, WorkerState::kDead);
  EXPECT_EQ(port.sm_.shard(ShardId("s1"))->worker, WorkerId("w2"));
}

TEST_F(AgentServiceTest, LeaveOfAnUnknownWorkerProposesNothing) {
  std::optional<LeaveReply> got;
  agents.leave(WorkerId("nobody"), "", [&](LeaveReply r) { got = r; });
  EXPECT_TRUE(port.proposals().empty());
  ASSERT_TRUE(got && got->error);
  EXPECT_EQ(got->error->kind, CallError::Kind::kUnknownWorker);
}

TEST_F(AgentServiceTest, LeaveThatFailsIsTheConsensusError) {
  own_s1();
  std::optional<LeaveReply> got;
  agents.leave(WorkerId("w1"), "", [&](LeaveReply r) { got = r; });
  port.fail_next(PortError::Code::kNotLeader);
  ASSERT_TRUE(got && got->error);
  EXPECT_EQ(got->error->kind, CallError::Kind::kConsensus);
  EXPECT_EQ(port.sm_.worker(WorkerId("w1"))->state, WorkerState::kAlive);
}

/// The planted bug fleet-lease-while-declaring-dead (a testing knob).
class LeaseWhileDeclaringDeadKnobTest : public AgentServiceTest {
 protected:
  static FleetPolicyOptions knob() {
    FleetPolicyOptions o = test_options();
    o.testing.lease_while_declaring_dead = true;
    return o;
  }
  LeaseWhileDeclaringDeadKnobTest() : AgentServiceTest(knob()) {}
};

TEST_F(AgentServiceTest, NoLeaseWhileADeclarationIsInFlight) {
  EXPECT_EQ(heartbeat_while_declaring_w1_dead(), HeartbeatAnswer::Status::kUnknown);
}

TEST_F(LeaseWhileDeclaringDeadKnobTest, GrantsTheLeaseAnyway) {
  EXPECT_EQ(heartbeat_while_declaring_w1_dead(), HeartbeatAnswer::Status::kOk);
}

}  // namespace
}  // namespace tenure::controlplane
