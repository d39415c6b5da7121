#include "controlplane/state_machine.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "common/codec.h"

namespace tenure::controlplane {
namespace {

std::set<ShardId> ids(const ShardIdSet& s) { return {s.begin(), s.end()}; }

Command cmd(CommandBody body, std::string request_id = "", uint64_t at_ms = 1000) {
  return Command{std::move(request_id), at_ms, std::move(body)};
}

class StateMachineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    sm.set_history(&history);
    sm.apply(cmd(RegisterWorker{WorkerId("w1"), "127.0.0.1:1", "z1", 1}));
    sm.apply(cmd(RegisterWorker{WorkerId("w2"), "127.0.0.1:2", "z2", 1}));
    sm.apply(cmd(CreateShards{{ShardId("s1"), ShardId("s2")}}));
  }
  void assign(const std::string& shard, const std::string& worker) {
    Epoch e = sm.shard(ShardId(shard))->epoch;
    sm.apply(cmd(AssignShards{{Placement{ShardId(shard), WorkerId(worker), e}}, ChangeReason::kCreated}));
  }
  MemoryHistory history;
  StateMachine sm;
};

TEST_F(StateMachineTest, FirstOwnerGetsEpochOne) {
  assign("s1", "w1");
  const Shard* s = sm.shard(ShardId("s1"));
  EXPECT_EQ(s->epoch, Epoch(1));
  EXPECT_EQ(s->worker, WorkerId("w1"));
  EXPECT_EQ(s->state, ShardState::kActive);
  auto records = history.of(ShardId("s1"));
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].reason, ChangeReason::kCreated);
  EXPECT_EQ(records[0].revision, sm.revision());
  EXPECT_EQ(records[0].to, WorkerId("w1"));
  EXPECT_EQ(sm.shards_of(WorkerId("w1")).size(), 1u);
}

TEST_F(StateMachineTest, StaleAssignmentIsSkipped) {
  assign("s1", "w1");
  Revision before = sm.revision();
  auto r = sm.apply(cmd(AssignShards{{Placement{ShardId("s1"), WorkerId("w2"), Epoch(0)}}, ChangeReason::kCreated}));
  EXPECT_EQ(r.changed, 0u);
  EXPECT_EQ(sm.revision(), before);
  EXPECT_EQ(sm.shard(ShardId("s1"))->worker, WorkerId("w1"));
}

TEST_F(StateMachineTest, CreateReportsExistingAndRejectsBadIdsWhole) {
  auto r = sm.apply(cmd(CreateShards{{ShardId("s1"), ShardId("s3")}}));
  EXPECT_EQ(r.created, std::vector<ShardId>{ShardId("s3")});
  EXPECT_EQ(r.existing, std::vector<ShardId>{ShardId("s1")});
  Revision before = sm.revision();
  auto bad = sm.apply(cmd(CreateShards{{ShardId("ok"), ShardId("bad id")}}));
  EXPECT_EQ(bad.code, ApplyCode::kInvalid);
  EXPECT_EQ(sm.shard(ShardId("ok")), nullptr);
  EXPECT_EQ(sm.revision(), before);
}

TEST_F(StateMachineTest, HandoffRevokesThenGrantsWithOneEpochStep) {
  assign("s1", "w1");
  auto r = sm.apply(cmd(BeginMoves{{Placement{ShardId("s1"), WorkerId("w2"), Epoch(1)}}, ChangeReason::kManual}));
  EXPECT_EQ(r.changed, 1u);
  const Shard* s = sm.shard(ShardId("s1"));
  EXPECT_EQ(s->state, ShardState::kHandoff);
  EXPECT_EQ(s->worker, WorkerId("w1"));
  EXPECT_EQ(s->epoch, Epoch(1));
  auto ev = sm.events_after(Revision(0), WorkerId("w1"), 100);
  ASSERT_FALSE(ev.empty());
  EXPECT_EQ(ev.back().type, EventType::kRevoke);
  // A release for a different epoch is ignored.
  sm.apply(cmd(CompleteMoves{WorkerId("w1"), {ShardId("s1")}, {Epoch(0)}, false}));
  EXPECT_EQ(sm.shard(ShardId("s1"))->state, ShardState::kHandoff);
  sm.apply(cmd(CompleteMoves{WorkerId("w1"), {ShardId("s1")}, {Epoch(1)}, false}));
  s = sm.shard(ShardId("s1"));
  EXPECT_EQ(s->state, ShardState::kActive);
  EXPECT_EQ(s->worker, WorkerId("w2"));
  EXPECT_EQ(s->epoch, Epoch(2));
  EXPECT_EQ(history.of(ShardId("s1")).back().reason, ChangeReason::kManual);
  EXPECT_EQ(history.of(ShardId("s1")).back().from, WorkerId("w1"));
  EXPECT_EQ(s->last.reason, ChangeReason::kManual);
  EXPECT_TRUE(sm.shards_of(WorkerId("w1")).empty());
}

// count(WorkerState) is kept as workers change, not counted: it must
// agree with a count over workers() after every kind of change, refused
// ones included, and after a snapshot's restore.
TEST_F(StateMachineTest, WorkerCountsFollowEveryWayAWorkerChanges) {
  auto recount = [](const StateMachine& m, WorkerState st) {
    size_t n = 0;
    for (const auto& [id, w] : m.workers()) n += w.state == st ? 1 : 0;
    return n;
  };
  auto expect_counts = [&](const StateMachine& m, int step) {
    for (auto st : {WorkerState::kAlive, WorkerState::kDraining, WorkerState::kDead}) {
      ASSERT_EQ(m.count(st), recount(m, st)) << "step " << step << " state " << to_string(st);
    }
  };
  std::mt19937 rng(7);
  for (int step = 0; step < 2000; ++step) {
    WorkerId w("w" + std::to_string(rng() % 6));
    switch (rng() % 5) {
      case 0: sm.apply(cmd(RegisterWorker{w, "127.0.0.1:9", "z" + std::to_string(rng() % 2), 1})); break;
      case 1: sm.apply(cmd(SetDraining{w, rng() % 2 == 0})); break;
      case 2: sm.apply(cmd(DeclareDead{w, {}, ChangeReason::kDeadWorker})); break;
      case 3: sm.apply(cmd(RemoveWorker{w})); break;
      case 4: {
        StateMachine copy;
        ASSERT_TRUE(copy.restore(sm.snapshot()));
        expect_counts(copy, step);
        break;
      }
    }
    expect_counts(sm, step);
  }
  EXPECT_GT(sm.count(WorkerState::kAlive) + sm.count(WorkerState::kDraining) + sm.count(WorkerState::kDead), 0u);
}

// The index of unassigned shards (what placement hands out, without a pass
// over every shard) follows creation, grants, failover to nobody, deletion
// and restore.
TEST_F(StateMachineTest, UnassignedIndexFollowsEveryWayAShardLosesOrGainsAnOwner) {
  using Ids = std::set<ShardId>;
  EXPECT_EQ(ids(sm.unassigned()), (Ids{ShardId("s1"), ShardId("s2")}));
  sm.apply(cmd(CreateShards{{ShardId("s3"), ShardId("s1")}}));  // s1 exists: not indexed twice
  EXPECT_EQ(ids(sm.unassigned()), (Ids{ShardId("s1"), ShardId("s2"), ShardId("s3")}));
  assign("s1", "w1");
  assign("s2", "w1");
  EXPECT_EQ(ids(sm.unassigned()), (Ids{ShardId("s3")}));
  sm.apply(cmd(DeleteShard{ShardId("s3")}));
  EXPECT_TRUE(sm.unassigned().empty());
  // w1 dies and nobody can take s1: it becomes unassigned; s2 goes to w2.
  sm.apply(cmd(DeclareDead{WorkerId("w1"),
                           {Placement{ShardId("s1"), WorkerId(), Epoch(1)}, Placement{ShardId("s2"), WorkerId("w2"), Epoch(1)}},
                           ChangeReason::kDeadWorker}));
  EXPECT_EQ(ids(sm.unassigned()), (Ids{ShardId("s1")}));
  EXPECT_EQ(sm.count(ShardState::kUnassigned), 1u);
  StateMachine copy;
  ASSERT_TRUE(copy.restore(sm.snapshot()));
  EXPECT_EQ(ids(copy.unassigned()), (Ids{ShardId("s1")}));
}

// The per-owner index of handoffs (what each heartbeat is answered with)
// follows every way a handoff begins and ends, and is rebuilt on restore.
TEST_F(StateMachineTest, HandoffsFromFollowTheOwnerThroughReleaseDeathDeleteAndRestore) {
  sm.apply(cmd(CreateShards{{ShardId("s3"), ShardId("s4")}}));
  for (const char* id : {"s1", "s2", "s3", "s4"}) assign(id, "w1");
  sm.apply(cmd(BeginMoves{{Placement{ShardId("s1"), WorkerId("w2"), Epoch(1)},
                           Placement{ShardId("s2"), WorkerId("w2"), Epoch(1)},
                           Placement{ShardId("s3"), WorkerId("w2"), Epoch(1)}},
                          ChangeReason::kDrain}));
  using Ids = std::set<ShardId>;
  EXPECT_EQ(ids(sm.handoffs_from(WorkerId("w1"))), (Ids{ShardId("s1"), ShardId("s2"), ShardId("s3")}));
  EXPECT_TRUE(sm.handoffs_from(WorkerId("w2")).empty());
  sm.apply(cmd(CompleteMoves{WorkerId("w1"), {ShardId("s1")}, {Epoch(1)}, false}));  // released
  sm.apply(cmd(DeleteShard{ShardId("s2")}));                                         // deleted mid-handoff
  EXPECT_EQ(ids(sm.handoffs_from(WorkerId("w1"))), (Ids{ShardId("s3")}));
  StateMachine copy;
  ASSERT_TRUE(copy.restore(sm.snapshot()));
  EXPECT_EQ(ids(copy.handoffs_from(WorkerId("w1"))), (Ids{ShardId("s3")}));
  // The source dies mid-handoff: its failover ends the handoff.
  sm.apply(cmd(DeclareDead{WorkerId("w1"), {Placement{ShardId("s3"), WorkerId("w2"), Epoch(1)}},
                           ChangeReason::kDeadWorker}));
  EXPECT_TRUE(sm.handoffs_from(WorkerId("w1")).empty());
  EXPECT_TRUE(sm.handoffs().empty());
  EXPECT_EQ(sm.shard(ShardId("s3"))->worker, WorkerId("w2"));
}

TEST_F(StateMachineTest, DeadWorkerShardsMoveWithEpochPlusOne) {
  assign("s1", "w1");
  assign("s2", "w1");
  sm.apply(cmd(DeclareDead{WorkerId("w1"), {Placement{ShardId("s1"), WorkerId("w2"), Epoch(1)}}, ChangeReason::kDeadWorker}));
  EXPECT_EQ(sm.worker(WorkerId("w1"))->state, WorkerState::kDead);
  EXPECT_EQ(sm.shard(ShardId("s1"))->worker, WorkerId("w2"));
  EXPECT_EQ(sm.shard(ShardId("s1"))->epoch, Epoch(2));
  // No placement given for s2: it stays with the dead worker (serving nobody)
  // until a FailoverShards moves it, once.
  EXPECT_EQ(sm.shard(ShardId("s2"))->worker, WorkerId("w1"));
  EXPECT_EQ(sm.shard(ShardId("s2"))->epoch, Epoch(1));
  // An empty worker: nobody can take it, it becomes unassigned (a change of owner).
  sm.apply(cmd(FailoverShards{WorkerId("w1"), {Placement{ShardId("s2"), WorkerId(), Epoch(1)}}, ChangeReason::kDeadWorker}));
  EXPECT_EQ(sm.shard(ShardId("s2"))->state, ShardState::kUnassigned);
  EXPECT_EQ(sm.shard(ShardId("s2"))->epoch, Epoch(2));
  EXPECT_EQ(sm.count(ShardState::kUnassigned), 1u);
  EXPECT_EQ(sm.count(ShardState::kActive), 1u);
}

TEST_F(StateMachineTest, EpochsSurviveDeleteAndRecreate) {
  assign("s1", "w1");
  sm.apply(cmd(DeleteShard{ShardId("s1")}));
  EXPECT_EQ(sm.shard(ShardId("s1")), nullptr);
  sm.apply(cmd(CreateShards{{ShardId("s1")}}));
  assign("s1", "w2");
  EXPECT_EQ(sm.shard(ShardId("s1"))->epoch, Epoch(3));
}

TEST_F(StateMachineTest, RetriedRequestAppliesOnce) {
  CreateShards create{{ShardId("x"), ShardId("s1"), ShardId("y.z-9"), ShardId("s2")}};
  auto first = sm.apply(cmd(create, "req-1"));
  ASSERT_EQ(first.created, (std::vector<ShardId>{ShardId("x"), ShardId("y.z-9")}));
  ASSERT_EQ(first.existing, (std::vector<ShardId>{ShardId("s1"), ShardId("s2")}));
  Revision after = sm.revision();
  sm.apply(cmd(DeleteShard{ShardId("x")}));
  // The first answer, ids and all (kept packed), also after a snapshot.
  auto again = sm.apply(cmd(create, "req-1"));
  EXPECT_EQ(again.created, first.created);
  EXPECT_EQ(again.existing, first.existing);
  EXPECT_EQ(again.revision, after);
  EXPECT_EQ(sm.shard(ShardId("x")), nullptr);
  StateMachine restored;
  ASSERT_TRUE(restored.restore(sm.snapshot()));
  auto restored_again = restored.apply(cmd(create, "req-1"));
  EXPECT_EQ(restored_again.created, first.created);
  EXPECT_EQ(restored_again.existing, first.existing);
  EXPECT_EQ(restored.snapshot(), sm.snapshot());
  auto none = sm.apply(cmd(CreateShards{{}}, "req-2"));
  EXPECT_TRUE(sm.apply(cmd(CreateShards{{}}, "req-2")).created.empty());
  EXPECT_TRUE(none.existing.empty());
}

// An idempotency key names one request: reusing it for another (here a
// DELETE after a create) is refused and changes nothing, also after a
// snapshot; the first request's retry still gets its first answer.
TEST_F(StateMachineTest, ReusedKeyForAnotherRequestIsRefused) {
  auto first = sm.apply(cmd(CreateShards{{ShardId("x")}}, "k:key1#create-x"));
  ASSERT_EQ(first.code, ApplyCode::kOk);
  Revision after = sm.revision();
  auto other = sm.apply(cmd(DeleteShard{ShardId("x")}, "k:key1#delete-x"));
  EXPECT_EQ(other.code, ApplyCode::kIdempotencyMismatch);
  EXPECT_EQ(other.revision, after);
  EXPECT_NE(sm.shard(ShardId("x")), nullptr);
  EXPECT_EQ(sm.apply(cmd(CreateShards{{ShardId("x")}}, "k:key1#create-x")).created, first.created);
  StateMachine restored;
  ASSERT_TRUE(restored.restore(sm.snapshot()));
  EXPECT_EQ(restored.apply(cmd(DeleteShard{ShardId("x")}, "k:key1#delete-x")).code, ApplyCode::kIdempotencyMismatch);
  EXPECT_EQ(restored.apply(cmd(DeleteShard{ShardId("x")}, "k:key2#delete-x")).code, ApplyCode::kOk);
}

TEST_F(StateMachineTest, ForgottenKeysFreeTheirScope) {
  StateMachine small(Limits{32, 1000, 2});
  small.apply(cmd(CreateShards{{ShardId("a")}}, "k:1#a"));
  small.apply(cmd(CreateShards{{ShardId("b")}}, "k:2#b"));
  small.apply(cmd(CreateShards{{ShardId("c")}}, "k:3#c"));  // k:1 is forgotten
  EXPECT_EQ(small.apply(cmd(CreateShards{{ShardId("d")}}, "k:1#d")).code, ApplyCode::kOk);
  EXPECT_EQ(small.apply(cmd(CreateShards{{ShardId("e")}}, "k:3#e")).code, ApplyCode::kIdempotencyMismatch);
}

TEST_F(StateMachineTest, DrainedWorkerCannotTakeShardsAndRemovalRules) {
  sm.apply(cmd(SetDraining{WorkerId("w2"), true}));
  assign("s1", "w2");
  EXPECT_EQ(sm.shard(ShardId("s1"))->state, ShardState::kUnassigned);
  EXPECT_EQ(sm.apply(cmd(RemoveWorker{WorkerId("w1")})).code, ApplyCode::kConflict);
  EXPECT_EQ(sm.apply(cmd(RemoveWorker{WorkerId("w2")})).code, ApplyCode::kOk);
  EXPECT_EQ(sm.worker(WorkerId("w2")), nullptr);
}

TEST_F(StateMachineTest, DrainSurvivesDeathAndReturn) {
  sm.apply(cmd(SetDraining{WorkerId("w2"), true}));
  sm.apply(cmd(DeclareDead{WorkerId("w2"), {}, ChangeReason::kReleased}));
  sm.apply(cmd(RegisterWorker{WorkerId("w2"), "127.0.0.1:2", "z2", 1}));
  EXPECT_EQ(sm.worker(WorkerId("w2"))->state, WorkerState::kDraining);
  sm.apply(cmd(SetDraining{WorkerId("w2"), false}));
  sm.apply(cmd(DeclareDead{WorkerId("w2"), {}, ChangeReason::kDeadWorker}));
  sm.apply(cmd(RegisterWorker{WorkerId("w2"), "127.0.0.1:2", "z2", 1}));
  EXPECT_EQ(sm.worker(WorkerId("w2"))->state, WorkerState::kAlive);
}

TEST_F(StateMachineTest, SnapshotRoundTripIsExact) {
  assign("s1", "w1");
  sm.apply(cmd(BeginMoves{{Placement{ShardId("s1"), WorkerId("w2"), Epoch(1)}}, ChangeReason::kDrain}, "r9"));
  std::string snap = sm.snapshot();
  StateMachine copy;
  ASSERT_TRUE(copy.restore(snap));
  EXPECT_EQ(copy.snapshot(), snap);
  EXPECT_EQ(copy.revision(), sm.revision());
  ASSERT_NE(copy.handoff(ShardId("s1")), nullptr);
  EXPECT_EQ(copy.handoff(ShardId("s1"))->target, WorkerId("w2"));
  EXPECT_EQ(copy.handoff(ShardId("s1"))->reason, ChangeReason::kDrain);
  EXPECT_EQ(copy.shards_of(WorkerId("w1")).size(), 1u);
  EXPECT_EQ(copy.count(ShardState::kHandoff), 1u);
  EXPECT_FALSE(copy.restore(snap.substr(0, snap.size() / 2)));
  EXPECT_EQ(copy.snapshot(), snap);
}

TEST_F(StateMachineTest, EventLogIsBoundedAndReportsCompaction) {
  StateMachine small(Limits{4, 3, 10});
  small.apply(cmd(RegisterWorker{WorkerId("w"), "a", "", 1}));
  small.apply(cmd(CreateShards{{ShardId("a"), ShardId("b"), ShardId("c")}}));
  for (const char* id : {"a", "b", "c"}) {
    small.apply(cmd(AssignShards{{Placement{ShardId(id), WorkerId("w"), Epoch(0)}}, ChangeReason::kCreated}));
  }
  EXPECT_GT(small.compacted_revision(), Revision(0));
  auto ev = small.events_after(small.compacted_revision(), WorkerId(), 100);
  EXPECT_EQ(ev.size(), 3u);
  EXPECT_EQ(ev.back().revision, small.revision());
}

TEST_F(StateMachineTest, WorkerEventsRevisionFollowsItsEventsAndSurvivesRestore) {
  Revision registered = sm.worker_events_revision(WorkerId("w1"));
  EXPECT_GT(registered, Revision(0));
  assign("s1", "w1");
  Revision granted = sm.revision();
  EXPECT_EQ(sm.worker_events_revision(WorkerId("w1")), granted);
  // Others' changes do not move it.
  assign("s2", "w2");
  EXPECT_EQ(sm.worker_events_revision(WorkerId("w1")), granted);
  EXPECT_EQ(sm.worker_events_revision(WorkerId("w2")), sm.revision());
  // A handoff's revoke does; its completion by expiry sends w1 nothing, and
  // the revoke stays the last thing w1 must have seen.
  sm.apply(cmd(BeginMoves{{Placement{ShardId("s1"), WorkerId("w2"), Epoch(1)}}, ChangeReason::kManual}));
  Revision revoked = sm.revision();
  EXPECT_EQ(sm.worker_events_revision(WorkerId("w1")), revoked);
  sm.apply(cmd(CompleteMoves{WorkerId("w1"), {ShardId("s1")}, {Epoch(1)}, true}));
  EXPECT_EQ(sm.worker_events_revision(WorkerId("w1")), revoked);
  EXPECT_EQ(sm.worker_events_revision(WorkerId("w2")), sm.revision());
  // A deletion revokes from the owner.
  sm.apply(cmd(DeleteShard{ShardId("s2")}));
  EXPECT_GT(sm.worker_events_revision(WorkerId("w2")), revoked);
  StateMachine copy;
  ASSERT_TRUE(copy.restore(sm.snapshot()));
  EXPECT_EQ(copy.worker_events_revision(WorkerId("w1")), revoked);
  EXPECT_EQ(copy.worker_events_revision(WorkerId("w2")), sm.worker_events_revision(WorkerId("w2")));
}

TEST_F(StateMachineTest, WorkerEventsRevisionFallsBackToTheCompactedRevision) {
  // Events of a worker no longer kept: the answer must not be earlier than
  // its last event, so it is the compacted revision (later, never earlier).
  StateMachine small(Limits{4, 2, 10});
  small.apply(cmd(RegisterWorker{WorkerId("w"), "a", "", 1}));
  small.apply(cmd(RegisterWorker{WorkerId("v"), "b", "", 1}));
  small.apply(cmd(CreateShards{{ShardId("a"), ShardId("b"), ShardId("c")}}));
  small.apply(cmd(AssignShards{{Placement{ShardId("a"), WorkerId("w"), Epoch(0)}}, ChangeReason::kCreated}));
  Revision last_of_w = small.revision();
  for (const char* id : {"b", "c"}) {
    small.apply(cmd(AssignShards{{Placement{ShardId(id), WorkerId("v"), Epoch(0)}}, ChangeReason::kCreated}));
  }
  EXPECT_EQ(small.worker_events_revision(WorkerId("w")), last_of_w);
  StateMachine copy(Limits{4, 2, 10});
  ASSERT_TRUE(copy.restore(small.snapshot()));
  EXPECT_GE(copy.compacted_revision(), last_of_w);
  EXPECT_EQ(copy.worker_events_revision(WorkerId("w")), copy.compacted_revision());
}

TEST(CommandCodec, RoundTripAndGarbage) {
  Command c{"id-1", 42, BeginMoves{{Placement{ShardId("s"), WorkerId("w"), Epoch(7)}}, ChangeReason::kDrain}};
  auto d = decode_command(encode_command(c));
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->request_id, "id-1");
  EXPECT_EQ(d->at_ms, 42u);
  auto& b = std::get<BeginMoves>(d->body);
  EXPECT_EQ(b.placements[0].expected_epoch, Epoch(7));
  EXPECT_EQ(b.reason, ChangeReason::kDrain);
  EXPECT_FALSE(decode_command("").has_value());
  EXPECT_FALSE(decode_command(encode_command(c) + "x").has_value());
  std::string wrong = encode_command(c);
  wrong[0] = 9;
  EXPECT_FALSE(decode_command(wrong).has_value());
}

// Snapshot format 2 carried each shard's history; a member upgraded in
// place restores it once and must keep those records: they go to the sink,
// the shard keeps its last change, and the next snapshot is format 3.
TEST(StateMachineSnapshot, AVersion2SnapshotHandsItsHistoryToTheSink) {
  Writer w;
  w.u8(2);
  w.varint(9);  // revision
  w.varint(1);  // shards
  w.str("s1");
  w.str("w2");
  w.varint(2);  // epoch
  w.u8(static_cast<uint8_t>(ShardState::kActive));
  w.str("");    // target
  w.varint(0);  // handoff_since_ms
  w.u8(static_cast<uint8_t>(ChangeReason::kRebalance));
  w.u8(0);      // phase
  w.varint(0);  // drain_since_ms
  w.u8(0);      // flags
  w.varint(2);  // history
  auto put = [&](uint64_t rev, uint64_t epoch, const char* from, const char* to, ChangeReason reason, uint64_t drain_ms,
                 uint8_t flags) {
    w.varint(rev);
    w.varint(epoch);
    w.str(from);
    w.str(to);
    w.u8(static_cast<uint8_t>(reason));
    w.varint(100 + rev);  // at_ms
    w.varint(5);          // prepare_ms
    w.varint(drain_ms);
    w.u8(flags);
  };
  put(3, 1, "", "w1", ChangeReason::kCreated, 0, 0);
  put(9, 2, "w1", "w2", ChangeReason::kRebalance, 40, 2 | 4);
  w.varint(0);  // deleted epochs
  w.varint(0);  // workers
  w.varint(0);  // events compacted
  w.varint(0);  // events
  w.varint(0);  // request ids
  w.varint(0);  // started members
  std::string v2 = w.take();

  MemoryHistory history;
  StateMachine sm;
  sm.set_history(&history);
  ASSERT_TRUE(sm.restore(v2));
  auto records = history.of(ShardId("s1"));
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].to, WorkerId("w1"));
  EXPECT_EQ(records[1].revision, Revision(9));
  EXPECT_EQ(records[1].from, WorkerId("w1"));
  EXPECT_EQ(records[1].drain_ms, 40u);
  EXPECT_TRUE(records[1].drain_timed_out);
  EXPECT_TRUE(records[1].prepared);
  const Shard* s = sm.shard(ShardId("s1"));
  EXPECT_EQ(s->last.reason, ChangeReason::kRebalance);
  EXPECT_EQ(s->last.drain_ms, 40u);
  EXPECT_EQ(static_cast<uint8_t>(sm.snapshot()[0]), 3);
  // A format 3 snapshot carries no records: restoring it gives the sink nothing.
  MemoryHistory again;
  StateMachine copy;
  copy.set_history(&again);
  ASSERT_TRUE(copy.restore(sm.snapshot()));
  EXPECT_EQ(again.shards(), 0u);
  EXPECT_EQ(copy.snapshot(), sm.snapshot());
  // A malformed version 2 history (a reason out of range) is refused whole.
  std::string bad = v2;
  bad[bad.size() - 6 - 4 - 1] = 99;  // the last record's reason: 6 empty lists and 4 one-byte fields after it
  StateMachine untouched;
  untouched.set_history(&again);
  EXPECT_FALSE(untouched.restore(bad));
  EXPECT_EQ(again.shards(), 0u);
}

// A request's result keeps its ids packed with '\n' between them; a
// snapshot whose results name anything but shard ids would not come back
// the same (found by fuzz.snapshot: an empty id), so it is refused.
TEST(StateMachineSnapshot, AResultNamingSomethingButShardIdsIsRefused) {
  auto snapshot_with_created = [](const std::string& created) {
    Writer w;
    w.u8(3);
    w.varint(0);  // revision
    w.varint(0);  // shards
    w.varint(0);  // deleted epochs
    w.varint(0);  // workers
    w.varint(0);  // events compacted
    w.varint(0);  // events
    w.varint(1);  // request ids
    w.str("req-1");
    w.u8(0);      // code
    w.str("");    // message
    w.varint(0);  // revision
    w.varint(1);  // created
    w.str(created);
    w.varint(0);  // existing
    w.varint(0);  // changed
    w.varint(0);  // started members
    return w.take();
  };
  StateMachine sm;
  std::string good = snapshot_with_created("s-1");
  ASSERT_TRUE(sm.restore(good));
  EXPECT_EQ(sm.snapshot(), good);
  for (const std::string bad : {"", "a\nb", "s 1"}) {
    StateMachine other;
    EXPECT_FALSE(other.restore(snapshot_with_created(bad))) << bad;
  }
}

}  // namespace
}  // namespace tenure::controlplane

namespace tenure::controlplane {
namespace {

// The driver snapshots by bytes only past twice the state's size, which it
// reads from this estimate: it must follow creates, deletes and restores,
// and stay near the real size for short and ~100-character ids.
TEST(StateMachineSize, TheSnapshotEstimateFollowsTheStateAndItsIds) {
  for (size_t id_len : {8u, 100u}) {
    StateMachine sm;
    sm.apply(Command{"", 1000, RegisterWorker{WorkerId("w1"), "127.0.0.1:1", "z1", 1}});
    std::vector<ShardId> ids;
    for (int i = 0; i < 20000; ++i) {
      std::string id = "s" + std::to_string(i);
      ids.emplace_back(id + std::string(id_len - std::min(id_len - 1, id.size()), 'x'));
    }
    sm.apply(Command{"", 1000, CreateShards{ids}});
    std::vector<Placement> grants;
    for (const auto& id : ids) grants.push_back(Placement{id, WorkerId("w1"), Epoch(0)});
    sm.apply(Command{"", 1000, AssignShards{grants, ChangeReason::kCreated}});
    double real = static_cast<double>(sm.snapshot().size());
    double estimate = static_cast<double>(sm.approximate_snapshot_bytes());
    EXPECT_GT(estimate, 0.5 * real) << "ids of " << id_len;
    EXPECT_LT(estimate, 2.0 * real) << "ids of " << id_len;
    uint64_t before = sm.approximate_snapshot_bytes();
    sm.apply(Command{"", 1000, DeleteShard{ids[0]}});
    EXPECT_EQ(sm.approximate_snapshot_bytes(), before - ids[0].str().size() - 16);
    StateMachine restored;
    ASSERT_TRUE(restored.restore(sm.snapshot()));
    EXPECT_EQ(restored.approximate_snapshot_bytes(), sm.approximate_snapshot_bytes());
  }
}

}  // namespace
}  // namespace tenure::controlplane
