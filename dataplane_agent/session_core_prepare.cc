// The prepare half of a planned move at its target (CONTRACT.md, "Agent and
// program"): the watch says a shard is coming here; the program is asked to
// prepare it while its source still serves; once it answered (or the
// agent's prepare timeout ran out) the controllers hear "prepared", in one
// call for every prepare that ended together, and only then ask the source
// to drain. Nothing here touches the fence: a prepared shard is not granted.
#include "dataplane_agent/session_core.h"

namespace tenure::agent {

void SessionCore::start_prepares(const std::vector<ShardEpoch>& prepares) {
  for (const auto& s : prepares) {
    // Asked already (a repeat after a reconnect), or granted already.
    auto [it, fresh] = preparing_.try_emplace(s.shard.str(), s.epoch);
    if (!fresh && it->second >= s.epoch) continue;
    const ShardRecord* rec = fence_.table_for_planning().find(s.shard.str());
    if (rec && rec->max_epoch >= s.epoch) {
      preparing_.erase(it);
      continue;
    }
    it->second = s.epoch;
    ++stats_.prepares;
    if (io_.logging(LogLevel::kInfo)) {
      log(LogLevel::kInfo, "event=prepare shard=" + s.shard.str() + " epoch=" + std::to_string(s.epoch.value()));
    }
    io_.program_prepare(s, [this, s] { finish_prepare(s); });
  }
}

void SessionCore::finish_prepare(const ShardEpoch& s) {
  auto it = preparing_.find(s.shard.str());
  if (it == preparing_.end() || it->second != s.epoch || failed_) return;
  preparing_.erase(it);
  finished_prepares_.push_back(s);
  io_.after(t_.prepare_abandon_after, [this, s] { check_prepare_abandoned(s); });
  if (prepare_flush_scheduled_) return;
  prepare_flush_scheduled_ = true;
  // A rebalance prepares many shards here at once: one call for those
  // that end together.
  io_.after(std::chrono::nanoseconds(0), [this] { flush_prepares(); });
}

void SessionCore::flush_prepares() {
  prepare_flush_scheduled_ = false;
  if (failed_ || finished_prepares_.empty()) return;
  std::vector<ShardEpoch> done = std::move(finished_prepares_);
  finished_prepares_.clear();
  send_shards(CallKind::kPrepared, std::move(done), 0);
}

void SessionCore::check_prepare_abandoned(const ShardEpoch& s) {
  if (stopping_ || preparing_.count(s.shard.str())) return;  // being prepared again
  const ShardRecord* rec = fence_.table_for_planning().find(s.shard.str());
  if (rec && rec->max_epoch >= s.epoch) return;  // it came (and maybe went again)
  log(LogLevel::kInfo, "event=prepare_abandoned shard=" + s.shard.str() + " epoch=" + std::to_string(s.epoch.value()));
  io_.program_abandon(s);
}

}  // namespace tenure::agent
