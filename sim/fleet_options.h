#pragma once
// What a fleet-mode run (`tenure-sim --fleet`) draws from its seed on top of
// the Raft options: the agents, the controllers' policy settings, the
// operator's activity and the agents' faults. Drawn from a stream of its
// own, so `--fleet` leaves every Raft option of a seed as it was.
//
// Agent timers are the real agent's constants scaled by lease_ms / 3000 (the
// real default lease), so a 600 ms lease behaves like a 3 s one, five times
// faster. The lease arithmetic itself is never scaled: it is the agent's own
// (dataplane_agent/lease.h), margin and drift bound included.

#include <cstdint>
#include <string>
#include <vector>

namespace tenure::sim {

struct FleetOptions {
  int agents = 4;
  int zones = 1;
  int initial_shards = 8;

  // The controllers' FleetPolicyOptions and state machine limits.
  uint64_t lease_ms = 1000;
  uint64_t check_interval_ms = 50;
  uint64_t placement_interval_ms = 2000;
  uint64_t placement_min_interval_ms = 200;
  uint32_t max_concurrent_moves = 64;
  uint64_t join_delay_ms = 0;
  size_t max_placements_per_command = 4000;
  /// FleetPolicyOptions::max_command_list_bytes (and the creates' and the
  /// leaves' pieces): small values split few shards into many pieces.
  size_t max_command_list_bytes = 256 << 10;
  /// Characters appended to every shard id ("s17-xxx..."): long ids, as
  /// operators use them, fill the pieces sooner.
  int shard_id_pad = 0;
  /// A proposal not applied within this fails (RaftNode's request timeout).
  uint64_t request_timeout_ms = 1600;
  /// controlplane::Limits::events_kept: small values make watches fall behind (410).
  size_t events_kept = 200000;

  // Agents.
  uint64_t heartbeat_ms = 100;
  /// How often a watch is polled (a stream's push latency).
  uint64_t watch_poll_ms = 10;
  /// The least time an agent waits for an answer: scaled timeouts stay
  /// above the network's round trips (set from the Raft options' delays),
  /// as the real ones (500 ms and more) are far above a LAN's.
  uint64_t min_call_ms = 0;
  /// Agent clocks run at rates in [lo, hi] of real time, where lo is exactly
  /// (1 - kMaxClockDrift) times the fastest possible controller clock:
  /// the drift bound the lease relies on, and no more.
  double agent_rate_spread = 0.05;
  /// Probability that an agent's clock runs exactly at the bound.
  double rate_at_bound = 0.3;
  /// Clocks as far apart as the lease allows (swarm draw): every member
  /// ticks at the fastest rate the run's skew allows and every agent at
  /// the drift bound below it. Leases are then as tight as the margin makes
  /// them, and a lease computed without it (fleet-lease-no-margin) outlives
  /// the controllers' view by the whole drift allowance.
  bool clocks_at_bound = false;
  /// Durable writes of grants (the agent's SQLite fsync) take this long.
  int64_t fsync_min_us = 50;
  int64_t fsync_max_us = 2000;
  /// Probability that a durable write stalls for up to stall_max_ms.
  double fsync_stall = 0;
  uint64_t stall_max_ms = 0;

  // Agent faults (0: never): mean gaps and durations in ms.
  uint64_t pause_gap_ms = 0;   ///< SIGSTOP ... SIGCONT
  uint64_t pause_max_ms = 0;
  uint64_t crash_gap_ms = 0;   ///< SIGKILL, restart later
  uint64_t down_max_ms = 0;
  uint64_t leave_gap_ms = 0;   ///< SIGTERM: graceful leave, restart later
  uint64_t cut_gap_ms = 0;     ///< an agent cut off from some or all controllers
  uint64_t cut_max_ms = 0;
  /// The controllers' answers to an agent lost while its requests still
  /// arrive (a one-way fault, for about a lease): the controllers hear its
  /// heartbeats and keep it alive, it hears nothing, its lease lapses, and
  /// a handoff from it completes on expiry. When the answers come back, a
  /// heartbeat's may arrive before its watch has caught up (what the lease's
  /// worker_revision guards).
  uint64_t mute_gap_ms = 0;
  /// An agent cut off from every controller both ways for one to two
  /// leases while its program keeps writing: it must stop at its lease's
  /// end (with the drift margin) before the controllers fail it over.
  uint64_t isolate_gap_ms = 0;

  /// Unassigned shards one placement pass grants at most.
  size_t max_assignments_per_pass = 20000;
  /// Shards of dead workers one failover pass plans at most.
  size_t max_failovers_per_pass = 50000;

  /// The data-plane program in the loop (CONTRACT.md, "Agent and program"):
  /// with `program`, agents drain a planned move's shard through a program
  /// that answers after up to program_drain_max_ms, or never (probability
  /// program_never), bounded by drain_timeout_ms and by the lease in force
  /// when the move was seen (the session core and the fence enforce that).
  /// The program also prepares a move's target: it answers after up to
  /// program_prepare_max_ms (or never, as for drains), bounded by the
  /// agent's prepare_timeout_ms; the leader drains the source anyway after
  /// its own controller_prepare_timeout_ms.
  bool program = false;
  uint64_t program_drain_max_ms = 0;
  double program_never = 0;
  uint64_t drain_timeout_ms = 0;
  uint64_t program_prepare_max_ms = 0;
  uint64_t prepare_timeout_ms = 0;
  uint64_t controller_prepare_timeout_ms = 10000;

  // The operator (0: never).
  uint64_t create_gap_ms = 0;
  uint64_t delete_gap_ms = 0;
  uint64_t drain_gap_ms = 0;
  uint64_t move_gap_ms = 0;

  /// A planted fleet bug (fleet_bug_names()), empty for none.
  std::string bug;

  /// Scales one of the real agent's constants (tuned for a 3 s lease).
  uint64_t scaled_ms(uint64_t real_ms) const;
  /// " agents=... lease_ms=..." for the options line.
  std::string describe() const;
};

/// Draws a fleet run's options from its seed; `min_call_ms` is the least an
/// agent's call may take on this run's network (leases are drawn long enough).
FleetOptions draw_fleet_options(uint64_t seed, uint64_t min_call_ms);

/// The planted bugs of the fleet mode, switched on by `--fleet --bug NAME`.
/// All four are testing knobs of production code, never set by a config key
/// or flag of the programs: the controller-side ones (fleet-no-full-lease,
/// fleet-lease-while-declaring-dead) of the leader services
/// (controlplane::FleetTestingKnobs), which the simulated members run; the
/// agent-side ones of the session core (agent::SessionKnobs,
/// dataplane_agent/session_core.h), which the simulated agents run.
///   fleet-lease-no-margin:  the agent's lease is send time + lease, without
///                           the drift factor or the margin (SessionKnobs).
///   fleet-no-full-lease:    a new leader counts every worker's lease as half
///                           gone at its election (no full lease after an
///                           election).
///   fleet-lease-while-declaring-dead:  the leader grants a lease to a worker
///                           whose DeclareDead is in flight (the bug d5bd9e2
///                           fixed in FleetPolicy, put back by its knob).
///   fleet-lease-ignores-worker-revision:  the agent extends its lease from
///                           any answer at once, whether or not its table
///                           has reached the answer's worker revision (the
///                           stale-grant hole the LeaseLedger closed;
///                           SessionKnobs).
const std::vector<std::string>& fleet_bug_names();
bool is_fleet_bug(const std::string& name);

}  // namespace tenure::sim
