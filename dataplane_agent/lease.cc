#include "dataplane_agent/lease.h"

#include <algorithm>

namespace tenure::agent {

std::chrono::nanoseconds safety_margin(std::chrono::milliseconds heartbeat_interval) {
  return std::max<std::chrono::nanoseconds>(kMinSafetyMargin, heartbeat_interval);
}

std::chrono::nanoseconds lease_validity(std::chrono::milliseconds lease,
                                        std::chrono::milliseconds heartbeat_interval) {
  // Integer arithmetic in nanoseconds, the drift taken in parts per million,
  // so the result is exact for whole milliseconds.
  constexpr int64_t kScale = 1'000'000;
  constexpr int64_t kKeep = kScale - static_cast<int64_t>(kMaxClockDrift * kScale + 0.5);
  auto lease_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(lease).count();
  auto scaled = std::chrono::nanoseconds(lease_ns / kScale * kKeep + (lease_ns % kScale) * kKeep / kScale);
  return scaled - safety_margin(heartbeat_interval);
}

SteadyTime lease_deadline(SteadyTime sent, std::chrono::milliseconds lease,
                          std::chrono::milliseconds heartbeat_interval) {
  return sent + lease_validity(lease, heartbeat_interval);
}

void LeaseLedger::add(SteadyTime deadline, controlplane::Revision needs) {
  auto [it, fresh] = by_revision_.try_emplace(needs, deadline);
  if (!fresh && it->second < deadline) it->second = deadline;
  // Keep deadlines increasing with the revision: an extension needing a
  // later revision but ending no later is worth nothing.
  std::optional<SteadyTime> best;
  for (auto e = by_revision_.begin(); e != by_revision_.end();) {
    if (best && e->second <= *best) {
      e = by_revision_.erase(e);
    } else {
      best = e->second;
      ++e;
    }
  }
  while (by_revision_.size() > kMaxPending) by_revision_.erase(by_revision_.begin());
}

std::optional<SteadyTime> LeaseLedger::deadline(controlplane::Revision table) const {
  // Deadlines increase with the revision: the last reachable one is the best.
  auto it = by_revision_.upper_bound(table);
  if (it == by_revision_.begin()) return std::nullopt;
  return std::prev(it)->second;
}

void LeaseLedger::forget_expired(SteadyTime now) {
  for (auto e = by_revision_.begin(); e != by_revision_.end();) {
    e = e->second <= now ? by_revision_.erase(e) : std::next(e);
  }
}

}  // namespace tenure::agent
