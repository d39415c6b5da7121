#pragma once
// Time as the agent sees it, injectable for tests. The lease is measured
// on the steady clock only (it never jumps); the wall clock serves just the
// grant-delay metric, compared with the leader's `at_ms` stamp.

#include <atomic>
#include <chrono>
#include <cstdint>

namespace tenure::agent {

using SteadyTime = std::chrono::steady_clock::time_point;

/// A source of time. Thread-safe: called from any thread.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Monotonic time; leases are measured on it.
  virtual SteadyTime now() const = 0;
  /// Milliseconds since the Unix epoch (metrics only, never for safety).
  virtual int64_t wall_ms() const = 0;
};

/// The process's real clocks.
class SystemClock final : public Clock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
  int64_t wall_ms() const override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

/// A clock that moves only when told to (tests). Starts at an arbitrary
/// non-zero instant so "zero" never means "now".
class ManualClock final : public Clock {
 public:
  SteadyTime now() const override { return SteadyTime(std::chrono::nanoseconds(ns_.load())); }
  int64_t wall_ms() const override { return wall_ms_.load(); }
  void advance(std::chrono::nanoseconds d) { ns_ += d.count(); }
  void set_wall_ms(int64_t ms) { wall_ms_ = ms; }

 private:
  std::atomic<int64_t> ns_{int64_t{1000} * 1000 * 1000 * 1000};
  std::atomic<int64_t> wall_ms_{1'700'000'000'000};
};

}  // namespace tenure::agent
