// The session core: register, heartbeat, the order of work on a lease
// answer, re-list, release and leave (the watch is session_core_watch.cc).
#include "dataplane_agent/session_core.h"

#include <algorithm>

namespace tenure::agent {

using std::chrono::milliseconds;

namespace {
/// Shards per page of the relist: the controllers' maximum (api/list_pages.h).
constexpr size_t kListPageLimit = 10000;
constexpr int kReleaseAttempts = 4;
/// Shards per release call: keeps bodies far below the controllers' 1 MiB limit.
constexpr size_t kReleaseChunk = 2000;

int64_t ms_of(std::chrono::nanoseconds d) { return std::chrono::duration_cast<milliseconds>(d).count(); }
}  // namespace

SessionTimings SessionTimings::for_interval(milliseconds interval) {
  SessionTimings t;
  t.heartbeat_interval = interval;
  t.heartbeat_timeout = std::max(interval, milliseconds(500));
  return t;
}

const char* to_string(CallKind k) {
  switch (k) {
    case CallKind::kRegister: return "register";
    case CallKind::kHeartbeat: return "heartbeat";
    case CallKind::kList: return "list";
    case CallKind::kRelease: return "release";
    case CallKind::kPrepared: return "prepared";
    case CallKind::kLeave: return "leave";
  }
  return "?";
}

milliseconds Backoff::next(SessionIo& io) {
  auto d = base_ * (int64_t{1} << std::min(attempt_, 20));
  if (d > max_) d = max_;
  ++attempt_;
  return milliseconds(io.uniform(d.count() / 2, d.count()));
}

SessionCore::SessionCore(SessionCoreConfig config, FenceState& fence, const Clock& clock, SessionIo& io)
    : config_(std::move(config)),
      t_(config_.timings),
      fence_(fence),
      clock_(clock),
      io_(io),
      relist_backoff_(t_.backoff_base, t_.backoff_max),
      watch_backoff_(t_.backoff_base, t_.backoff_max) {}

void SessionCore::log(LogLevel level, const std::string& fields) const {
  if (io_.logging(level)) io_.log(level, fields);
}

std::shared_ptr<GrantChanges> SessionCore::changes() const {
  auto c = std::make_shared<GrantChanges>(fence_.table_for_planning());
  if (io_.program_drains()) {
    // Held back until its drain finished; then the next batch drops it.
    c->set_drain_filter([this](const ShardEpoch& s) {
      auto it = draining_.find(s.shard.str());
      return it == draining_.end() || it->second.epoch != s.epoch || !it->second.finished;
    });
  }
  return c;
}

void SessionCore::start() {
  send_register();
  schedule_tick();
}

void SessionCore::schedule_tick() {
  tick_due_ = clock_.now() + t_.heartbeat_interval;
  io_.after(t_.heartbeat_interval, [this] {
    if (stopping_) return;
    tick();
    schedule_tick();
  });
}

void SessionCore::tick() {
  // A tick far behind its time means the process was paused (SIGSTOP, a
  // stalled VM) or starved: the lease ran on meanwhile. Take back at once
  // what ran out rather than at the next answer.
  SteadyTime now = clock_.now();
  if (tick_due_ && now - *tick_due_ > t_.heartbeat_interval) {
    if (io_.logging(LogLevel::kWarn)) {
      log(LogLevel::kWarn, "event=pause_detected late_ms=" + std::to_string(ms_of(now - *tick_due_)) +
                               " lease_valid=" + (fence_.lease_valid() ? "true" : "false"));
    }
    refresh_lease();
  }
  check_lease_lost();  // a lease that ran out with nobody looking
  if (!registered_) {
    if (!register_inflight_) send_register();
  } else if (!heartbeat_inflight_) {
    send_heartbeat();
  }
}

void SessionCore::send_register() {
  register_inflight_ = true;
  uint64_t gen = session_gen_;
  Call c;
  c.kind = CallKind::kRegister;
  c.timeout = t_.register_timeout;
  io_.call(std::move(c), [this, gen](Reply r) {
    register_inflight_ = false;
    if (gen != session_gen_ || stopping_) return;
    handle_lease_reply(r, /*is_register=*/true);
  });
}

void SessionCore::send_heartbeat() {
  heartbeat_inflight_ = true;
  uint64_t gen = session_gen_;
  Call c;
  c.kind = CallKind::kHeartbeat;
  c.timeout = t_.heartbeat_timeout;
  io_.call(std::move(c), [this, gen](Reply r) {
    heartbeat_inflight_ = false;
    if (gen != session_gen_ || stopping_) return;
    handle_lease_reply(r, /*is_register=*/false);
  });
}

void SessionCore::handle_lease_reply(const Reply& r, bool is_register) {
  const char* what = is_register ? "register" : "heartbeat";
  switch (r.status) {
    case ReplyStatus::kOk: break;
    case ReplyStatus::kFailed:
      io_.heartbeat_result("error");
      if (!heartbeat_failing_ && io_.logging(LogLevel::kWarn)) {
        std::string why = r.http_status != 0 ? "status=" + std::to_string(r.http_status) + " error=" + r.detail
                                             : "error=" + r.detail;
        log(LogLevel::kWarn, std::string("event=") + what + "_failed endpoint=" + r.endpoint + " " + why);
      }
      heartbeat_failing_ = true;
      return;
    case ReplyStatus::kNotFound:
      if (!is_register) {
        io_.heartbeat_result("not_registered");
        // Not (yet) known to the member that answered, e.g. a new leader that
        // has not applied our registration: stop serving, but forget nothing;
        // the re-list after registering says what is still ours.
        return lost_registration("not_registered", /*drop_grants=*/false);
      }
      [[fallthrough]];
    case ReplyStatus::kRefused:
      io_.heartbeat_result("error");
      log(LogLevel::kWarn, std::string("event=") + what + "_refused status=" + std::to_string(r.http_status) +
                               " error=" + r.detail);
      return;
    case ReplyStatus::kWorkerDead:
      io_.heartbeat_result("worker_dead");
      ++stats_.declared_dead;
      // Declared dead: every shard of ours was granted elsewhere at a newer
      // epoch. Those grants are over for good.
      return lost_registration("worker_dead", /*drop_grants=*/true);
    case ReplyStatus::kBadAnswer:
      io_.heartbeat_result("bad_answer");
      log(LogLevel::kWarn, std::string("event=") + what + "_bad_answer endpoint=" + r.endpoint + " problem=\"" +
                               r.detail + "\"");
      return;
  }
  if (heartbeat_failing_) log(LogLevel::kInfo, std::string("event=") + what + "_recovered endpoint=" + r.endpoint);
  heartbeat_failing_ = false;
  io_.heartbeat_result("ok");
  ++stats_.heartbeats_ok;
  apply_lease_answer(r, is_register);
}

void SessionCore::apply_lease_answer(const Reply& r, bool is_register) {
  // 1. Stop serving what is being handed off, durably, before anything else.
  auto c = changes();
  for (const auto& s : r.lease.revoked) c->revoke_for_release(s);
  uint64_t gen = session_gen_;
  commit(c, [this, r, c, is_register, gen] {
    if (gen != session_gen_ || stopping_) return;
    // 2. Only then extend the lease: a heartbeat that arrived after a
    //    handoff began must never lengthen the time its shards are served.
    extend_lease(r);
    // 3. Confirm the handoffs so the new owners need not wait out the lease.
    send_release(c->to_release());
    if (is_register && !registered_) {
      registered_ = true;
      log(LogLevel::kInfo, "event=registered worker=" + config_.worker.str() + " endpoint=" + r.endpoint +
                               " lease_ms=" + std::to_string(r.lease.lease_ms) +
                               " revision=" + std::to_string(r.lease.revision.value()));
      start_relist();
    }
    check_watch_lag(r.lease.revision, r.lease.worker_revision);
  });
}

void SessionCore::extend_lease(const Reply& r) {
  const LeaseAnswer& a = r.lease;
  milliseconds lease(a.lease_ms);
  if (lease_ms_ != a.lease_ms) {
    auto validity = lease_validity(lease, t_.heartbeat_interval);
    if (validity <= t_.heartbeat_interval) {
      log(LogLevel::kError, "event=lease_too_short lease_ms=" + std::to_string(a.lease_ms) +
                                " heartbeat_interval_ms=" + std::to_string(t_.heartbeat_interval.count()) +
                                " validity_ms=" + std::to_string(ms_of(validity)) +
                                " hint=\"lower heartbeat_interval_ms or raise the controllers' worker_lease_ms\"");
    }
    lease_ms_ = a.lease_ms;
  }
  SteadyTime deadline = lease_deadline(r.sent, lease, t_.heartbeat_interval);
  if (config_.knobs.lease_no_margin) deadline = r.sent + lease;  // planted bug
  // Only over a table that knows every grant we lost up to the answer's
  // state (LeaseLedger): at once if the watch got there first, else once it
  // does.
  Revision needs = config_.knobs.lease_ignores_worker_revision ? Revision() : a.worker_revision;  // planted bug
  leases_.add(deadline, needs);
  if (fence_.revision() < needs) io_.lease_deferred();
  refresh_lease();
  if (io_.logging(LogLevel::kDebug)) {
    log(LogLevel::kDebug, "event=lease endpoint=" + r.endpoint + " left_ms=" + std::to_string(ms_of(deadline - clock_.now())) +
                              " needs_revision=" + std::to_string(needs.value()) + " table_revision=" +
                              std::to_string(fence_.revision().value()) + " synced=" + (synced_ ? "true" : "false") +
                              " valid=" + (fence_.lease_valid() ? "true" : "false") +
                              " revoked=" + std::to_string(a.revoked.size()));
  }
}

void SessionCore::lost_registration(const std::string& reason, bool drop_grants) {
  ++session_gen_;
  registered_ = false;
  synced_ = false;
  relist_inflight_ = false;
  leases_.clear();
  fence_.invalidate_lease();
  check_lease_lost();
  stop_watch();
  // The controllers moved every shard of ours: nothing to release.
  auto c = changes();
  if (drop_grants) c->drop_all();
  log(LogLevel::kWarn, "event=registration_lost reason=" + reason + " dropped=" + std::to_string(c->dropped()) +
                           " action=register_again");
  uint64_t gen = session_gen_;
  commit(c, [this, gen] {
    if (gen == session_gen_ && !stopping_) send_register();
  });
}

void SessionCore::start_relist() {
  if (relist_inflight_ || stopping_) return;
  relist_inflight_ = true;
  stop_watch();
  relist_pages_ = ShardList();
  relist_page_count_ = 0;
  fetch_relist_page("");
}

void SessionCore::fetch_relist_page(const std::string& token) {
  uint64_t gen = session_gen_;
  Call c;
  c.kind = CallKind::kList;
  c.timeout = t_.list_timeout;
  c.page_token = token;
  c.page_limit = kListPageLimit;
  io_.call(std::move(c), [this, gen](Reply r) {
    if (gen != session_gen_ || stopping_ || !relist_inflight_) return;
    on_relist_page(std::move(r));
  });
}

void SessionCore::on_relist_page(Reply r) {
  if (!r.ok()) {
    relist_inflight_ = false;
    if (r.status == ReplyStatus::kBadAnswer) {
      log(LogLevel::kWarn, "event=relist_bad_answer problem=\"" + r.detail + "\"");
    } else if (io_.logging(LogLevel::kWarn)) {
      log(LogLevel::kWarn, "event=relist_failed endpoint=" + r.endpoint + " status=" + std::to_string(r.http_status) +
                               " page=" + std::to_string(relist_page_count_) +
                               (r.http_status == 0 ? " error=" + r.detail : ""));
    }
    return schedule_relist();
  }
  // Each page is read at its own revision; the watch starts from the first
  // page's, so that every change made while the later pages were read is
  // replayed on top (epochs make the replay of an older change a no-op).
  if (relist_page_count_++ == 0) relist_pages_.revision = r.list.revision;
  for (auto& s : r.list.shards) relist_pages_.shards.push_back(std::move(s));
  if (!r.list.next.empty()) return fetch_relist_page(r.list.next);
  relist_inflight_ = false;
  auto list = std::make_shared<ShardList>(std::move(relist_pages_));
  relist_pages_ = ShardList();
  on_relist(std::move(list));
}

void SessionCore::on_relist(std::shared_ptr<ShardList> list) {
  relist_backoff_.reset();
  ++stats_.relists;
  auto c = changes();
  c->apply_listing(*list);
  uint64_t gen = session_gen_;
  commit(c, [this, c, list, gen] {
    if (gen != session_gen_ || stopping_) return;
    bool first = !synced_;
    synced_ = true;
    refresh_lease();
    send_release(c->to_release());
    if (io_.logging(LogLevel::kInfo)) {
      log(LogLevel::kInfo, std::string("event=") + (first ? "synced" : "relisted") +
                               " revision=" + std::to_string(list->revision.value()) +
                               " pages=" + std::to_string(relist_page_count_) +
                               " grants=" + std::to_string(fence_.held_count()) +
                               " granted=" + std::to_string(c->granted()) + " dropped=" + std::to_string(c->dropped()));
    }
    start_watch(list->revision);
  });
}

void SessionCore::schedule_relist() {
  uint64_t gen = session_gen_;
  io_.after(relist_backoff_.next(io_), [this, gen] {
    if (gen != session_gen_ || stopping_) return;
    start_relist();
  });
}

void SessionCore::send_release(std::vector<ShardEpoch> shards, int attempt) {
  send_shards(CallKind::kRelease, std::move(shards), attempt);
}

void SessionCore::send_shards(CallKind kind, std::vector<ShardEpoch> shards, int attempt) {
  if (shards.empty() || stopping_) return;
  if (shards.size() > kReleaseChunk) {
    std::vector<ShardEpoch> rest(shards.begin() + kReleaseChunk, shards.end());
    shards.resize(kReleaseChunk);
    send_shards(kind, std::move(rest), attempt);
  }
  if (kind == CallKind::kRelease) ++stats_.releases;
  Call c;
  c.kind = kind;
  c.timeout = t_.release_timeout;
  c.shards = shards;
  io_.call(std::move(c), [this, kind, shards = std::move(shards), attempt](Reply r) mutable {
    if (kind == CallKind::kRelease) io_.release_result(r.ok());
    if (r.ok()) return;
    log(LogLevel::kWarn, std::string("event=") + to_string(kind) + "_failed shards=" + std::to_string(shards.size()) +
                             " status=" + std::to_string(r.http_status) + " attempt=" + std::to_string(attempt + 1));
    // Unconfirmed, the controllers wait our lease out (a release) or their
    // prepare timeout (a prepared): slower, still safe.
    if (attempt + 1 >= kReleaseAttempts || stopping_) return;
    io_.after(t_.release_retry_base * (1 << attempt), [this, kind, shards = std::move(shards), attempt]() mutable {
      send_shards(kind, std::move(shards), attempt + 1);
    });
  });
}

void SessionCore::commit(std::shared_ptr<GrantChanges> c, Then then) {
  if (failed_) return;
  // Before anything of this batch takes effect: the lease in force now is
  // the one the drains may use (a lease answer extends it only afterwards).
  start_drains(*c);
  if (c->refused() > 0) {
    // Normal for a re-list racing a revoke; persistent ones mean the
    // controllers' epochs went back (a wiped cluster with kept agents).
    log(LogLevel::kWarn, "event=stale_grants_refused count=" + std::to_string(c->refused()) +
                             " hint=\"an epoch never goes down; if the controllers were reset, reset the agents data_dir\"");
  }
  if (c->empty()) return then();
  // A batch that only moves the revision need not cost an fsync: a restart
  // always re-lists before serving, so the stored revision is a hint.
  if (c->records().empty()) {
    installed(*c);
    return then();
  }
  // Durable before it takes effect.
  io_.persist(c, [this, c, then = std::move(then)](std::string error) {
    if (!error.empty()) return fatal("cannot persist grants: " + error);
    installed(*c);
    then();
  });
}

void SessionCore::installed(const GrantChanges& c) {
  // Told once in effect: a revoked epoch is refused by the time the program hears of it.
  std::vector<ProgramChange> told = program_changes(c);
  fence_.install(c);
  if (!told.empty()) io_.program_changes(std::move(told));
  refresh_lease();
  stats_.grants += c.granted();
  if (c.records().empty()) return;
  io_.grants_changed(fence_.held_count());
  if (c.granted() + c.dropped() > 0 && io_.logging(LogLevel::kInfo)) {
    log(LogLevel::kInfo, "event=grants_changed granted=" + std::to_string(c.granted()) + " dropped=" +
                             std::to_string(c.dropped()) + " grants=" + std::to_string(fence_.held_count()) +
                             " revision=" + std::to_string(fence_.revision().value()));
  }
}

std::vector<ProgramChange> SessionCore::program_changes(const GrantChanges& c) const {
  if (c.records().empty()) return {};
  const GrantTable& before = fence_.table_for_planning();
  Revision revision = c.revision() ? std::max(*c.revision(), before.revision()) : before.revision();
  std::vector<ProgramChange> out;
  for (const auto& [id, rec] : c.records()) {
    const ShardRecord* old = before.find(id);
    bool was_held = old && old->held;
    bool epoch_moved = was_held && rec.held && old->max_epoch != rec.max_epoch;
    if (was_held && (!rec.held || epoch_moved)) {
      out.push_back({ProgramChange::Kind::kRevoke, ShardId(id), old->max_epoch, c.drop_reason(id), revision});
    }
    if (rec.held && (!was_held || epoch_moved)) {
      out.push_back({ProgramChange::Kind::kGrant, ShardId(id), rec.max_epoch, "granted", revision});
    }
  }
  return out;
}

void SessionCore::start_drains(const GrantChanges& c) {
  for (const auto& s : c.to_drain()) {
    auto [it, fresh] = draining_.try_emplace(s.shard.str(), Drain{s.epoch, false});
    if (!fresh && it->second.epoch == s.epoch) continue;  // asked already
    it->second = Drain{s.epoch, false};
    // The lease in force now, never one extended later: the controllers
    // complete the handoff without us once it has surely run out.
    std::chrono::nanoseconds budget = fence_.lease_remaining();
    if (config_.knobs.drain_past_lease) budget = std::chrono::hours(1);  // planted bug
    fence_.set_drain_deadline(s.shard, s.epoch, clock_.now() + budget);
    ++stats_.drains;
    if (io_.logging(LogLevel::kInfo)) {
      log(LogLevel::kInfo, "event=drain shard=" + s.shard.str() + " epoch=" + std::to_string(s.epoch.value()) +
                               " budget_ms=" + std::to_string(ms_of(budget)));
    }
    io_.program_drain(s, budget, [this, s] { finish_drain(s); });
  }
}

void SessionCore::finish_drain(const ShardEpoch& s) {
  auto it = draining_.find(s.shard.str());
  if (it == draining_.end() || it->second.epoch != s.epoch || it->second.finished || failed_) return;
  it->second.finished = true;
  finished_drains_.push_back(s);
  if (drain_flush_scheduled_) return;
  drain_flush_scheduled_ = true;
  // Drains that end together (a program answering a whole drain of the
  // worker, or a hung program's budgets running out at once) become one
  // durable batch: one fsync and one release call, not one per shard.
  io_.after(std::chrono::nanoseconds(0), [this] { flush_drains(); });
}

void SessionCore::flush_drains() {
  drain_flush_scheduled_ = false;
  if (failed_ || finished_drains_.empty()) return;
  auto done = std::make_shared<std::vector<ShardEpoch>>(std::move(finished_drains_));
  finished_drains_.clear();
  // Dropped durably first, then released, as for any revoke.
  auto c = changes();
  for (const auto& s : *done) c->revoke_for_release(s);
  commit(c, [this, c, done] {
    for (const auto& s : *done) {
      auto it = draining_.find(s.shard.str());
      if (it != draining_.end() && it->second.epoch == s.epoch) draining_.erase(it);
    }
    send_release(c->to_release());
  });
}

void SessionCore::fatal(const std::string& message) {
  // Fail-stop: an agent that cannot remember an epoch must not accept writes.
  failed_ = true;
  stopping_ = true;
  fence_.stop();
  synced_ = false;
  check_lease_lost();
  stop_watch();
  io_.cancel_timers();
  log(LogLevel::kError, "event=fatal error=\"" + message + "\" action=fence_stopped");
  io_.fatal(message);
}

void SessionCore::refresh_lease() {
  if (synced_) fence_.set_lease_from(leases_);
  check_lease_lost();
}

void SessionCore::check_lease_lost() {
  bool valid = synced_ && fence_.lease_valid();
  if (lease_was_valid_ && !valid) {
    log(LogLevel::kWarn, "event=lease_lost grants=" + std::to_string(fence_.held_count()));
    io_.program_lease_lost();
  }
  lease_was_valid_ = valid;
}

void SessionCore::check_watch_lag(Revision heartbeat_revision, Revision worker_revision) {
  // A watch served by a member cut off from the leader goes on sending
  // progress lines at a stale revision; the heartbeats (through another
  // member) show it. Move the watch if it stays behind for long: soon when
  // it has not brought an event of ours the leader has (the lease waits for
  // it), later when only others' events are missing.
  if (!synced_ || relist_inflight_ || !watch_open_) {
    watch_lag_.reset();
    return;
  }
  Revision seen = fence_.revision();
  if (watch_lag_ && seen >= watch_lag_->first) watch_lag_.reset();
  if (seen >= heartbeat_revision) return;
  bool own_events_missing = seen < worker_revision;
  if (!watch_lag_) {
    watch_lag_ = {own_events_missing ? worker_revision : heartbeat_revision, clock_.now()};
    return;
  }
  auto limit = own_events_missing ? t_.own_events_lag_limit : t_.watch_lag_limit;
  if (clock_.now() - watch_lag_->second > limit) {
    log(LogLevel::kWarn, "event=watch_lagging seen=" + std::to_string(seen.value()) + " heartbeat_revision=" +
                             std::to_string(heartbeat_revision.value()) + " worker_revision=" +
                             std::to_string(worker_revision.value()) + " action=rewatch endpoint=" + io_.endpoint());
    watch_lag_.reset();
    io_.watch_reconnect();
    start_watch(seen);
  }
}

void SessionCore::leave(milliseconds timeout, std::function<void(bool)> done) {
  stopping_ = true;
  io_.cancel_timers();
  stop_watch();
  if (failed_ || !registered_) return done(false);
  Call c;
  c.kind = CallKind::kLeave;
  c.timeout = timeout;
  io_.call(std::move(c), [this, done = std::move(done)](Reply r) {
    auto log_result = [this, r](bool left) {
      log(LogLevel::kInfo, std::string("event=") + (left ? "left" : "leave_failed") +
                               " status=" + std::to_string(r.http_status) + " endpoint=" + r.endpoint);
    };
    if (!r.ok() || failed_) {
      log_result(false);
      return done(false);
    }
    auto all = changes();
    all->drop_all("left");
    commit(all, [log_result, done] {
      log_result(true);
      done(true);
    });
    // A failed commit stopped the fence (fatal) and never runs the above.
    if (failed_) {
      log_result(false);
      done(false);
    }
  });
}

}  // namespace tenure::agent
