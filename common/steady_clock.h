#pragma once
// The monotonic clock as plain integers, for durations measured in metrics
// and logs (never for anything replicated: commands carry the leader's time).

#include <chrono>
#include <cstdint>

namespace tenure {

inline uint64_t steady_ns() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

inline uint64_t steady_ms() { return steady_ns() / 1000000; }

}  // namespace tenure
