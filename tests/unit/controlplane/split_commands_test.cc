// Bounded commands (command_split.h, issue 8): every piece of a large
// operation encodes under kMaxCommandBytes, and the pieces together keep
// every invariant: each shard moves once, at epoch + 1, and a worker's
// failover completes whole, also when a new leader continues it.
#include <gtest/gtest.h>

#include "controlplane/command_split.h"
#include "controlplane/fleet_policy.h"
#include "controlplane/state_machine.h"

namespace tenure::controlplane {
namespace {

Command cmd(CommandBody body, std::string request_id = "", uint64_t at_ms = 1000) {
  return Command{std::move(request_id), at_ms, std::move(body)};
}

std::string long_id(size_t i) {
  std::string s = std::to_string(i);
  return std::string(100 - s.size(), 'x') + s;  // 100 characters, unique
}

std::vector<ShardId> long_ids(size_t n) {
  std::vector<ShardId> ids;
  for (size_t i = 0; i < n; ++i) ids.emplace_back(long_id(i));
  return ids;
}

TEST(CommandSplit, CreateOfManyLongIdsIsBoundedAndComplete) {
  auto ids = long_ids(100000);
  auto cmds = create_commands("req", ids);
  ASSERT_GT(cmds.size(), 30u);  // ~10 MB of ids
  std::vector<ShardId> back;
  for (size_t k = 0; k < cmds.size(); ++k) {
    EXPECT_LE(encode_command(cmds[k]).size(), kMaxCommandBytes);
    EXPECT_EQ(cmds[k].request_id, piece_request_id("req", k));
    for (const auto& id : std::get<CreateShards>(cmds[k].body).ids) back.push_back(id);
  }
  EXPECT_EQ(back, ids);
  EXPECT_EQ(cmds[0].request_id, "req");
  EXPECT_EQ(cmds[1].request_id, "req.1");
  EXPECT_EQ(piece_request_id("", 3), "");  // no id: no dedup, as before
}

TEST(CommandSplit, PiecesOfOneKeyedRequestApplyOnceAndAReusedKeyNone) {
  StateMachine sm;
  auto first = create_commands("k:key#fp1", long_ids(5000));
  ASSERT_GE(first.size(), 2u);
  for (auto& c : first) EXPECT_EQ(sm.apply(c).code, ApplyCode::kOk);
  Revision after = sm.revision();
  for (auto& c : first) EXPECT_EQ(sm.apply(c).code, ApplyCode::kOk);  // a retry: the first outcomes
  EXPECT_EQ(sm.revision(), after);
  // The same key for another request: every piece refused, nothing applied.
  std::vector<ShardId> other;
  for (size_t i = 0; i < 5000; ++i) other.emplace_back("other-" + long_id(i).substr(6));
  for (auto& c : create_commands("k:key#fp2", other)) {
    EXPECT_EQ(sm.apply(c).code, ApplyCode::kIdempotencyMismatch) << c.request_id;
  }
  EXPECT_EQ(sm.revision(), after);
  EXPECT_EQ(sm.shards().size(), 5000u);
}

TEST(CommandSplit, SmallOperationsStayOneCommand) {
  EXPECT_EQ(create_commands("", {ShardId("a")}).size(), 1u);
  auto f = failover_commands("", WorkerId("w"), {}, ChangeReason::kDeadWorker);
  ASSERT_EQ(f.size(), 1u);  // a dead worker without shards is still declared dead
  EXPECT_TRUE(std::holds_alternative<DeclareDead>(f[0].body));
  EXPECT_TRUE(failover_commands("", WorkerId("w"), {}, ChangeReason::kDeadWorker, /*declare=*/false).empty());
  CompleteMoves c;
  c.from = WorkerId("w");
  EXPECT_EQ(complete_moves_commands("", c).size(), 1u);
}

TEST(CommandSplit, FailoverAndCompletePiecesAreBounded) {
  std::vector<Placement> ps;
  CompleteMoves c;
  c.from = WorkerId(std::string(64, 'w'));
  c.expired = true;
  for (size_t i = 0; i < 20000; ++i) {
    ps.push_back(Placement{ShardId(long_id(i)), WorkerId(std::string(64, 'v')), Epoch(1u << 30)});
    c.shards.emplace_back(long_id(i));
    c.epochs.emplace_back(i);
  }
  auto f = failover_commands(std::string(200, 'k'), WorkerId(std::string(64, 'w')), ps, ChangeReason::kDeadWorker);
  ASSERT_GT(f.size(), 5u);
  EXPECT_TRUE(std::holds_alternative<DeclareDead>(f[0].body));
  size_t placed = 0;
  for (size_t k = 0; k < f.size(); ++k) {
    EXPECT_LE(encode_command(f[k]).size(), kMaxCommandBytes);
    if (k > 0) {
      ASSERT_TRUE(std::holds_alternative<FailoverShards>(f[k].body));
      placed += std::get<FailoverShards>(f[k].body).placements.size();
    } else {
      placed += std::get<DeclareDead>(f[k].body).placements.size();
    }
  }
  EXPECT_EQ(placed, ps.size());
  auto m = complete_moves_commands("", c);
  ASSERT_GT(m.size(), 5u);
  size_t n = 0;
  for (const auto& piece : m) {
    EXPECT_LE(encode_command(piece).size(), kMaxCommandBytes);
    const auto& cm = std::get<CompleteMoves>(piece.body);
    EXPECT_TRUE(cm.expired);
    ASSERT_EQ(cm.shards.size(), cm.epochs.size());
    for (size_t i = 0; i < cm.shards.size(); ++i, ++n) {
      EXPECT_EQ(cm.shards[i], c.shards[n]);
      EXPECT_EQ(cm.epochs[i], c.epochs[n]);
    }
  }
  EXPECT_EQ(n, c.shards.size());
}

// An encoded command is kept in the in-memory Raft log until a snapshot:
// its allocation must fit it, not the encoder's doubled buffer (at a
// million shards that was ~20 MB of a leader's heap).
TEST(CommandSplit, AnEncodedCommandHoldsNoSlack) {
  CreateShards create;
  for (int i = 0; i < 100000; ++i) create.ids.emplace_back("shard-" + std::to_string(i));
  std::string data = encode_command(Command{"", 1000, create});
  EXPECT_GT(data.size(), 800000u);
  EXPECT_LE(data.capacity(), data.size() + data.size() / 8 + 64);
  auto back = decode_command(data);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(std::get<CreateShards>(back->body).ids.size(), 100000u);
}

TEST(CommandSplit, FailoverShardsRoundTripsThroughTheCodec) {
  Command c = cmd(FailoverShards{WorkerId("w1"), {Placement{ShardId("s"), WorkerId("w2"), Epoch(7)}},
                                 ChangeReason::kReleased});
  auto back = decode_command(encode_command(c));
  ASSERT_TRUE(back);
  const auto& f = std::get<FailoverShards>(back->body);
  EXPECT_EQ(f.id, WorkerId("w1"));
  ASSERT_EQ(f.placements.size(), 1u);
  EXPECT_EQ(f.placements[0].expected_epoch, Epoch(7));
  EXPECT_EQ(f.reason, ChangeReason::kReleased);
}

class SplitFailoverTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sm.set_history(&history);
    for (auto w : {"w1", "w2", "w3"}) sm.apply(cmd(RegisterWorker{WorkerId(w), "a", "", 1}));
    sm.apply(cmd(CreateShards{{ShardId("s1"), ShardId("s2"), ShardId("s3")}}));
    for (auto s : {"s1", "s2", "s3"}) {
      sm.apply(cmd(AssignShards{{Placement{ShardId(s), WorkerId("w1"), Epoch(0)}}, ChangeReason::kCreated}));
    }
  }
  MemoryHistory history;
  StateMachine sm;
};

TEST_F(SplitFailoverTest, PiecesMoveEachShardOnceAtEpochPlusOne) {
  sm.apply(cmd(DeclareDead{WorkerId("w1"), {Placement{ShardId("s1"), WorkerId("w2"), Epoch(1)}}, ChangeReason::kDeadWorker}));
  EXPECT_EQ(sm.shards_of(WorkerId("w1")).size(), 2u);
  FailoverShards rest{WorkerId("w1"),
                      {Placement{ShardId("s2"), WorkerId("w3"), Epoch(1)}, Placement{ShardId("s3"), WorkerId("w2"), Epoch(1)},
                       Placement{ShardId("s1"), WorkerId("w3"), Epoch(1)}},  // s1 moved already: skipped
                      ChangeReason::kDeadWorker};
  EXPECT_EQ(sm.apply(cmd(rest)).changed, 2u);
  EXPECT_EQ(sm.apply(cmd(rest)).changed, 0u);  // a replayed piece changes nothing
  for (auto s : {"s1", "s2", "s3"}) {
    const Shard* sh = sm.shard(ShardId(s));
    EXPECT_EQ(sh->epoch, Epoch(2)) << s;
    auto records = history.of(ShardId(s));
    ASSERT_EQ(records.size(), 2u) << s;  // created, then one move: no hop through nobody
    EXPECT_EQ(records.back().from, WorkerId("w1"));
  }
  EXPECT_EQ(sm.shard(ShardId("s1"))->worker, WorkerId("w2"));
  EXPECT_TRUE(sm.shards_of(WorkerId("w1")).empty());
}

TEST_F(SplitFailoverTest, FailoverShardsNeedsADeadWorker) {
  auto r = sm.apply(cmd(FailoverShards{WorkerId("w1"), {Placement{ShardId("s1"), WorkerId("w2"), Epoch(1)}},
                                       ChangeReason::kDeadWorker}));
  EXPECT_EQ(r.code, ApplyCode::kConflict);
  EXPECT_EQ(sm.shard(ShardId("s1"))->worker, WorkerId("w1"));
  EXPECT_EQ(sm.apply(cmd(FailoverShards{WorkerId("nobody"), {}, ChangeReason::kDeadWorker})).code, ApplyCode::kNotFound);
}

TEST_F(SplitFailoverTest, PlacementOnAWorkerThatCannotTakeShardsWaits) {
  sm.apply(cmd(SetDraining{WorkerId("w3"), true}));
  sm.apply(cmd(DeclareDead{WorkerId("w1"), {Placement{ShardId("s1"), WorkerId("w3"), Epoch(1)}}, ChangeReason::kDeadWorker}));
  EXPECT_EQ(sm.shard(ShardId("s1"))->worker, WorkerId("w1"));  // left for the policy to plan again
  EXPECT_EQ(sm.shard(ShardId("s1"))->epoch, Epoch(1));
}

TEST_F(SplitFailoverTest, UnfinishedFailoverBlocksRegisterRemoveAndHandoffs) {
  sm.apply(cmd(DeclareDead{WorkerId("w1"), {}, ChangeReason::kDeadWorker}));
  EXPECT_EQ(sm.apply(cmd(RegisterWorker{WorkerId("w1"), "a", "", 1})).code, ApplyCode::kConflict);
  EXPECT_EQ(sm.worker(WorkerId("w1"))->state, WorkerState::kDead);
  EXPECT_EQ(sm.apply(cmd(RemoveWorker{WorkerId("w1")})).code, ApplyCode::kConflict);
  // A dead owner's shard never starts a handoff (no release would come).
  EXPECT_EQ(sm.apply(cmd(BeginMoves{{Placement{ShardId("s1"), WorkerId("w2"), Epoch(1)}}, ChangeReason::kDrain})).changed, 0u);
  EXPECT_EQ(sm.shard(ShardId("s1"))->state, ShardState::kActive);
  PlacementOptions po;
  EXPECT_TRUE(plan_placement(sm, po).moves.empty());
  // Once the failover completes, the worker may come back.
  sm.apply(cmd(FailoverShards{WorkerId("w1"), plan_failover(sm, WorkerId("w1"), po), ChangeReason::kDeadWorker}));
  EXPECT_TRUE(sm.shards_of(WorkerId("w1")).empty());
  EXPECT_EQ(sm.apply(cmd(RegisterWorker{WorkerId("w1"), "a", "", 1})).code, ApplyCode::kOk);
  EXPECT_EQ(sm.worker(WorkerId("w1"))->state, WorkerState::kAlive);
}

/// A large fleet: one worker dies holding thousands of long-id shards.
class LargeFailoverTest : public ::testing::Test {
 protected:
  static constexpr size_t kShards = 24000;
  void SetUp() override {
    sm.set_history(&history);
    for (auto w : {"w1", "w2", "w3", "w4"}) sm.apply(cmd(RegisterWorker{WorkerId(w), "a", "", 1}));
    for (auto& c : create_commands("", long_ids(kShards))) sm.apply(c);
    FleetPolicy p(options());
    // Passes as the leader makes them: each grants at most
    // max_assignments_per_pass (20,000), so 24,000 take two.
    size_t passes = 0;
    for (auto plan = p.plan(sm, 0); !plan.assignments.empty(); plan = p.plan(sm, 0), ++passes) {
      EXPECT_LE(plan.assignments.size(), options().max_assignments_per_pass);
      for (auto& c : p.plan_commands(plan)) {
        EXPECT_LE(encode_command(c).size(), kMaxCommandBytes);
        sm.apply(c);
      }
    }
    EXPECT_EQ(passes, 2u);
    ASSERT_EQ(sm.count(ShardState::kActive), kShards);
    held = sm.shards_of(WorkerId("w1")).size();
    ASSERT_EQ(held, kShards / 4);
  }
  static FleetPolicyOptions options() {
    FleetPolicyOptions o;
    o.lease_ms = 3000;
    o.check_interval_ms = 10;
    return o;
  }
  /// Keeps w2..w4 alive at `now`.
  void heartbeats(FleetPolicy& p, uint64_t now) {
    for (auto w : {"w2", "w3", "w4"}) p.heartbeat(sm, WorkerId(w), now);
  }
  /// `p` leads from 0 and hears w2..w4 at 3001, when w1's lease has run
  /// out: that tick's decisions (w1's declaration and its first pieces).
  std::vector<Decision> w1_expires(FleetPolicy& p) {
    p.start_leading(sm, 0);
    heartbeats(p, 3001);
    return p.tick(sm, 3001, 3001);
  }
  void expect_moved_once() {
    EXPECT_TRUE(sm.shards_of(WorkerId("w1")).empty());
    EXPECT_EQ(sm.count(ShardState::kActive), kShards);
    for (const auto& [id, s] : sm.shards()) {
      ASSERT_EQ(s.epoch.value(), history.of(id).size()) << id.str();  // one epoch per move, never a hop through nobody
      ASSERT_LE(s.epoch, Epoch(2)) << id.str();
    }
  }
  MemoryHistory history;
  StateMachine sm;
  size_t held = 0;
};

TEST_F(LargeFailoverTest, DeclareDeadAndItsPiecesAreBoundedAndComplete) {
  FleetPolicy p(options());
  auto ds = w1_expires(p);
  ASSERT_GE(ds.size(), 3u);
  EXPECT_EQ(ds[0].kind, Decision::Kind::kDeclareDead);
  EXPECT_EQ(ds[0].shards, held);
  for (size_t k = 1; k < ds.size(); ++k) EXPECT_EQ(ds[k].kind, Decision::Kind::kFailover);
  for (auto& d : ds) {
    EXPECT_LE(encode_command(d.command).size(), kMaxCommandBytes);
    EXPECT_EQ(sm.apply(d.command).code, ApplyCode::kOk);
  }
  expect_moved_once();
  for (auto& d : ds) p.finished(d);
  heartbeats(p, 3020);
  EXPECT_TRUE(p.tick(sm, 3020, 3020).empty());  // nothing left to continue
}

TEST_F(LargeFailoverTest, ANewLeaderContinuesAFailoverCutShort) {
  FleetPolicy old_leader(options());
  auto ds = w1_expires(old_leader);
  ASSERT_GE(ds.size(), 3u);
  // Only the declaration and one more piece commit; the leader is deposed.
  sm.apply(ds[0].command);
  sm.apply(ds[1].command);
  size_t left = sm.shards_of(WorkerId("w1")).size();
  ASSERT_GT(left, 0u);
  ASSERT_LT(left, held);
  FleetPolicy new_leader(options());
  new_leader.start_leading(sm, 50000);
  heartbeats(new_leader, 50010);
  auto more = new_leader.tick(sm, 50010, 50010);
  size_t pieces = 0, placed = 0;
  for (auto& d : more) {
    if (d.kind != Decision::Kind::kFailover) continue;
    ++pieces;
    EXPECT_EQ(d.worker, WorkerId("w1"));
    EXPECT_LE(encode_command(d.command).size(), kMaxCommandBytes);
    placed += std::get<FailoverShards>(d.command.body).placements.size();
  }
  EXPECT_GT(pieces, 0u);
  EXPECT_EQ(placed, left);
  // While those are in flight, the leader does not plan them twice.
  heartbeats(new_leader, 50020);
  for (const auto& d : new_leader.tick(sm, 50020, 50020)) EXPECT_NE(d.kind, Decision::Kind::kFailover);
  // The old leader's remaining pieces may still commit first: they move nothing twice.
  for (size_t k = 2; k < ds.size(); ++k) sm.apply(ds[k].command);
  for (auto& d : more) {
    sm.apply(d.command);
    new_leader.finished(d);
  }
  expect_moved_once();
}

// A piece that fails is planned again though the state did not change:
// the continuation's walk is skipped only while nothing changed and no
// decision ended (its result would be the same), and a failed piece ends.
TEST_F(LargeFailoverTest, AFailedPieceIsPlannedAgainWithoutAStateChange) {
  FleetPolicy p(options());
  auto ds = w1_expires(p);
  ASSERT_GE(ds.size(), 2u);
  ASSERT_EQ(ds[0].kind, Decision::Kind::kDeclareDead);
  sm.apply(ds[0].command);
  for (auto& d : ds) p.finished(d);  // the declaration applied, every other piece failed
  auto pieces_of = [](const std::vector<Decision>& v) {
    size_t n = 0;
    for (const auto& d : v) n += d.kind == Decision::Kind::kFailover ? 1 : 0;
    return n;
  };
  uint64_t now = 3001;
  std::vector<Decision> again;
  for (int k = 0; k < 2; ++k) {  // twice: the second time, the state is as the walk before saw it
    now += options().placement_min_interval_ms + 10;
    heartbeats(p, now);
    again = p.tick(sm, now, now);
    ASSERT_GT(pieces_of(again), 0u) << "attempt " << k;
    for (auto& d : again) p.finished(d);  // failed again: nothing applied
  }
  for (auto& d : again) sm.apply(d.command);
  expect_moved_once();
}

// Half the fleet gone at once, more shards than one pass plans: every
// expired worker is declared dead in the first pass (none keeps a lease),
// each pass places at most max_failovers_per_pass, and the continuation
// passes move the rest, each shard once.
TEST_F(LargeFailoverTest, AFailoverLargerThanAPassGoesInSlices) {
  FleetPolicyOptions o = options();
  o.max_failovers_per_pass = 2500;
  o.placement_min_interval_ms = 200;
  FleetPolicy p(o);
  p.start_leading(sm, 0);
  const size_t dying = sm.shards_of(WorkerId("w1")).size() + sm.shards_of(WorkerId("w2")).size();
  ASSERT_GT(dying, 4 * o.max_failovers_per_pass);
  auto alive = [&](uint64_t now) {
    for (auto w : {"w3", "w4"}) p.heartbeat(sm, WorkerId(w), now);
  };
  alive(3001);
  auto ds = p.tick(sm, 3001, 3001);
  size_t declared = 0, placed = 0;
  for (auto& d : ds) {
    if (d.kind == Decision::Kind::kDeclareDead) {
      ++declared;
      placed += std::get<DeclareDead>(d.command.body).placements.size();
    } else if (d.kind == Decision::Kind::kFailover) {
      placed += std::get<FailoverShards>(d.command.body).placements.size();
    }
  }
  EXPECT_EQ(declared, 2u);
  EXPECT_EQ(placed, o.max_failovers_per_pass);
  // One slice at a time: nothing more while this one is in flight.
  uint64_t now = 3001 + 2 * o.placement_min_interval_ms;
  alive(now);
  EXPECT_TRUE(p.tick(sm, now, now).empty());
  size_t passes = 1;
  while (!ds.empty()) {
    for (auto& d : ds) {
      EXPECT_EQ(sm.apply(d.command).code, ApplyCode::kOk);
      p.finished(d);
    }
    now += o.placement_min_interval_ms;
    alive(now);
    ds = p.tick(sm, now, now);
    size_t this_pass = 0;
    for (auto& d : ds) {
      ASSERT_EQ(d.kind, Decision::Kind::kFailover);
      this_pass += std::get<FailoverShards>(d.command.body).placements.size();
    }
    EXPECT_LE(this_pass, o.max_failovers_per_pass);
    if (!ds.empty()) ++passes;
    ASSERT_LT(passes, 100u);
  }
  EXPECT_EQ(passes, (dying + o.max_failovers_per_pass - 1) / o.max_failovers_per_pass);
  EXPECT_TRUE(sm.shards_of(WorkerId("w1")).empty());
  EXPECT_TRUE(sm.shards_of(WorkerId("w2")).empty());
  EXPECT_EQ(sm.count(ShardState::kActive), kShards);
  for (const auto& [id, s] : sm.shards()) ASSERT_EQ(s.epoch.value(), history.of(id).size()) << id.str();
}

TEST_F(LargeFailoverTest, ExpiredHandoffsAreCompletedInBoundedPieces) {
  // Drain w1 with no limit on moves in flight: thousands of handoffs at once.
  FleetPolicyOptions o = options();
  o.max_concurrent_moves = 100000;
  FleetPolicy p(o);
  sm.apply(cmd(SetDraining{WorkerId("w1"), true}));
  p.start_leading(sm, 0);
  auto plan = p.plan(sm, 0);
  ASSERT_EQ(plan.moves.size(), held);
  auto begins = p.plan_commands(plan);
  ASSERT_GE(begins.size(), 3u);
  for (auto& c : begins) {
    EXPECT_LE(encode_command(c).size(), kMaxCommandBytes);
    sm.apply(c);
  }
  p.on_applied(sm, 10);
  ASSERT_EQ(sm.handoffs().size(), held);
  // w1 never releases: after its lease the handoffs complete by expiry.
  for (auto w : {"w1", "w2", "w3", "w4"}) p.heartbeat(sm, WorkerId(w), 3005);
  auto ds = p.tick(sm, 3020, 3020);
  size_t pieces = 0;
  for (auto& d : ds) {
    if (d.kind != Decision::Kind::kExpireHandoffs) continue;
    ++pieces;
    EXPECT_LE(encode_command(d.command).size(), kMaxCommandBytes);
    sm.apply(d.command);
  }
  EXPECT_GE(pieces, 3u);
  EXPECT_TRUE(sm.handoffs().empty());
  expect_moved_once();
}

}  // namespace
}  // namespace tenure::controlplane
