// The session core's order rules, with every piece of I/O in the test's
// hands (FakeIo): calls are answered, durable writes completed and timers
// fired only when a test says so, on a ManualClock. Each test breaks if
// the order it names breaks: a revoke dropped durably before the lease is
// extended, the lease waiting for the worker revision, nothing served
// before register and re-list, a grant durable before it is served, a
// lost watch re-listing, a pause stopping the lease, leave.
#include <gtest/gtest.h>

#include <deque>
#include <map>

#include "dataplane_agent/session_core.h"

namespace tenure::agent {
namespace {

using namespace std::chrono_literals;
using std::chrono::milliseconds;

/// The world as the core sees it, driven step by step by the test.
class FakeIo final : public SessionIo {
 public:
  struct PendingCall {
    Call call;
    std::function<void(Reply)> done;
  };
  struct PendingPersist {
    std::shared_ptr<const GrantChanges> changes;
    std::function<void(std::string)> done;
  };
  struct Timer {
    SteadyTime due;
    std::function<void()> fn;
  };

  explicit FakeIo(const ManualClock& clock) : clock_(clock) {}

  void call(Call c, std::function<void(Reply)> done) override {
    log_.push_back(std::string("call:") + to_string(c.kind));
    calls.push_back({std::move(c), std::move(done)});
  }
  void open_watch(uint64_t gen, Revision from) override {
    log_.push_back("watch:" + std::to_string(from.value()));
    watch_gen = gen;
    watch_from = from;
  }
  void close_watch() override { watch_gen = 0; }
  void rotate() override { ++rotations; }
  std::string endpoint() const override { return "c1"; }
  void persist(std::shared_ptr<const GrantChanges> c, std::function<void(std::string)> done) override {
    log_.push_back("persist");
    persists.push_back({std::move(c), std::move(done)});
  }
  void after(std::chrono::nanoseconds d, std::function<void()> fn) override {
    timers.push_back({clock_.now() + d, std::move(fn)});
  }
  void cancel_timers() override { timers.clear(); }
  int64_t uniform(int64_t lo, int64_t hi) override { return (lo + hi) / 2; }
  bool logging(LogLevel) const override { return true; }
  void log(LogLevel, const std::string&) override {}
  void fatal(const std::string& message) override { fatal_message = message; }
  bool program_drains() const override { return drains; }
  void program_drain(const ShardEpoch& s, std::chrono::nanoseconds budget, std::function<void()> done) override {
    log_.push_back("drain:" + s.shard.str());
    drain_calls.push_back({s, budget, std::move(done)});
  }
  void program_prepare(const ShardEpoch& s, std::function<void()> done) override {
    log_.push_back("prepare:" + s.shard.str() + "@" + std::to_string(s.epoch.value()));
    prepare_calls.push_back({s, std::chrono::nanoseconds(0), std::move(done)});
  }
  void program_abandon(const ShardEpoch& s) override {
    log_.push_back("abandon:" + s.shard.str() + "@" + std::to_string(s.epoch.value()));
  }
  void program_lease_lost() override { log_.push_back("lease_lost"); }
  void program_changes(std::vector<ProgramChange> changes) override {
    for (auto& c : changes) {
      log_.push_back(std::string(to_string(c.kind)) + ":" + c.shard.str() + "@" + std::to_string(c.epoch.value()));
      told.push_back(std::move(c));
    }
  }

  /// Completes the oldest durable write (its records become durable).
  void complete_persist(const std::string& error = "") {
    ASSERT_FALSE(persists.empty());
    PendingPersist p = std::move(persists.front());
    persists.pop_front();
    if (error.empty()) {
      for (const auto& [id, rec] : p.changes->records()) durable[id] = rec;
    }
    log_.push_back("persisted");
    p.done(error);
  }
  /// Removes and returns the first pending call of `kind`.
  PendingCall take(CallKind kind) {
    for (auto it = calls.begin(); it != calls.end(); ++it) {
      if (it->call.kind == kind) {
        PendingCall c = std::move(*it);
        calls.erase(it);
        return c;
      }
    }
    ADD_FAILURE() << "no pending " << to_string(kind) << " call";
    return {};
  }
  bool pending(CallKind kind) const {
    for (const auto& c : calls) {
      if (c.call.kind == kind) return true;
    }
    return false;
  }
  /// Runs every timer due by now, in due order.
  void fire_due() {
    for (;;) {
      auto it = std::min_element(timers.begin(), timers.end(), [](const Timer& a, const Timer& b) { return a.due < b.due; });
      if (it == timers.end() || it->due > clock_.now()) return;
      auto fn = std::move(it->fn);
      timers.erase(it);
      fn();
    }
  }
  std::vector<std::string>& events() { return log_; }

  std::deque<PendingCall> calls;
  std::deque<PendingPersist> persists;
  std::vector<Timer> timers;
  std::map<std::string, ShardRecord> durable;
  uint64_t watch_gen = 0;
  std::optional<Revision> watch_from;
  int rotations = 0;
  std::string fatal_message;
  /// The program: whether it drains, the drains asked for, what it was told.
  bool drains = false;
  struct PendingDrain {
    ShardEpoch shard;
    std::chrono::nanoseconds budget;
    std::function<void()> done;
  };
  std::deque<PendingDrain> drain_calls;
  std::deque<PendingDrain> prepare_calls;
  std::vector<ProgramChange> told;

 private:
  const ManualClock& clock_;
  std::vector<std::string> log_;
};

class SessionCoreTest : public ::testing::Test {
 protected:
  static constexpr milliseconds kInterval{100};
  static constexpr uint32_t kLeaseMs = 3000;

  void make(SessionKnobs knobs = {}) {
    fence.set_trace([this](std::string_view e) { io.events().push_back(std::string(e)); });
    SessionCoreConfig cfg{WorkerId("w1"), SessionTimings::for_interval(kInterval), knobs};
    core = std::make_unique<SessionCore>(cfg, fence, clock, io);
  }

  Reply lease_answer(uint64_t revision, uint64_t worker_revision, std::vector<ShardEpoch> revoked = {},
                     SteadyTime sent = {}) {
    Reply r;
    r.status = ReplyStatus::kOk;
    r.http_status = 200;
    r.endpoint = "c1";
    r.sent = sent == SteadyTime{} ? clock.now() : sent;
    r.lease.lease_ms = kLeaseMs;
    r.lease.revision = Revision(revision);
    r.lease.worker_revision = Revision(worker_revision);
    r.lease.revoked = std::move(revoked);
    return r;
  }
  static Reply listing(uint64_t revision, std::vector<std::pair<std::string, uint64_t>> held) {
    Reply r;
    r.status = ReplyStatus::kOk;
    r.http_status = 200;
    r.list.revision = Revision(revision);
    for (auto& [id, epoch] : held) r.list.shards.push_back({ShardId(id), WorkerId("w1"), Epoch(epoch), "active"});
    return r;
  }
  static WatchEvent event(WatchEvent::Kind kind, uint64_t revision, const std::string& shard, uint64_t epoch) {
    WatchEvent e;
    e.kind = kind;
    e.revision = Revision(revision);
    e.shard = ShardId(shard);
    e.worker = WorkerId("w1");
    e.epoch = Epoch(epoch);
    return e;
  }
  /// Completes every durable write pending (writes complete in order).
  void persist_all() {
    while (!io.persists.empty()) io.complete_persist();
  }
  /// Starts, registers (revision `rev`) and re-lists `held` at `rev`.
  void sync(uint64_t rev, std::vector<std::pair<std::string, uint64_t>> held) {
    core->start();
    io.take(CallKind::kRegister).done(lease_answer(rev, rev));
    persist_all();
    io.take(CallKind::kList).done(listing(rev, std::move(held)));
    persist_all();
    ASSERT_TRUE(core->synced());
    ASSERT_TRUE(fence.lease_valid());
  }
  /// With a program that drains: synced holding s1 and s2 at epoch 1, then
  /// a watch revoke of s1 starts its drain. Returns the drain's budget.
  std::chrono::nanoseconds start_draining_s1() {
    io.drains = true;
    make();
    sync(5, {{"s1", 1}, {"s2", 1}});
    core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kRevoke, 6, "s1", 1)}, "", false});
    persist_all();
    EXPECT_EQ(io.drain_calls.size(), 1u);
    return io.drain_calls.empty() ? std::chrono::nanoseconds(0) : io.drain_calls[0].budget;
  }
  /// The next tick's heartbeat, answered with a bare `status`.
  void answer_next_heartbeat(ReplyStatus status, int http_status) {
    clock.advance(kInterval);
    io.fire_due();
    Reply r;
    r.status = status;
    r.http_status = http_status;
    io.take(CallKind::kHeartbeat).done(r);
  }
  size_t index_of(const std::string& what) {
    auto& ev = io.events();
    auto it = std::find(ev.begin(), ev.end(), what);
    return it == ev.end() ? ev.size() : static_cast<size_t>(it - ev.begin());
  }

  ManualClock clock;
  FakeIo io{clock};
  FenceState fence{clock};
  std::unique_ptr<SessionCore> core;
};

TEST_F(SessionCoreTest, NothingIsServedBeforeRegisteredAndRelisted) {
  // Held from an earlier life, loaded from disk: still nothing until synced.
  std::map<std::string, ShardRecord> loaded{{"s1", {Epoch(2), Epoch(), true}}};
  fence.load(loaded, Revision(4));
  make();
  core->start();
  EXPECT_EQ(fence.check("s1", Epoch(2)).code, FenceCode::kLeaseExpired);
  // The answer needs no revision the table lacks: only the sync rule holds it.
  io.take(CallKind::kRegister).done(lease_answer(5, 4));
  persist_all();
  EXPECT_TRUE(core->registered());
  EXPECT_FALSE(core->synced());
  EXPECT_FALSE(fence.lease_valid()) << "registered but not re-listed";
  EXPECT_EQ(fence.check("s1", Epoch(2)).code, FenceCode::kLeaseExpired);
  io.take(CallKind::kList).done(listing(5, {{"s1", 2}, {"s3", 1}}));
  EXPECT_FALSE(fence.lease_valid()) << "the listing is not durable yet";
  persist_all();
  EXPECT_TRUE(core->synced());
  EXPECT_EQ(fence.check("s1", Epoch(2)).code, FenceCode::kOk);
  ASSERT_TRUE(io.watch_from.has_value());
  EXPECT_EQ(io.watch_from->value(), 5u) << "the watch starts from the listing's revision";
}

TEST_F(SessionCoreTest, HeartbeatDropsItsRevokedShardsDurablyBeforeItExtendsTheLease) {
  make();
  sync(5, {{"s1", 1}, {"s2", 1}});
  auto before = fence.lease_remaining();
  // The watch is at the answer's worker revision already: only the order
  // of the drop and the extension is under test.
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kProgress, 6, "", 0)}, "", false});
  clock.advance(kInterval);
  io.fire_due();
  io.events().clear();
  auto hb = io.take(CallKind::kHeartbeat);
  hb.done(lease_answer(6, 6, {{ShardId("s1"), Epoch(1)}}));
  // The drop is on its way to disk: the lease has not moved, s1 is still
  // installed as it was, and no release went out.
  ASSERT_EQ(io.persists.size(), 1u);
  EXPECT_EQ(fence.lease_remaining(), before - kInterval);
  EXPECT_FALSE(io.pending(CallKind::kRelease));
  io.complete_persist();
  EXPECT_FALSE(io.durable.at("s1").held);
  EXPECT_EQ(fence.check("s1", Epoch(1)).code, FenceCode::kNotOwner);
  EXPECT_GT(fence.lease_remaining(), before - kInterval) << "extended once the drop was durable";
  EXPECT_TRUE(io.pending(CallKind::kRelease));
  // persisted -> install -> lease -> release, in that order.
  EXPECT_LT(index_of("persisted"), index_of("install"));
  EXPECT_LT(index_of("install"), index_of("extend_lease"));
  EXPECT_LT(index_of("extend_lease"), index_of("call:release"));
  auto rel = io.take(CallKind::kRelease);
  ASSERT_EQ(rel.call.shards.size(), 1u);
  EXPECT_EQ(rel.call.shards[0].shard, ShardId("s1"));
}

TEST_F(SessionCoreTest, LeaseWaitsUntilTheTableReachesTheWorkerRevision) {
  make();
  sync(5, {{"s1", 1}});
  // The lease from the sync runs out (heartbeats unanswered); then an
  // answer naming revision 7 (a handoff of s1 completed there, which the
  // watch has not brought yet) must not extend it over s1.
  clock.advance(milliseconds(kLeaseMs));
  io.fire_due();
  EXPECT_FALSE(fence.lease_valid());
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kProgress, 6, "", 0)}, "", false});
  io.take(CallKind::kHeartbeat).done(lease_answer(7, 7));
  EXPECT_FALSE(fence.lease_valid()) << "table at 6, answer needs 7";
  EXPECT_EQ(fence.check("s1", Epoch(1)).code, FenceCode::kLeaseExpired);
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kRevoke, 7, "s1", 1)}, "", false});
  EXPECT_FALSE(fence.lease_valid()) << "the revoke is not durable yet";
  persist_all();
  EXPECT_TRUE(fence.lease_valid());
  EXPECT_EQ(fence.check("s1", Epoch(1)).code, FenceCode::kNotOwner);
}

TEST_F(SessionCoreTest, KnobLeaseIgnoresWorkerRevisionBreaksTheRule) {
  // The planted bug the simulator must catch: the same steps as above
  // serve s1 again under the new lease.
  make(SessionKnobs{false, true});
  sync(5, {{"s1", 1}});
  clock.advance(milliseconds(kLeaseMs));
  io.fire_due();
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kProgress, 6, "", 0)}, "", false});
  io.take(CallKind::kHeartbeat).done(lease_answer(7, 7));
  EXPECT_EQ(fence.check("s1", Epoch(1)).code, FenceCode::kOk);
}

TEST_F(SessionCoreTest, KnobLeaseNoMarginMakesTheLeaseTheControllers) {
  make(SessionKnobs{true, false});
  sync(5, {});
  EXPECT_EQ(fence.lease_remaining(), milliseconds(kLeaseMs));
}

TEST_F(SessionCoreTest, LeaseHasDriftAndMarginTakenOff) {
  make();
  sync(5, {});
  EXPECT_EQ(fence.lease_remaining(), lease_validity(milliseconds(kLeaseMs), kInterval));
}

TEST_F(SessionCoreTest, AGrantIsDurableBeforeItIsServed) {
  make();
  sync(5, {});
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kGrant, 6, "s1", 1)}, "", false});
  ASSERT_EQ(io.persists.size(), 1u);
  EXPECT_EQ(fence.check("s1", Epoch(1)).code, FenceCode::kNotOwner);
  io.complete_persist();
  EXPECT_TRUE(io.durable.at("s1").held);
  EXPECT_EQ(fence.check("s1", Epoch(1)).code, FenceCode::kOk);
}

TEST_F(SessionCoreTest, AWatchRevokeIsDroppedDurablyThenReleased) {
  make();
  sync(5, {{"s1", 1}});
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kRevoke, 6, "s1", 1)}, "", false});
  EXPECT_FALSE(io.pending(CallKind::kRelease));
  io.complete_persist();
  EXPECT_EQ(fence.check("s1", Epoch(1)).code, FenceCode::kNotOwner);
  EXPECT_TRUE(io.pending(CallKind::kRelease));
}

TEST_F(SessionCoreTest, ACompactedWatchRelists) {
  make();
  sync(5, {{"s1", 1}});
  EXPECT_FALSE(io.pending(CallKind::kList));
  core->on_watch_end(io.watch_gen, WatchEnd::kCompacted, 410);
  ASSERT_TRUE(io.pending(CallKind::kList));
  io.take(CallKind::kList).done(listing(9, {}));
  persist_all();
  EXPECT_EQ(fence.check("s1", Epoch(1)).code, FenceCode::kNotOwner) << "missing from the listing: dropped";
  EXPECT_EQ(io.watch_from->value(), 9u);
}

TEST_F(SessionCoreTest, AnErrorOrUndecodableLineRelists) {
  make();
  sync(5, {});
  WatchEvent err;
  err.kind = WatchEvent::Kind::kError;
  err.error = "too_slow";
  core->on_watch_batch(io.watch_gen, WatchBatch{{err}, "", false});
  EXPECT_TRUE(io.pending(CallKind::kList));
  io.take(CallKind::kList).done(listing(6, {}));
  persist_all();
  core->on_watch_batch(io.watch_gen, WatchBatch{{}, "not JSON", false});
  EXPECT_TRUE(io.pending(CallKind::kList));
}

TEST_F(SessionCoreTest, AnEndedWatchMovesToAnotherMemberAndReconnectsFromTheTable) {
  make();
  sync(5, {});
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kProgress, 8, "", 0)}, "", false});
  uint64_t gen = io.watch_gen;
  core->on_watch_end(gen, WatchEnd::kUnavailable, 0);
  EXPECT_EQ(io.rotations, 1);
  EXPECT_FALSE(io.pending(CallKind::kList)) << "no relist: the events are still there";
  io.watch_from.reset();
  clock.advance(milliseconds(100));  // the first backoff is at most 100 ms
  io.fire_due();
  ASSERT_TRUE(io.watch_from.has_value());
  EXPECT_EQ(io.watch_from->value(), 8u);
  EXPECT_NE(io.watch_gen, gen);
}

TEST_F(SessionCoreTest, APauseStopsTheLeaseAndAnOldAnswerDoesNotRestartIt) {
  make();
  sync(5, {{"s1", 1}});
  SteadyTime sent_before_pause = clock.now();
  // SIGSTOP for longer than the lease: nothing runs, the clock goes on.
  clock.advance(milliseconds(kLeaseMs));
  EXPECT_EQ(fence.check("s1", Epoch(1)).code, FenceCode::kLeaseExpired);
  io.fire_due();  // the tick, far behind its time
  EXPECT_FALSE(fence.lease_valid());
  ASSERT_TRUE(io.pending(CallKind::kHeartbeat));
  // The answer to a heartbeat sent before the pause counts from its send time.
  io.take(CallKind::kHeartbeat).done(lease_answer(5, 5, {}, sent_before_pause));
  EXPECT_FALSE(fence.lease_valid());
  EXPECT_EQ(fence.check("s1", Epoch(1)).code, FenceCode::kLeaseExpired);
}

TEST_F(SessionCoreTest, WorkerDeadDropsEveryGrantDurablyAndRegistersAgain) {
  make();
  sync(5, {{"s1", 1}, {"s2", 3}});
  answer_next_heartbeat(ReplyStatus::kWorkerDead, 409);
  EXPECT_FALSE(fence.lease_valid());
  EXPECT_FALSE(core->synced());
  EXPECT_FALSE(io.pending(CallKind::kRegister)) << "registers only once the drop is durable";
  io.complete_persist();
  EXPECT_FALSE(io.durable.at("s1").held);
  EXPECT_FALSE(io.durable.at("s2").held);
  EXPECT_TRUE(io.pending(CallKind::kRegister));
  EXPECT_FALSE(io.pending(CallKind::kRelease)) << "the controllers moved them: nothing to release";
}

TEST_F(SessionCoreTest, NotRegisteredStopsServingButForgetsNothing) {
  make();
  sync(5, {{"s1", 1}});
  answer_next_heartbeat(ReplyStatus::kNotFound, 404);
  EXPECT_FALSE(fence.lease_valid());
  EXPECT_TRUE(io.persists.empty());
  EXPECT_TRUE(io.pending(CallKind::kRegister));
  EXPECT_TRUE(fence.table_for_planning().find("s1")->held);
}

TEST_F(SessionCoreTest, LeaveDropsEveryGrantDurablyOnceAccepted) {
  make();
  sync(5, {{"s1", 1}});
  std::optional<bool> left;
  core->leave(3s, [&](bool ok) { left = ok; });
  EXPECT_TRUE(io.timers.empty()) << "every loop stops";
  EXPECT_EQ(io.watch_gen, 0u) << "the watch is closed";
  Reply ok;
  ok.status = ReplyStatus::kOk;
  ok.http_status = 200;
  io.take(CallKind::kLeave).done(ok);
  EXPECT_FALSE(left.has_value()) << "not before the drop is durable";
  io.complete_persist();
  ASSERT_TRUE(left.has_value());
  EXPECT_TRUE(*left);
  EXPECT_FALSE(io.durable.at("s1").held);
}

TEST_F(SessionCoreTest, LeaveRefusedKeepsTheGrants) {
  make();
  sync(5, {{"s1", 1}});
  std::optional<bool> left;
  core->leave(3s, [&](bool ok) { left = ok; });
  io.take(CallKind::kLeave).done(Reply{});
  ASSERT_TRUE(left.has_value());
  EXPECT_FALSE(*left);
  EXPECT_TRUE(io.persists.empty());
}

TEST_F(SessionCoreTest, LeaveBeforeRegisteringSendsNothing) {
  make();
  core->start();
  std::optional<bool> left;
  core->leave(3s, [&](bool ok) { left = ok; });
  ASSERT_TRUE(left.has_value());
  EXPECT_FALSE(*left);
  EXPECT_FALSE(io.pending(CallKind::kLeave));
}

TEST_F(SessionCoreTest, AFailedDurableWriteStopsTheFenceForGood) {
  make();
  sync(5, {});
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kGrant, 6, "s1", 1)}, "", false});
  io.complete_persist("disk full");
  EXPECT_TRUE(core->failed());
  EXPECT_TRUE(fence.stopped());
  EXPECT_FALSE(io.fatal_message.empty());
  EXPECT_EQ(fence.check("s1", Epoch(1)).code, FenceCode::kLeaseExpired);
}

// ---- The program in the loop (CONTRACT.md, "Agent and program") ----

TEST_F(SessionCoreTest, TheProgramIsToldOfGrantsAndRevokesOnceTheyAreInEffect) {
  io.drains = true;
  make();
  sync(5, {{"s1", 2}});
  ASSERT_EQ(io.told.size(), 1u);
  EXPECT_EQ(io.told[0].kind, ProgramChange::Kind::kGrant);
  EXPECT_EQ(io.told[0].epoch, Epoch(2));
  EXPECT_LT(index_of("persisted"), index_of("grant:s1@2")) << "told only once durable";
  // A deletion is no planned move: no drain, the program hears the revoke.
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kShardDeleted, 6, "s1", 3)}, "", false});
  persist_all();
  EXPECT_TRUE(io.drain_calls.empty());
  ASSERT_EQ(io.told.size(), 2u);
  EXPECT_EQ(io.told[1].kind, ProgramChange::Kind::kRevoke);
  EXPECT_EQ(io.told[1].reason, "deleted");
  EXPECT_EQ(io.told[1].epoch, Epoch(2)) << "the epoch the program held";
}

TEST_F(SessionCoreTest, APlannedMoveIsServedUntilTheProgramDrainedItThenDroppedAndReleased) {
  io.drains = true;
  make();
  sync(5, {{"s1", 1}, {"s2", 1}});
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kProgress, 6, "", 0)}, "", false});
  clock.advance(kInterval);
  io.fire_due();
  auto before = fence.lease_remaining();
  io.take(CallKind::kHeartbeat).done(lease_answer(6, 6, {{ShardId("s1"), Epoch(1)}}));
  persist_all();
  ASSERT_EQ(io.drain_calls.size(), 1u);
  EXPECT_EQ(io.drain_calls[0].shard.shard, ShardId("s1"));
  EXPECT_EQ(io.drain_calls[0].budget, before) << "the lease in force before this answer extended it";
  EXPECT_GT(fence.lease_remaining(), before) << "the answer extended the lease";
  EXPECT_TRUE(fence.check("s1", Epoch(1)).ok()) << "still served while draining";
  ASSERT_EQ(fence.draining_shards().size(), 1u) << "GET /v1/grants marks it draining";
  EXPECT_EQ(fence.draining_shards()[0].shard, ShardId("s1"));
  EXPECT_FALSE(io.pending(CallKind::kRelease));
  // A second answer naming the same handoff asks nothing more.
  clock.advance(kInterval);
  io.fire_due();
  io.take(CallKind::kHeartbeat).done(lease_answer(6, 6, {{ShardId("s1"), Epoch(1)}}));
  persist_all();
  EXPECT_EQ(io.drain_calls.size(), 1u);
  EXPECT_FALSE(io.pending(CallKind::kRelease));
  // Drained: dropped durably, then released, then the program hears the revoke.
  io.events().clear();
  auto drained = std::move(io.drain_calls.front());
  io.drain_calls.pop_front();
  drained.done();
  io.fire_due();  // finished drains are flushed together, in a turn of their own
  EXPECT_TRUE(fence.check("s1", Epoch(1)).ok()) << "not dropped before it is durable";
  persist_all();
  EXPECT_FALSE(io.durable.at("s1").held);
  EXPECT_FALSE(fence.check("s1", Epoch(1)).ok());
  EXPECT_TRUE(fence.check("s2", Epoch(1)).ok());
  EXPECT_LT(index_of("persisted"), index_of("call:release"));
  EXPECT_LT(index_of("install"), index_of("revoke:s1@1")) << "refused before the program hears of it";
  auto rel = io.take(CallKind::kRelease);
  ASSERT_EQ(rel.call.shards.size(), 1u);
  EXPECT_EQ(rel.call.shards[0].shard, ShardId("s1"));
  ASSERT_FALSE(io.told.empty());
  EXPECT_EQ(io.told.back().reason, "handoff");
  EXPECT_EQ(fence.draining(), 0u);
}

TEST_F(SessionCoreTest, ADrainNeverOutlivesTheLeaseInForceWhenTheMoveWasSeen) {
  // The controllers complete a handoff nobody confirmed once that lease
  // has surely run out; later heartbeats extend the lease of the rest only.
  auto budget = start_draining_s1();
  ASSERT_GT(budget, std::chrono::nanoseconds(0));
  // Heartbeats keep the lease alive past the drain's budget.
  auto end = clock.now() + budget;
  while (clock.now() < end + kInterval) {
    clock.advance(kInterval);
    io.fire_due();
    if (io.pending(CallKind::kHeartbeat)) {
      io.take(CallKind::kHeartbeat).done(lease_answer(6, 6, {{ShardId("s1"), Epoch(1)}}));
      persist_all();
    }
  }
  EXPECT_TRUE(fence.lease_valid());
  EXPECT_TRUE(fence.check("s2", Epoch(1)).ok());
  EXPECT_EQ(fence.check("s1", Epoch(1)).code, FenceCode::kLeaseExpired) << "the program never answered";
  EXPECT_FALSE(io.pending(CallKind::kRelease)) << "released only when the drain ends (its budget's timer)";
}

TEST_F(SessionCoreTest, DrainsThatEndTogetherAreOneDurableBatchAndOneRelease) {
  // A drain of the whole worker: a per-shard fsync would hold the strand
  // (and the heartbeats) for seconds at thousands of shards.
  io.drains = true;
  make();
  sync(5, {{"s1", 1}, {"s2", 1}, {"s3", 1}});
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kRevoke, 6, "s1", 1),
                                                 event(WatchEvent::Kind::kRevoke, 7, "s2", 1),
                                                 event(WatchEvent::Kind::kRevoke, 8, "s3", 1)},
                                                "", false});
  persist_all();
  ASSERT_EQ(io.drain_calls.size(), 3u);
  for (auto& d : io.drain_calls) d.done();
  io.drain_calls.clear();
  io.fire_due();
  EXPECT_EQ(io.persists.size(), 1u);
  persist_all();
  auto rel = io.take(CallKind::kRelease);
  EXPECT_EQ(rel.call.shards.size(), 3u);
  EXPECT_FALSE(io.pending(CallKind::kRelease));
  EXPECT_EQ(fence.held_count(), 0u);
}

TEST_F(SessionCoreTest, AShardGrantedBackAtANewerEpochMidDrainIsNotHeldToTheOldDeadline) {
  // tenure-sim --fleet --seed 40056: the program never answered, the
  // controllers completed the move without us, then granted the shard back
  // at a newer epoch; the old epoch's drain deadline refused the new grant
  // for good and the fleet never settled.
  auto budget = start_draining_s1();
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kGrant, 9, "s1", 3)}, "", false});
  persist_all();
  clock.advance(std::chrono::duration_cast<milliseconds>(budget) + kInterval);
  // Keep the lease itself alive meanwhile.
  io.fire_due();
  while (io.pending(CallKind::kHeartbeat)) {
    io.take(CallKind::kHeartbeat).done(lease_answer(9, 9));
    persist_all();
  }
  ASSERT_TRUE(fence.lease_valid());
  EXPECT_TRUE(fence.check("s1", Epoch(3)).ok()) << "the newer grant is not the drained one";
  EXPECT_EQ(fence.check("s1", Epoch(1)).code, FenceCode::kStaleEpoch);
}

TEST_F(SessionCoreTest, TheProgramHearsOnceWhenTheLeaseIsLost) {
  make();
  sync(5, {{"s1", 1}});
  auto count = [this] { return std::count(io.events().begin(), io.events().end(), "lease_lost"); };
  // A heartbeat that times out after the lease ran out: the next tick notices.
  clock.advance(kInterval);
  io.fire_due();
  auto hb = io.take(CallKind::kHeartbeat);
  clock.advance(milliseconds(kLeaseMs));
  Reply timeout;
  timeout.detail = "timeout";
  hb.done(timeout);
  EXPECT_EQ(count(), 0);
  io.fire_due();
  EXPECT_FALSE(fence.lease_valid());
  EXPECT_EQ(count(), 1);
  clock.advance(kInterval);
  io.fire_due();
  EXPECT_EQ(count(), 1) << "told once per loss";
  // Renewed, then lost through a 404: told again, at once.
  io.take(CallKind::kHeartbeat).done(lease_answer(5, 5));
  persist_all();
  ASSERT_TRUE(fence.lease_valid());
  answer_next_heartbeat(ReplyStatus::kNotFound, 404);
  EXPECT_EQ(count(), 2);
}

TEST_F(SessionCoreTest, WithoutAProgramThatDrainsARevokeTakesEffectAtOnce) {
  make();
  sync(5, {{"s1", 1}});
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kRevoke, 6, "s1", 1)}, "", false});
  persist_all();
  EXPECT_TRUE(io.drain_calls.empty());
  EXPECT_FALSE(fence.check("s1", Epoch(1)).ok());
  EXPECT_TRUE(io.pending(CallKind::kRelease));
}

}  // namespace
}  // namespace tenure::agent

namespace tenure::agent {
namespace {

// A planned move's target: the program prepares while the source serves;
// the controllers hear "prepared" (one call for those that end together)
// with the grants' epochs; nothing is served until the grant comes.
TEST_F(SessionCoreTest, APrepareIsToldToTheProgramThenReportedAsPrepared) {
  io.drains = true;
  make();
  sync(5, {{"s1", 1}});
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kPrepare, 6, "s7", 4),
                                                 event(WatchEvent::Kind::kPrepare, 7, "s8", 2)},
                                                "", false});
  persist_all();
  ASSERT_EQ(io.prepare_calls.size(), 2u);
  EXPECT_EQ(io.prepare_calls[0].shard.epoch, Epoch(4));
  EXPECT_FALSE(fence.check("s7", Epoch(4)).ok()) << "prepared is not granted";
  EXPECT_FALSE(io.pending(CallKind::kPrepared)) << "not before the program answered";
  // The same events again (a reconnect) ask nothing more.
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kPrepare, 6, "s7", 4)}, "", false});
  persist_all();
  EXPECT_EQ(io.prepare_calls.size(), 2u);
  for (auto& p : io.prepare_calls) p.done();
  io.prepare_calls.clear();
  io.fire_due();
  auto prepared = io.take(CallKind::kPrepared);
  ASSERT_EQ(prepared.call.shards.size(), 2u);
  EXPECT_EQ(prepared.call.shards[0].shard, ShardId("s7"));
  EXPECT_EQ(prepared.call.shards[0].epoch, Epoch(4));
  EXPECT_FALSE(io.pending(CallKind::kPrepared));
  // s7's grant comes; s8's never does: the program hears it may unload s8.
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kGrant, 9, "s7", 4)}, "", false});
  persist_all();
  EXPECT_TRUE(fence.check("s7", Epoch(4)).ok());
  clock.advance(SessionTimings().prepare_abandon_after);
  io.fire_due();
  EXPECT_EQ(index_of("abandon:s7@4"), io.events().size()) << "s7 came";
  EXPECT_LT(index_of("abandon:s8@2"), io.events().size());
}

TEST_F(SessionCoreTest, AnUnconfirmedPreparedIsSentAgain) {
  io.drains = true;
  make();
  sync(5, {});
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kPrepare, 6, "s7", 1)}, "", false});
  persist_all();
  io.prepare_calls.front().done();
  io.fire_due();
  Reply failed;
  failed.http_status = 503;
  io.take(CallKind::kPrepared).done(failed);
  clock.advance(SessionTimings().release_retry_base);
  io.fire_due();
  EXPECT_EQ(io.take(CallKind::kPrepared).call.shards.size(), 1u);
}

// tenure-sim --fleet --seed 993: a source that re-listed while its move's
// target prepared took the "handoff" row for a revoke, dropped the shard and
// released it; the move was then called off (the target died), the shard
// stayed the source's at its epoch, and the source refused it for good.
TEST_F(SessionCoreTest, AReListServesAHandoffWhoseTargetStillPrepares) {
  make();
  core->start();
  io.take(CallKind::kRegister).done(lease_answer(5, 5));
  persist_all();
  Reply r = listing(5, {{"s1", 3}});
  r.list.shards.push_back({ShardId("s2"), WorkerId("w1"), Epoch(4), "handoff", "preparing"});
  r.list.shards.push_back({ShardId("s3"), WorkerId("w1"), Epoch(2), "handoff", "draining"});
  r.list.shards.push_back({ShardId("s4"), WorkerId("w1"), Epoch(2), "handoff", ""});  // an older controller
  io.take(CallKind::kList).done(r);
  persist_all();
  ASSERT_TRUE(core->synced());
  EXPECT_TRUE(fence.check("s2", Epoch(4)).ok());
  EXPECT_FALSE(fence.check("s3", Epoch(2)).ok());
  EXPECT_FALSE(fence.check("s4", Epoch(2)).ok());
  auto rel = io.take(CallKind::kRelease);
  ASSERT_EQ(rel.call.shards.size(), 2u);
  EXPECT_EQ(rel.call.shards[0].shard, ShardId("s3"));
}

TEST_F(SessionCoreTest, WithoutAProgramPrepareEventsAreOnlyRevisions) {
  make();
  sync(5, {});
  core->on_watch_batch(io.watch_gen, WatchBatch{{event(WatchEvent::Kind::kPrepare, 6, "s7", 1)}, "", false});
  persist_all();
  io.fire_due();
  EXPECT_TRUE(io.prepare_calls.empty());
  EXPECT_FALSE(io.pending(CallKind::kPrepared));
  EXPECT_EQ(fence.revision(), Revision(6)) << "the table reached the event (the lease waits for it)";
}

}  // namespace
}  // namespace tenure::agent
