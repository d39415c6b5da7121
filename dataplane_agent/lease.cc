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

}  // namespace tenure::agent
