// The watch half of the session core: a stream of this worker's events
// from the revision the table reached, applied as one durable batch per
// delivery; a compacted stream (410), an error line or an undecodable line
// means a full re-list (the events in between may be gone); an ended stream
// reconnects with jittered backoff, on another member when it got no answer.
#include "dataplane_agent/session_core.h"

namespace tenure::agent {

void SessionCore::start_watch(Revision from) {
  stop_watch();
  if (stopping_ || !synced_) return;
  watch_open_ = true;
  io_.open_watch(++watch_gen_, from);
}

void SessionCore::stop_watch() {
  ++watch_gen_;
  if (watch_open_) io_.close_watch();
  watch_open_ = false;
}

void SessionCore::on_watch_open(uint64_t gen) {
  if (gen != watch_gen_) return;
  watch_backoff_.reset();
}

void SessionCore::on_watch_batch(uint64_t gen, WatchBatch batch) {
  if (gen != watch_gen_ || stopping_) return;
  process_events(gen, std::move(batch));
}

void SessionCore::process_events(uint64_t gen, WatchBatch batch) {
  auto c = changes();
  std::vector<int64_t> grant_at_ms;
  std::vector<ShardEpoch> prepares;
  bool relist = false;
  bool self_dead = false;
  for (const WatchEvent& e : batch.events) {
    if (e.kind == WatchEvent::Kind::kError) {
      log(LogLevel::kWarn, "event=watch_error error=" + e.error + " action=relist");
      relist = true;
      break;
    }
    // Events at or below what we have applied are repeats (a reconnect).
    Revision applied = c->revision().value_or(fence_.revision());
    if (e.kind != WatchEvent::Kind::kProgress && e.revision <= applied) continue;
    if (e.kind == WatchEvent::Kind::kGrant && e.worker == config_.worker && e.at_ms > 0) grant_at_ms.push_back(e.at_ms);
    if (e.kind == WatchEvent::Kind::kPrepare && e.worker == config_.worker && io_.program_drains()) {
      prepares.push_back({e.shard, e.epoch});
    }
    if (e.kind == WatchEvent::Kind::kWorker && e.worker == config_.worker &&
        (e.state == "dead" || e.state == "removed")) {
      self_dead = true;
    }
    c->apply_event(e, config_.worker);
  }
  if (!relist && !batch.undecodable.empty()) {
    log(LogLevel::kWarn, "event=watch_bad_line problem=\"" + batch.undecodable + "\" action=relist");
    relist = true;
  }
  bool overflow = batch.overflow;
  commit(c, [this, c, gen, grant_at_ms = std::move(grant_at_ms), prepares = std::move(prepares), relist, self_dead,
             overflow] {
    if (!grant_at_ms.empty()) {
      int64_t now_ms = clock_.wall_ms();
      for (int64_t at : grant_at_ms) io_.grant_delay(static_cast<double>(now_ms - at) / 1000.0);
    }
    send_release(c->to_release());
    start_prepares(prepares);
    if (self_dead) {
      ++stats_.declared_dead;
      return lost_registration("declared_dead_in_watch", /*drop_grants=*/true);
    }
    if (relist) return start_relist();
    if (overflow && gen == watch_gen_) {
      log(LogLevel::kWarn, "event=watch_line_too_long action=relist");
      start_relist();
    }
  });
}

void SessionCore::on_watch_end(uint64_t gen, WatchEnd why, int http_status) {
  if (gen != watch_gen_ || stopping_) return;
  watch_open_ = false;
  if (why == WatchEnd::kCompacted) {
    log(LogLevel::kWarn, "event=watch_compacted revision=" + std::to_string(fence_.revision().value()) +
                             " action=relist");
    return start_relist();
  }
  // No answer, or "no leader": another member may serve the stream.
  if (why == WatchEnd::kUnavailable) io_.rotate();
  log(LogLevel::kWarn, "event=watch_ended status=" + std::to_string(http_status) +
                           (why == WatchEnd::kUnavailable ? " unavailable=true" : "") + " action=reconnect");
  schedule_watch_reconnect();
}

void SessionCore::schedule_watch_reconnect() {
  uint64_t gen = ++watch_gen_;
  io_.after(watch_backoff_.next(io_), [this, gen] {
    if (gen != watch_gen_ || stopping_ || !synced_) return;
    io_.watch_reconnect();
    start_watch(fence_.revision());
  });
}

}  // namespace tenure::agent
