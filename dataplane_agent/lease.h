#pragma once
// Lease arithmetic (docs/fencing.md, "Timing"). The agent's lease runs from
// the moment it SENT its last acknowledged heartbeat (or register): the
// leader counts its own lease from the later moment that heartbeat
// ARRIVED, so measuring from the send time only ever makes ours shorter.

#include <chrono>
#include <map>
#include <optional>

#include "controlplane/types.h"
#include "dataplane_agent/clock.h"

namespace tenure::agent {

/// Bound on relative clock-rate drift: over any real interval, this agent's
/// steady clock advances by at least (1 - kMaxClockDrift) times what the
/// leader's steady clock does. Crystal oscillators drift ~1e-4 and NTP slews
/// CLOCK_MONOTONIC by at most 5e-4; 5% leaves two orders of magnitude for
/// virtualised clocks and is cheap (150 ms of a 3 s lease).
inline constexpr double kMaxClockDrift = 0.05;

/// The least safety margin: covers the window between a fence check and the
/// write it admits becoming durable (one SQLite fsync, scheduler delays).
inline constexpr std::chrono::milliseconds kMinSafetyMargin{100};

/// max(kMinSafetyMargin, heartbeat_interval): the margin grows with the
/// operator's timescale, and costs nothing while heartbeats succeed.
std::chrono::nanoseconds safety_margin(std::chrono::milliseconds heartbeat_interval);

/// How long after sending an acknowledged heartbeat the lease stays valid:
/// lease * (1 - kMaxClockDrift) - safety_margin. May be zero or negative
/// (then the lease is never valid: the config is unsafe, and logged so).
std::chrono::nanoseconds lease_validity(std::chrono::milliseconds lease,
                                        std::chrono::milliseconds heartbeat_interval);

/// The instant the lease lapses: `sent` + lease_validity(...).
SteadyTime lease_deadline(SteadyTime sent, std::chrono::milliseconds lease,
                          std::chrono::milliseconds heartbeat_interval);

/// The lease extensions an agent was granted, each usable only once its
/// grant table reflects every event concerning it up to the revision the
/// answer names (its `worker_revision`). Without that rule a heartbeat
/// answered after a handoff of ours completed on lease expiry (no revoke in
/// the answer any more: the shard is no longer ours) would extend the lease
/// over a grant our lagging watch never told us we lost.
class LeaseLedger {
 public:
  /// An answer to a heartbeat sent at some time allows `deadline` once the
  /// table has reached `needs`.
  void add(SteadyTime deadline, controlplane::Revision needs);
  /// The lease the table at revision `table` may have: the latest deadline
  /// among extensions whose revision it has reached, if any is left.
  std::optional<SteadyTime> deadline(controlplane::Revision table) const;
  /// Drops extensions that ran out by `now` (they can only shorten nothing).
  void forget_expired(SteadyTime now);
  void clear() { by_revision_.clear(); }
  size_t size() const { return by_revision_.size(); }

 private:
  /// Kept small: an extension is dropped once one reachable no later has a
  /// later deadline, and at most kMaxPending are kept (dropping one only
  /// shortens the lease).
  static constexpr size_t kMaxPending = 32;
  std::map<controlplane::Revision, SteadyTime> by_revision_;
};

}  // namespace tenure::agent
