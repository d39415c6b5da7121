#pragma once
// The leader's decisions over the fleet, as pure logic (no clock, no I/O):
// worker leases, failover, handoffs the old owner never confirmed, and the
// placement loop. The controller drives it with real time (controller/
// supervisor.cc); the simulator drives the same code with virtual time.
//
// Leases are soft state (DESIGN.md): only the decisions become commands.
//   - A worker is declared dead once this leader has heard nothing from it
//     for lease_ms, counted from the later of its last heartbeat's arrival
//     and this leader's start (a new leader gives everyone a full lease).
//   - A handoff the old owner does not confirm completes once lease_ms has
//     passed since this leader saw its drain begin (the revoke): by then the
//     old owner has either seen the revoke in a heartbeat answer or let its
//     lease lapse. A move whose target prepares first asks the source to
//     drain once the target says it is prepared, or after prepare_timeout_ms.
//   - A deletion takes a shard from its owner at once (its epoch moves on),
//     but the owner may serve it until its lease lapses; so a shard created
//     again under the same id is not granted until lease_ms after this
//     leader saw the deletion (a new leader holds every unassigned shard
//     that had an owner once, for a full lease).
// docs/fencing.md has the full timing argument.

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "controlplane/command_split.h"
#include "controlplane/placement.h"
#include "controlplane/state_machine.h"

namespace tenure::controlplane {

/// Deliberately planted bugs of the leader's fleet decisions, in the
/// production code paths (as consensus::TestingKnobs for the Raft core).
/// They exist only so that the simulator (`tenure-sim --fleet --bug NAME`)
/// can prove its fleet checkers catch them; no config key or flag of the
/// controller reaches them.
struct FleetTestingKnobs {
  /// A new leader counts every worker's lease as half gone at its election
  /// (no full lease after an election; docs/fencing.md, Claim 1).
  bool no_full_lease = false;
  /// Grant a lease to a worker whose DeclareDead is in flight (undoes d5bd9e2).
  bool lease_while_declaring_dead = false;

  bool any() const { return no_full_lease || lease_while_declaring_dead; }
};

/// The fleet planted bugs' names, as `tenure-sim --fleet --bug NAME` takes them.
const std::vector<std::string>& fleet_planted_bug_names();
/// Switches on the named bug; false for a name that is not one of them.
bool enable_fleet_planted_bug(FleetTestingKnobs& knobs, const std::string& name);

struct FleetPolicyOptions {
  uint64_t lease_ms = 3000;
  /// A planned move's target that has not said it is prepared after this
  /// long (dead, partitioned, its program stuck) is prepared enough: the
  /// source is asked to drain. Above the agents' app.prepare_timeout_ms.
  uint64_t prepare_timeout_ms = 10000;
  uint32_t max_concurrent_moves = 64;
  uint64_t join_delay_ms = 0;
  uint64_t check_interval_ms = 50;
  uint64_t placement_interval_ms = 2000;      ///< a pass at least this often
  uint64_t placement_min_interval_ms = 200;   ///< and after changes, at most this often
  size_t max_placements_per_command = 4000;
  /// Unassigned shards one placement pass grants at most (PlacementOptions).
  size_t max_assignments_per_pass = PlacementOptions().max_assignments_per_pass;
  /// Shards of dead workers planned by one pass at most (PlacementOptions).
  size_t max_failovers_per_pass = PlacementOptions().max_failovers_per_pass;
  /// The bytes a command's list may take (command_split.h); the simulator
  /// draws smaller values so that few shards make many pieces.
  size_t max_command_list_bytes = kCommandListBudgetBytes;
  /// Planted bugs, for the simulator only.
  FleetTestingKnobs testing;
};

struct HeartbeatAnswer {
  enum class Status { kOk, kUnknown, kDead } status = Status::kOk;
  Revision revision;
  /// The agent may extend its lease from this answer only once its grant
  /// table reflects every event up to here (StateMachine::worker_events_revision):
  /// a grant taken from it without a revoke it saw (a handoff completed on
  /// lease expiry while its watch lagged) is then gone from its table.
  Revision worker_revision;
  /// Shards this worker must drain and release (being handed off from it;
  /// not those whose target still prepares: it serves them meanwhile).
  std::vector<std::pair<ShardId, Epoch>> revoked;
};

/// A command the leader should propose, and what it is about. A large
/// operation is several decisions, one bounded command each
/// (command_split.h): a declaration of death is a kDeclareDead (its first
/// placements) and kFailover decisions for the rest, proposed together.
struct Decision {
  enum class Kind { kDeclareDead, kFailover, kExpireHandoffs, kPlace, kEndPrepares } kind;
  uint64_t id = 0;  ///< hand back to finished()
  Command command;
  WorkerId worker;           ///< kDeclareDead, kFailover, kExpireHandoffs (source), kEndPrepares (target)
  size_t shards = 0;         ///< shards concerned (kDeclareDead: all the worker held)
};

/// A handoff this leader saw finish (for metrics).
struct FinishedHandoff {
  ShardId shard;
  std::string reason;
  uint64_t duration_ms;
  /// Its phases as the shard's history records them (the commands' clocks).
  uint64_t prepare_ms = 0;
  uint64_t drain_ms = 0;
  bool prepared = false;  ///< it had a prepare phase
};

class FleetPolicy {
 public:
  explicit FleetPolicy(FleetPolicyOptions options) : options_(options) {}

  /// This member just became leader (or changed term) at `now_ms`.
  void start_leading(const StateMachine& sm, uint64_t now_ms);
  void stop_leading() { leading_ = false; }
  bool leading() const { return leading_; }
  /// This leader could not listen for `stalled_ms` (its strand stalled):
  /// every worker's lease is held that much longer. Heartbeats sent
  /// meanwhile waited in this member's queues, not the workers'; counting
  /// that time against them turned an overloaded leader's stall into
  /// thousands of live workers declared dead, whose registering again
  /// loaded it more (bench/fleet_load). Safe: only the controller's
  /// decision comes later; an agent still stops serving on its own clock,
  /// from its heartbeat's send, before its shards can be granted elsewhere.
  void hold_leases(uint64_t stalled_ms, uint64_t now_ms);
  /// Workers whose last heartbeat this leader keeps (tests): a removed
  /// worker's goes at the next lease check.
  size_t workers_heard() const { return heard_.size(); }
  /// How long `shard` (unassigned) must still wait before anyone may be
  /// granted it: 0 once it may be; while its deletion is less than a worker
  /// lease old (its last owner may still be serving it), or, after an
  /// election, while any shard once owned is held. Placement and manual
  /// moves both obey it (docs/api.md, "Deleting a shard").
  uint64_t grant_hold_ms(const StateMachine& sm, const ShardId& shard, uint64_t now_ms);

  /// A heartbeat or registration arrived at `now_ms`.
  HeartbeatAnswer heartbeat(const StateMachine& sm, const WorkerId& worker, uint64_t now_ms);
  /// The decisions due now. `wall_ms` is the leader's wall clock (join delay).
  std::vector<Decision> tick(const StateMachine& sm, uint64_t now_ms, uint64_t wall_ms);
  /// The proposal for a decision was applied or failed: it may be decided again.
  void finished(const Decision& d);
  /// After entries were applied: the handoffs that completed meanwhile.
  std::vector<FinishedHandoff> on_applied(const StateMachine& sm, uint64_t now_ms);

  /// The placement this leader would carry out now, and its commands.
  Plan plan(const StateMachine& sm, uint64_t wall_ms) const;
  std::vector<Command> plan_commands(const Plan& plan) const;
  const FleetPolicyOptions& options() const { return options_; }

 private:
  void check_leases(const StateMachine& sm, uint64_t now_ms, uint64_t wall_ms, std::vector<Decision>& out);
  void expire_handoffs(const StateMachine& sm, uint64_t now_ms, std::vector<Decision>& out);
  void end_overdue_prepares(const StateMachine& sm, uint64_t now_ms, std::vector<Decision>& out);
  /// Notes when this leader first saw each handoff in its phase.
  void track_phases(const StateMachine& sm, uint64_t now_ms);
  /// Dead workers that still hold shards (a failover cut short by a leader
  /// change or a refused piece): their shards are planned and moved again.
  void continue_failovers(const StateMachine& sm, uint64_t now_ms, uint64_t wall_ms, std::vector<Decision>& out);
  /// The failover of `dead` as decisions (declare: the first is DeclareDead).
  void add_failover(const StateMachine& sm, const WorkerId& dead, std::vector<Placement> plan, bool declare,
                    ChangeReason reason, std::vector<Decision>& out);
  void maybe_place(const StateMachine& sm, uint64_t now_ms, uint64_t wall_ms, std::vector<Decision>& out);
  PlacementOptions placement_options(uint64_t wall_ms) const;
  void note_deletions(const StateMachine& sm, uint64_t now_ms);

  FleetPolicyOptions options_;
  bool leading_ = false;
  uint64_t next_id_ = 1;
  /// When this leader last heard each worker, and the worker's since_ms
  /// then: a worker that died and registered again is a new incarnation
  /// and gets a fresh lease. Ordered as StateMachine::workers(), so that
  /// check_leases walks both together instead of looking each worker up.
  struct Heard {
    uint64_t at_ms = 0;
    uint64_t since_ms = 0;
  };
  std::map<WorkerId, Heard> heard_;
  /// What check_leases last walked: the state's revision, and the oldest
  /// heartbeat time it kept of a worker whose lease can run out. Until
  /// either may have changed (lease_walk_due_), no walk finds anything.
  Revision walked_revision_;
  uint64_t oldest_heard_ms_ = 0;
  bool lease_walk_due_ = true;
  /// Handoffs by when this leader saw their drain begin (or began leading).
  std::map<ShardId, uint64_t> handoff_seen_ms_;
  /// Handoffs still preparing, by when this leader saw them begin.
  std::map<ShardId, uint64_t> prepare_seen_ms_;
  std::set<ShardId> ending_prepares_;  ///< EndPrepares(expired) in flight
  std::set<WorkerId> declaring_dead_;
  /// Decisions in flight that move shards of dead workers (a DeclareDead
  /// with placements, a piece of a failover). One slice at a time: the
  /// next is planned once these are applied, so a mass failover goes at
  /// the pace the members apply it, not at the pace the leader can plan.
  size_t moving_dead_shards_ = 0;
  uint64_t last_continue_ms_ = 0;  ///< the last continue_failovers plan
  /// What continue_failovers last walked, as walked_revision_ for leases.
  Revision failover_walked_revision_;
  bool failover_walk_due_ = true;
  std::set<ShardId> expiring_;
  /// Shards not to be placed before the time given (deleted, maybe re-created).
  std::map<ShardId, uint64_t> held_until_ms_;
  /// Until then (a lease after this leader's start) no unassigned shard
  /// that had an owner once is placed: deletions applied before it led, or
  /// compacted out of the events before it noted them, are unknown to it.
  uint64_t hold_formerly_owned_until_ms_ = 0;
  bool holding_formerly_owned_ = false;
  bool hold_expired_ = false;  ///< a hold ran out: place again without waiting
  Revision events_seen_;       ///< deletions noted up to here
  size_t placing_ = 0;  ///< placement commands in flight
  uint64_t last_check_ms_ = 0;
  uint64_t last_place_ms_ = 0;
  Revision last_place_revision_;
  bool placed_once_ = false;
};

}  // namespace tenure::controlplane
