// The simulated agent's session, step for step the real one
// (dataplane_agent/session.cc and session_watch.cc): register, heartbeat,
// the order of work on a lease answer, re-list, release and the watch.
// Timeouts and backoffs are the real constants scaled to the run's lease.
#include <algorithm>

#include "dataplane_agent/lease.h"
#include "sim/fleet_agent.h"

namespace tenure::sim {

using std::chrono::milliseconds;

namespace {
constexpr int kReleaseAttempts = 4;
}  // namespace

std::chrono::milliseconds SimAgent::backoff(int& attempt) const {
  // Jittered exponential backoff (session.cc's Backoff): uniform in [d/2, d].
  auto d = static_cast<int64_t>(o_.scaled_ms(100)) << std::min(attempt, 20);
  d = std::min<int64_t>(d, static_cast<int64_t>(o_.scaled_ms(5000)));
  ++attempt;
  return milliseconds(env_.rng().range(d / 2, d));
}

void SimAgent::schedule_tick() {
  timer(interval_, [this] {
    if (stopping_) return;
    tick();
    schedule_tick();
  });
}

void SimAgent::tick() {
  if (!registered_) {
    if (!register_inflight_) send_register();
  } else if (!heartbeat_inflight_) {
    send_heartbeat();
  }
}

void SimAgent::send_register() {
  register_inflight_ = true;
  uint64_t gen = session_gen_;
  FleetRequest r;
  r.call = FleetCall::kRegister;
  r.address = "sim://" + id_.str();
  r.zone = zone_;
  r.capacity = capacity_;
  call(std::move(r), milliseconds(o_.scaled_ms(5000)), [this, gen](Reply rep) {
    register_inflight_ = false;
    if (gen != session_gen_ || stopping_) return;
    handle_lease_reply(rep, /*is_register=*/true);
  });
}

void SimAgent::send_heartbeat() {
  heartbeat_inflight_ = true;
  uint64_t gen = session_gen_;
  FleetRequest r;
  r.call = FleetCall::kHeartbeat;
  // heartbeat_timeout(): max(interval, 500 ms), scaled.
  milliseconds timeout(std::max({o_.heartbeat_ms, o_.scaled_ms(500), o_.min_call_ms}));
  call(std::move(r), timeout, [this, gen](Reply rep) {
    heartbeat_inflight_ = false;
    if (gen != session_gen_ || stopping_) return;
    handle_lease_reply(rep, /*is_register=*/false);
  });
}

void SimAgent::handle_lease_reply(const Reply& r, bool is_register) {
  switch (r.status) {
    case FleetStatus::kOk: break;
    case FleetStatus::kNotFound:
      // Not (yet) known to the member that answered: stop serving, forget nothing.
      if (!is_register) lost_registration("not_registered", /*drop_grants=*/false);
      return;
    case FleetStatus::kDead:
      ++stats_.declared_dead;
      lost_registration("worker_dead", /*drop_grants=*/true);
      return;
    default: return;  // error, or refused: try again at the next tick
  }
  ++stats_.heartbeats_ok;
  apply_lease_answer(r, is_register);
}

void SimAgent::extend_from(const Reply& r) {
  milliseconds lease(r.answer.lease.lease_ms);
  agent::SteadyTime deadline = agent::lease_deadline(r.sent, lease, interval_);
  if (o_.bug == "fleet-lease-no-margin") deadline = r.sent + lease;  // planted: no drift factor, no margin
  // Planted: the lease needs no table that knows what we lost (before the ledger).
  Revision needs = o_.bug == "fleet-lease-ignores-worker-revision" ? Revision() : r.answer.lease.worker_revision;
  leases_.add(deadline, needs);
  refresh_lease();
  if (env_.tracing()) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - clock_.now()).count();
    log("lease from " + r.endpoint.str() + (synced_ ? "" : " (not synced)") + ": " + std::to_string(left) +
        "ms left once at revision " + std::to_string(needs.value()) + " (table " +
        std::to_string(fence_->revision().value()) + "), valid=" + (fence_->lease_valid() ? "yes" : "no") +
        ", revoked=" + std::to_string(r.answer.lease.revoked.size()));
  }
}

void SimAgent::refresh_lease() {
  if (synced_) fence_->set_lease_from(leases_);
}

void SimAgent::apply_lease_answer(const Reply& r, bool is_register) {
  // 1. Stop serving what is being handed off, durably, before anything else.
  auto c = changes();
  for (const auto& s : r.answer.lease.revoked) c->revoke_for_release(s);
  commit(c, [this, r, is_register, c] {
    // 2. Only then extend the lease.
    extend_from(r);
    // 3. Confirm the handoffs so the new owners need not wait out the lease.
    send_release(c->to_release());
    if (is_register && !registered_) {
      registered_ = true;
      log("registered via " + r.endpoint.str() + " revision=" + std::to_string(r.answer.lease.revision.value()));
      start_relist();
    }
    check_watch_lag(r.answer.lease.revision, r.answer.lease.worker_revision);
  });
}

void SimAgent::lost_registration(const std::string& reason, bool drop_grants) {
  ++session_gen_;
  registered_ = false;
  synced_ = false;
  relist_inflight_ = false;
  leases_.clear();
  fence_->invalidate_lease();
  stop_watch();
  auto c = changes();
  if (drop_grants) c->drop_all();
  log("registration lost: " + reason + " dropped=" + std::to_string(c->dropped()));
  commit(c, [this] { send_register(); });
}

void SimAgent::start_relist() {
  if (relist_inflight_ || stopping_) return;
  relist_inflight_ = true;
  stop_watch();
  uint64_t gen = session_gen_;
  FleetRequest r;
  r.call = FleetCall::kList;
  call(std::move(r), milliseconds(o_.scaled_ms(10000)), [this, gen](Reply rep) {
    if (gen != session_gen_ || stopping_) return;
    relist_inflight_ = false;
    on_relist(rep);
  });
}

void SimAgent::on_relist(const Reply& r) {
  if (!r.ok()) return schedule_relist();
  relist_attempt_ = 0;
  ++stats_.relists;
  auto c = changes();
  c->apply_listing(r.answer.list);
  Revision rev = r.answer.list.revision;
  commit(c, [this, c, rev] {
    synced_ = true;
    refresh_lease();
    send_release(c->to_release());
    stats_.grants += c->granted();
    log("relisted revision=" + std::to_string(rev.value()) + " held=" + std::to_string(fence_->held_count()));
    start_watch(rev);
  });
}

void SimAgent::schedule_relist() {
  uint64_t gen = session_gen_;
  timer(backoff(relist_attempt_), [this, gen] {
    if (gen != session_gen_ || stopping_) return;
    start_relist();
  });
}

void SimAgent::send_release(std::vector<agent::ShardEpoch> shards, int attempt) {
  if (shards.empty() || stopping_) return;
  ++stats_.releases;
  FleetRequest r;
  r.call = FleetCall::kRelease;
  r.shards = shards;
  call(std::move(r), milliseconds(o_.scaled_ms(5000)), [this, shards, attempt](Reply rep) {
    if (rep.ok() || attempt + 1 >= kReleaseAttempts || stopping_) return;
    // Unconfirmed, the controllers wait our lease out: slower, still safe.
    timer(milliseconds(o_.scaled_ms(200)) * (1 << attempt), [this, shards, attempt] { send_release(shards, attempt + 1); });
  });
}

void SimAgent::check_watch_lag(Revision heartbeat_revision, Revision worker_revision) {
  // As Session::Impl::check_watch_lag: move a watch that stays behind, soon
  // when it lacks an event of ours the lease waits for.
  if (!synced_ || relist_inflight_) {
    watch_lag_.reset();
    return;
  }
  Revision seen = fence_->revision();
  if (watch_lag_ && seen >= watch_lag_->first) watch_lag_.reset();
  if (seen >= heartbeat_revision) return;
  bool own_events_missing = seen < worker_revision;
  if (!watch_lag_) {
    watch_lag_ = {own_events_missing ? worker_revision : heartbeat_revision, clock_.now()};
    return;
  }
  const milliseconds limit(o_.scaled_ms(own_events_missing ? 1000 : 15000));
  if (clock_.now() - watch_lag_->second > limit) {
    log("watch lagging at " + std::to_string(seen.value()) + ": rewatch");
    watch_lag_.reset();
    start_watch(seen);
  }
}

// ---- The watch: one poll at a time stands for the stream ----

void SimAgent::start_watch(Revision from) {
  (void)from;  // every poll asks from the revision applied so far
  stop_watch();
  if (stopping_ || !synced_) return;
  std::vector<NodeId> members = env_.controllers();
  if (members.empty()) return;
  watch_node_ = members[current_ % members.size()];
  poll_watch(watch_gen_);
}

void SimAgent::poll_watch(uint64_t gen) {
  if (gen != watch_gen_ || stopping_ || !synced_) return;
  FleetRequest r;
  r.call = FleetCall::kWatch;
  r.worker = id_;
  r.id = watch_request_ = env_.next_request_id();
  r.after = fence_->revision();
  env_.send(address(), watch_node_, r);
  // A stream that stays silent (its member crashed or was cut off) ends.
  uint64_t id = r.id;
  timer(milliseconds(3 * o_.watch_poll_ms + std::max(o_.scaled_ms(1000), o_.min_call_ms)), [this, gen, id] {
    if (gen == watch_gen_ && watch_request_ == id) on_watch_answer(gen, std::nullopt);
  });
}

void SimAgent::on_watch_answer(uint64_t gen, std::optional<FleetAnswer> a) {
  if (gen != watch_gen_) return;
  watch_request_ = 0;
  if (!a || a->status != FleetStatus::kOk) return on_watch_end(gen, a && a->status == FleetStatus::kGone);
  watch_attempt_ = 0;
  // process_lines(): one durable batch; repeats (at or below what we applied) skipped.
  auto c = changes();
  bool self_dead = false;
  for (const auto& e : a->events) {
    Revision applied = c->revision().value_or(fence_->revision());
    if (e.revision <= applied) continue;
    if (e.kind == agent::WatchEvent::Kind::kWorker && e.worker == id_ && (e.state == "dead" || e.state == "removed")) {
      self_dead = true;
    }
    c->apply_event(e, id_);
  }
  c->advance_revision(a->progress);
  commit(c, [this, c, gen, self_dead] {
    stats_.grants += c->granted();
    send_release(c->to_release());
    if (self_dead) {
      ++stats_.declared_dead;
      return lost_registration("declared_dead_in_watch", /*drop_grants=*/true);
    }
    timer(milliseconds(o_.watch_poll_ms), [this, gen] { poll_watch(gen); });
  });
}

void SimAgent::on_watch_end(uint64_t gen, bool gone) {
  if (gen != watch_gen_ || stopping_) return;
  if (gone) {
    log("watch compacted: relist");
    return start_relist();
  }
  // No answer, or "no leader": another member may serve the stream.
  ++current_;
  schedule_watch_reconnect();
}

void SimAgent::schedule_watch_reconnect() {
  uint64_t gen = ++watch_gen_;
  timer(backoff(watch_attempt_), [this, gen] {
    if (gen != watch_gen_ || stopping_ || !synced_) return;
    start_watch(fence_->revision());
  });
}

}  // namespace tenure::sim
