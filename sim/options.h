#pragma once
// Everything a simulated run depends on, drawn from its seed. The whole set
// prints as one `key=value` line before the run starts, so a failure can be
// read and replayed (`tenure-sim --seed S --nodes N --ticks T [--bug B]`).

#include <cstdint>
#include <optional>
#include <string>

#include "sim/fleet_options.h"

namespace tenure::sim {

/// Virtual microseconds per nominal tick. A node with clock skew ticks a
/// little faster or slower than this.
inline constexpr int64_t kTickUs = 10'000;

/// What the command line fixes instead of drawing it.
struct Overrides {
  std::optional<int> nodes;     ///< initial voters, 3..7
  std::optional<int64_t> ticks; ///< length of the safety phase in nominal ticks
  std::string bug;              ///< planted bug name, empty for none
  bool fleet = false;           ///< fleet mode (--fleet)
  std::optional<bool> probe_leader;  ///< --probe-leader (default: on, as in production)
};

struct RunOptions {
  uint64_t seed = 0;
  int nodes = 3;
  int64_t ticks = 2000;
  std::string bug;

  // Raft configuration (identical on every member).
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  size_t max_inflight = 256;
  size_t max_bytes_per_msg = 1 << 20;

  // Network: each message is lost with `drop`, doubled with `dup`, and
  // delayed uniformly in [delay_min_us, delay_max_us], or with `slow` up to
  // slow_max_us, which reorders it past later ones.
  double drop = 0;
  double dup = 0;
  double slow = 0;
  int64_t delay_min_us = 100;
  int64_t delay_max_us = 1000;
  int64_t slow_max_us = 1000;

  // Partitions come every ~partition_gap ticks (0: never) and last ~partition_len.
  int64_t partition_gap_ticks = 0;
  int64_t partition_len_ticks = 0;
  /// Probability that a partition isolates the current leader.
  double partition_leader = 0;

  // Crashes come every ~crash_gap ticks (0: never); a node stays down ~down ticks.
  int64_t crash_gap_ticks = 0;
  int64_t down_ticks = 0;
  /// Probability that the victim is the current leader.
  double crash_leader = 0;
  /// Probability that the crash strikes inside a Ready that must be persisted
  /// (after its early messages left, before or after the fsync).
  double torn = 0;
  /// Nodes tick at a rate within [1 - skew, 1 + skew] of the nominal one.
  double skew = 0;

  // Storage: compact after this many applied entries, keeping `keep_entries`.
  int compact_every = 100;
  int keep_entries = 5;

  // Membership churn every ~churn_gap ticks, transfers every ~transfer_gap (0: never).
  int64_t churn_gap_ticks = 0;
  int64_t transfer_gap_ticks = 0;

  // Clients.
  int clients = 2;
  double read_ratio = 0.5;
  /// Probability that a read goes to a random member rather than the leader.
  double follower_reads = 0.3;
  int64_t client_timeout_ticks = 40;
  int64_t think_ticks = 3;
  int keys = 3;
  /// Padding of written values, so entries are sometimes larger than a message's byte budget.
  int value_bytes = 8;
  /// Whether this run drew the "storm" profile (frequent, short leader faults).
  bool storm = false;
  /// Probability that a newly elected leader is crashed or cut off within a
  /// tick or two, before its first entries spread (orphaned entries).
  double react_leader = 0;
  /// Probability that a leader is cut off right after its commit index moved,
  /// before the followers learn of it.
  double react_commit = 0;
  /// Probability that a message still in flight when its sender crashes is
  /// lost with it (a machine crash takes its unsent buffers along).
  double crash_loses_inflight = 0;
  /// Whether an fsync takes time (in [fsync_min_us, fsync_max_us]) while the
  /// member keeps stepping messages, rather than completing in the same
  /// instant (still an event of its own, after the step that cut it).
  bool async_fsync = false;
  int64_t fsync_min_us = 0;
  int64_t fsync_max_us = 0;
  /// Removed members keep running (never shut down) instead of being
  /// decommissioned once their removal committed.
  bool keep_removed = false;
  /// The leader promotes caught-up learners itself, as the controller does
  /// (besides the simulator's own churn, which promotes some early).
  bool promote_learners = false;
  /// Probability that a member's fsync stalls (a disk's hiccup) for up to
  /// three election timeouts while the member keeps stepping and ticking:
  /// the window in which a newer leader replaces entries being persisted.
  double fsync_stall = 0;
  /// The core's max_committed_bytes_per_ready: 0 (none), or so small that a
  /// backlog is applied over many turns of the event loop, with ticks,
  /// messages and crashes in between (the production bound is 1 MiB).
  size_t apply_bytes_per_ready = 0;
  /// The core's max_resident_log_bytes: 0 keeps every payload in memory;
  /// otherwise applied payloads past it are released and read back from the
  /// durable store (the production bound is 8 MiB).
  size_t resident_log_bytes = 0;
  /// The driver's max_apply_entries_per_turn: 0 (a Ready's entries in one
  /// turn), or 1-3, so that a Ready's entries are applied over several
  /// turns with ticks, messages and crashes in between, as the controller's
  /// time budget per turn does (DriverOptions::max_apply_ms_per_turn).
  size_t apply_entries_per_turn = 0;
  /// The driver's read_lease_ms, in a member's own clock (0: every read
  /// takes a heartbeat round). When drawn, at most 0.9 of what the skew
  /// allows: a leader whose clock runs slowest must see its lease end before
  /// a member whose ticks come fastest stops refusing votes, (election - 1)
  /// ticks after it heard the round.
  uint32_t read_lease_ms = 0;
  /// Pauses come every ~pause_gap ticks (0: never): a member stops dead for
  /// 1 to 3 election timeouts, as a stopped process, a long GC or a VM
  /// migration does, and then takes what came meanwhile within a tick, in
  /// any order (Simulator::run_on; its steady clock went on). The leader with probability pause_leader. The
  /// lease's test: a leader that resumes must not trust a lease its clock
  /// says is over, nor one that lasted past the others' refusals.
  int64_t pause_gap_ticks = 0;
  double pause_leader = 0;
  /// Followers dial a silent leader and campaign early when it is down
  /// (DriverOptions::probe_silent_leader); not drawn: production does it.
  bool probe_leader = true;
  /// Results crossing from the persist thread (or a snapshot's child) back
  /// to the driver's serial context wait up to this long (a busy strand).
  int64_t handoff_max_us = 0;

  /// Fleet mode: the controller's state machine and leader policy, and agents.
  bool fleet = false;
  FleetOptions fleet_options;

  /// The `seed=... key=value ...` line printed before the run.
  std::string describe() const;
  /// The command line that replays this run.
  std::string replay() const;
};

/// Draws every option of a run from its seed; `o` fixes some of them.
/// The draw sequence does not depend on `o`, so overriding one option
/// leaves the others as they were.
RunOptions draw_options(uint64_t seed, const Overrides& o);

}  // namespace tenure::sim
