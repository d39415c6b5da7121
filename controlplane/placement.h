#pragma once
// Placement: who should own what. Pure and deterministic, run by the leader
// on its applied state; its output becomes commands proposed through Raft.
//
// Goals, in order: every shard has a live owner when one exists; each
// eligible worker holds its capacity-weighted fair share, rounded so every
// worker is within one shard of it (largest-remainder quotas); zones are
// filled in proportion to their capacity; and nothing moves that balance
// does not require (minimal movement).

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "controlplane/state_machine.h"

namespace tenure::controlplane {

struct PlacementOptions {
  /// Handoffs allowed in flight at once (drain and rebalance; not failures).
  uint32_t max_concurrent_moves = 64;
  /// A worker that joined or came back less than this ago gets no shards yet.
  uint64_t join_delay_ms = 0;
  /// The leader's wall clock, compared with Worker::since_ms for join_delay.
  uint64_t now_ms = 0;
  /// Unassigned shards not to be granted yet (FleetPolicy: re-created shards
  /// whose previous owner may still be serving them); may be null.
  const std::map<ShardId, uint64_t>* held = nullptr;
  /// Grant no unassigned shard that had an owner once (epoch > 0): a new
  /// leader cannot know which of them were deleted and created again lately.
  bool hold_formerly_owned = false;
  /// Unassigned shards granted by one plan at most; the rest wait for the
  /// next (the leader plans again once these are applied).
  size_t max_assignments_per_pass = 20000;
  /// Shards of dead workers given new owners by one failover plan at most;
  /// the rest stay with their dead owner for the next pass. Planning costs
  /// ~2 us a shard on the leader's strand (a lookup in the million-shard
  /// map each): half a million at once held it 1.3 s, past the election
  /// timeout, and every new leader was deposed as it planned the same
  /// failover (history_bench, 1,000,000 shards, half the workers gone).
  size_t max_failovers_per_pass = 25000;
};

struct PlannedMove {
  ShardId shard;
  WorkerId from;  ///< empty: the shard is unassigned
  WorkerId to;
  Epoch epoch;    ///< the shard's epoch when planned
  ChangeReason reason;
};

struct Plan {
  std::vector<PlannedMove> assignments;  ///< unassigned shards to grant now
  std::vector<PlannedMove> moves;        ///< graceful handoffs to begin (drain, rebalance)
};

/// Plans assignments and handoffs for the current state.
Plan plan_placement(const StateMachine& sm, const PlacementOptions& options);

/// The count each eligible worker should hold, as plan_placement sees it.
std::map<WorkerId, uint64_t> placement_quotas(const StateMachine& sm, const PlacementOptions& options);

/// Chooses new owners for the shards `dead` holds (the first
/// options.max_failovers_per_pass of them), as if it were gone; a shard
/// without a possible owner gets an empty worker (it becomes unassigned).
std::vector<Placement> plan_failover(const StateMachine& sm, const WorkerId& dead, const PlacementOptions& options);
/// The same for several workers gone at once, none of them eligible: one
/// plan per worker of `dead`, in its order, from one model, with
/// options.max_failovers_per_pass placements in all (later workers' plans
/// may be short or empty).
std::vector<std::vector<Placement>> plan_failovers(const StateMachine& sm, const std::vector<WorkerId>& dead,
                                                   const PlacementOptions& options);

/// What a worker holds now (once the handoffs in flight complete).
using HeldCount = std::function<uint64_t(const WorkerId&)>;

/// Largest-remainder quotas: `total` split by capacity, each within one of
/// its exact share. Rounding leftovers go to the largest fractions; among
/// equal ones, to the least filled zone (`zone_of` may be empty: one zone),
/// then to a worker that already holds more than its share rounded down
/// (`held`, may be null), then to the smaller id. The third rule keeps the
/// rounding where the shards are: without it a worker one above the
/// rounded-down share but not the one the ids favour must give a shard
/// away, though both are within one of their share (an operator's manual
/// move was undone so, and any such move costs a drain and a grant).
std::map<WorkerId, uint64_t> fair_quotas(const std::map<WorkerId, double>& capacity, uint64_t total,
                                         const std::map<WorkerId, std::string>& zone_of = {},
                                         const HeldCount& held = nullptr);

}  // namespace tenure::controlplane
