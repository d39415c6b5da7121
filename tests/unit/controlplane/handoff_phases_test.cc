// The phases of a planned move (CONTRACT.md, "Agent and program"): a target
// whose agent has a program prepares while the source still serves; the
// source is asked to drain only once the target is prepared (or the leader's
// prepare timeout ran out); the grant follows the release.
#include <gtest/gtest.h>

#include "controlplane/fleet_policy.h"
#include "controlplane/state_machine.h"

namespace tenure::controlplane {
namespace {

Command at(uint64_t at_ms, CommandBody body) { return Command{"", at_ms, std::move(body)}; }

class HandoffPhasesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sm.set_history(&history);
    sm.apply(at(0, RegisterWorker{WorkerId("w1"), "a:1", "", 1, /*prepares=*/true}));
    sm.apply(at(0, RegisterWorker{WorkerId("w2"), "a:2", "", 1, /*prepares=*/true}));
    sm.apply(at(0, RegisterWorker{WorkerId("plain"), "a:3", "", 1, /*prepares=*/false}));
    sm.apply(at(0, CreateShards{{ShardId("s1")}}));
    sm.apply(at(0, AssignShards{{Placement{ShardId("s1"), WorkerId("w1"), Epoch(0)}}, ChangeReason::kCreated}));
  }
  void begin_move(const std::string& to, uint64_t at_ms) {
    sm.apply(at(at_ms, BeginMoves{{Placement{ShardId("s1"), WorkerId(to), Epoch(1)}}, ChangeReason::kManual}));
  }
  std::vector<Event> events_since(Revision r, const std::string& worker) {
    return sm.events_after(r, WorkerId(worker), 100);
  }
  const Shard& s1() { return *sm.shard(ShardId("s1")); }
  /// s1's move: its phase while it is handed off (kDraining, as before
  /// there were phases, once it is not).
  HandoffPhase phase() {
    const Handoff* h = sm.handoff(ShardId("s1"));
    return h ? h->phase : HandoffPhase::kDraining;
  }
  HistoryRecord last_record() { return history.of(ShardId("s1")).back(); }
  MemoryHistory history;
  StateMachine sm;
};

TEST_F(HandoffPhasesTest, TargetPreparesWhileTheSourceServesThenTheSourceDrains) {
  Revision before = sm.revision();
  begin_move("w2", 1000);
  EXPECT_EQ(s1().state, ShardState::kHandoff);
  EXPECT_EQ(phase(), HandoffPhase::kPreparing);
  // The target hears prepare, with the epoch its grant will carry; the
  // source hears nothing yet: it serves on.
  auto to_target = events_since(before, "w2");
  ASSERT_EQ(to_target.size(), 1u);
  EXPECT_EQ(to_target[0].type, EventType::kPrepare);
  EXPECT_EQ(to_target[0].epoch, Epoch(2));
  EXPECT_TRUE(events_since(before, "w1").empty());

  // A prepared for another epoch, or from another worker, changes nothing.
  Revision r = sm.revision();
  EXPECT_EQ(sm.apply(at(1100, EndPrepares{WorkerId("w2"), {ShardId("s1")}, {Epoch(1)}, false})).changed, 0u);
  EXPECT_EQ(sm.apply(at(1100, EndPrepares{WorkerId("w1"), {ShardId("s1")}, {Epoch(2)}, false})).changed, 0u);
  EXPECT_EQ(sm.revision(), r);

  EXPECT_EQ(sm.apply(at(1250, EndPrepares{WorkerId("w2"), {ShardId("s1")}, {Epoch(2)}, false})).changed, 1u);
  EXPECT_EQ(phase(), HandoffPhase::kDraining);
  auto to_source = events_since(r, "w1");
  ASSERT_EQ(to_source.size(), 1u);
  EXPECT_EQ(to_source[0].type, EventType::kRevoke);
  EXPECT_EQ(to_source[0].epoch, Epoch(1));
  // A repeated prepared (a retry) does nothing more.
  EXPECT_EQ(sm.apply(at(1260, EndPrepares{WorkerId("w2"), {ShardId("s1")}, {Epoch(2)}, false})).changed, 0u);

  sm.apply(at(1400, CompleteMoves{WorkerId("w1"), {ShardId("s1")}, {Epoch(1)}, false}));
  EXPECT_EQ(s1().state, ShardState::kActive);
  EXPECT_EQ(s1().worker, WorkerId("w2"));
  EXPECT_EQ(s1().epoch, Epoch(2));
  HistoryRecord h = last_record();
  EXPECT_EQ(h.prepare_ms, 250u);
  EXPECT_EQ(h.drain_ms, 150u);
  EXPECT_TRUE(h.prepared);
  EXPECT_FALSE(h.prepare_timed_out);
  EXPECT_FALSE(h.drain_timed_out);
}

TEST_F(HandoffPhasesTest, ATargetWithoutAProgramSkipsThePrepare) {
  Revision before = sm.revision();
  begin_move("plain", 1000);
  EXPECT_EQ(phase(), HandoffPhase::kDraining);
  EXPECT_EQ(events_since(before, "w1").back().type, EventType::kRevoke);
  EXPECT_TRUE(events_since(before, "plain").empty());
  sm.apply(at(1300, CompleteMoves{WorkerId("w1"), {ShardId("s1")}, {Epoch(1)}, true}));
  EXPECT_EQ(last_record().prepare_ms, 0u);
  EXPECT_FALSE(last_record().prepared);
  EXPECT_EQ(last_record().drain_ms, 300u);
  EXPECT_TRUE(last_record().drain_timed_out);
}

TEST_F(HandoffPhasesTest, APrepareTimeoutIsRecorded) {
  begin_move("w2", 1000);
  sm.apply(at(11000, EndPrepares{WorkerId("w2"), {ShardId("s1")}, {Epoch(2)}, /*expired=*/true}));
  sm.apply(at(11100, CompleteMoves{WorkerId("w1"), {ShardId("s1")}, {Epoch(1)}, false}));
  EXPECT_TRUE(last_record().prepare_timed_out);
  EXPECT_EQ(last_record().prepare_ms, 10000u);
}

// The source was never asked to drain: when the target can no longer take
// the shard, the move is called off and the source keeps it at its epoch.
TEST_F(HandoffPhasesTest, ATargetLostWhilePreparingCallsTheMoveOff) {
  for (const char* how : {"dead", "draining"}) {
    SCOPED_TRACE(how);
    sm = StateMachine();
    SetUp();
    begin_move("w2", 1000);
    Revision r = sm.revision();
    if (std::string(how) == "dead") {
      sm.apply(at(1100, DeclareDead{WorkerId("w2"), {}, ChangeReason::kDeadWorker}));
    } else {
      sm.apply(at(1100, SetDraining{WorkerId("w2"), true}));
    }
    EXPECT_EQ(s1().state, ShardState::kActive);
    EXPECT_EQ(s1().worker, WorkerId("w1"));
    EXPECT_EQ(s1().epoch, Epoch(1));
    EXPECT_EQ(sm.handoff(ShardId("s1")), nullptr);
    EXPECT_TRUE(sm.handoffs().empty());
    EXPECT_TRUE(sm.handoffs_from(WorkerId("w1")).empty());
    EXPECT_GT(sm.revision(), r);
    for (const auto& e : events_since(r, "w1")) EXPECT_NE(e.type, EventType::kRevoke);
  }
}

TEST_F(HandoffPhasesTest, ADrainingTargetKeepsAMoveWhoseSourceDrainsAlready) {
  sm.apply(at(0, RegisterWorker{WorkerId("w2"), "a:2", "", 1, false}));  // no program any more
  begin_move("w2", 1000);
  ASSERT_EQ(phase(), HandoffPhase::kDraining);
  sm.apply(at(1100, SetDraining{WorkerId("w2"), true}));
  sm.apply(at(1200, SetDraining{WorkerId("w2"), false}));
  sm.apply(at(1300, CompleteMoves{WorkerId("w1"), {ShardId("s1")}, {Epoch(1)}, false}));
  EXPECT_EQ(s1().worker, WorkerId("w2"));
}

// Whatever ends a preparing move early tells its source: it never heard a revoke.
TEST_F(HandoffPhasesTest, TheSourceHearsTheRevokeWhenAPreparingMoveEndsAnotherWay) {
  begin_move("w2", 1000);
  Revision r = sm.revision();
  sm.apply(at(1100, DeleteShard{ShardId("s1")}));
  auto to_source = events_since(r, "w1");
  ASSERT_FALSE(to_source.empty());
  EXPECT_EQ(to_source[0].type, EventType::kRevoke);
  EXPECT_EQ(to_source[0].epoch, Epoch(1));
}

TEST_F(HandoffPhasesTest, PhasesSurviveASnapshot) {
  begin_move("w2", 1000);
  std::string snap = sm.snapshot();
  StateMachine copy;
  ASSERT_TRUE(copy.restore(snap));
  EXPECT_EQ(copy.snapshot(), snap);
  EXPECT_EQ(copy.handoff(ShardId("s1"))->phase, HandoffPhase::kPreparing);
  EXPECT_TRUE(copy.worker(WorkerId("w1"))->prepares);
  EXPECT_FALSE(copy.worker(WorkerId("plain"))->prepares);
  sm.apply(at(1200, EndPrepares{WorkerId("w2"), {ShardId("s1")}, {Epoch(2)}, false}));
  sm.apply(at(1300, CompleteMoves{WorkerId("w1"), {ShardId("s1")}, {Epoch(1)}, false}));
  ASSERT_TRUE(copy.restore(sm.snapshot()));
  // The shard's last change keeps its phases (the records are the sink's).
  EXPECT_EQ(copy.shard(ShardId("s1"))->last.prepare_ms, 200u);
  EXPECT_EQ(copy.shard(ShardId("s1"))->last.drain_ms, 100u);
  EXPECT_TRUE(copy.shard(ShardId("s1"))->last.prepared);
  EXPECT_EQ(copy.shard(ShardId("s1"))->last.reason, ChangeReason::kManual);
}

TEST(HandoffPhaseCommands, RoundTripAndOlderRegistrations) {
  Command c{"", 5, EndPrepares{WorkerId("w"), {ShardId("a"), ShardId("b")}, {Epoch(3), Epoch(9)}, true}};
  auto d = decode_command(encode_command(c));
  ASSERT_TRUE(d.has_value());
  const auto& e = std::get<EndPrepares>(d->body);
  EXPECT_EQ(e.target, WorkerId("w"));
  EXPECT_EQ(e.epochs, (std::vector<Epoch>{Epoch(3), Epoch(9)}));
  EXPECT_TRUE(e.expired);
  // A registration without a program encodes as before the flag existed,
  // so entries written by older versions decode as "no program".
  Command plain{"", 5, RegisterWorker{WorkerId("w"), "a:1", "z", 2, false}};
  Command with{"", 5, RegisterWorker{WorkerId("w"), "a:1", "z", 2, true}};
  EXPECT_EQ(encode_command(with).size(), encode_command(plain).size() + 1);
  EXPECT_FALSE(std::get<RegisterWorker>(decode_command(encode_command(plain))->body).prepares);
  EXPECT_TRUE(std::get<RegisterWorker>(decode_command(encode_command(with))->body).prepares);
}

class PreparePolicyTest : public HandoffPhasesTest {
 protected:
  PreparePolicyTest() : policy(options()) {}
  static FleetPolicyOptions options() {
    FleetPolicyOptions o;
    o.lease_ms = 3000;
    o.prepare_timeout_ms = 5000;
    o.check_interval_ms = 10;
    o.max_concurrent_moves = 0;  // placement starts no moves of its own
    return o;
  }
  std::vector<Decision> step(uint64_t now) {
    for (const char* w : {"w1", "w2", "plain"}) policy.heartbeat(sm, WorkerId(w), now);
    auto ds = policy.tick(sm, now, now);
    for (auto& d : ds) {
      d.command.at_ms = now;
      sm.apply(d.command);
      policy.finished(d);
    }
    policy.on_applied(sm, now);
    return ds;
  }
  FleetPolicy policy;
};

// While the target prepares, the source's heartbeats name nothing to drain
// and its lease does not count down the handoff; a target that never
// answers holds the move up for prepare_timeout_ms, then the source drains.
TEST_F(PreparePolicyTest, AStuckPrepareEndsAtItsTimeoutAndTheLeaseClockStartsThen) {
  policy.start_leading(sm, 0);
  step(10);
  begin_move("w2", 100);
  policy.on_applied(sm, 100);
  size_t ended = 0;
  for (uint64_t t = 200; t <= 5100; t += 100) {
    for (const auto& d : step(t)) ended += d.kind == Decision::Kind::kEndPrepares;
    EXPECT_TRUE(policy.heartbeat(sm, WorkerId("w1"), t).revoked.empty()) << t;
    EXPECT_EQ(phase(), HandoffPhase::kPreparing) << t;  // well past the lease: no expiry
  }
  for (const auto& d : step(5200)) ended += d.kind == Decision::Kind::kEndPrepares;
  EXPECT_EQ(ended, 1u);
  ASSERT_EQ(phase(), HandoffPhase::kDraining);
  EXPECT_EQ(policy.heartbeat(sm, WorkerId("w1"), 5200).revoked.size(), 1u);
  // The source never releases: its lease is waited out from the drain's start.
  for (uint64_t t = 5300; t <= 8200; t += 100) {
    step(t);
    EXPECT_EQ(s1().state, ShardState::kHandoff) << t;
  }
  for (uint64_t t = 8300; t <= 8400; t += 100) step(t);
  EXPECT_EQ(s1().state, ShardState::kActive);
  EXPECT_EQ(s1().worker, WorkerId("w2"));
  EXPECT_TRUE(last_record().prepare_timed_out);
  EXPECT_TRUE(last_record().drain_timed_out);
}

}  // namespace
}  // namespace tenure::controlplane
