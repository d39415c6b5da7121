#pragma once
// The leader's soft state over the fleet (DESIGN.md: heartbeats are not
// replicated, as in Kafka's KRaft controller and TiKV's PD): worker leases,
// the handoffs it is waiting on, and the placement loop. Only its decisions
// go through Raft: a worker declared dead, shards granted, handoffs begun
// or completed.
//
// Timing (docs/fencing.md): a worker is declared dead once this leader has
// not heard from it for worker_lease_ms, measured from the later of its last
// heartbeat's arrival and this leader's election (a new leader gives every
// worker a full lease). A handoff the old owner does not confirm completes
// once worker_lease_ms has passed since this leader saw it begin; by then the
// old owner has either learned of the revoke in a heartbeat answer or let
// its lease lapse.
//
// Thread: every method runs on the RaftNode's strand.

#include <cstdint>
#include <map>
#include <set>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "controller/raft_node.h"
#include "controlplane/placement.h"

namespace tenure::controller {

struct SupervisorOptions {
  uint32_t worker_lease_ms = 3000;
  uint32_t max_concurrent_moves = 64;
  uint32_t join_delay_ms = 0;
  /// Leases and handoffs are checked this often (the driver ticks faster).
  uint32_t check_interval_ms = 50;
  /// A placement pass runs at least this often ...
  uint32_t placement_interval_ms = 2000;
  /// ... and after a change, but not more often than this (a pass is O(shards)).
  uint32_t placement_min_interval_ms = 200;
  /// Placements per proposed command (keeps entries well under the body limit).
  size_t max_placements_per_command = 4000;
};

struct HeartbeatAnswer {
  enum class Status { kOk, kUnknown, kDead } status = Status::kOk;
  controlplane::Revision revision;
  /// Shards this worker must stop serving (being handed off from it).
  std::vector<std::pair<controlplane::ShardId, controlplane::Epoch>> revoked;
};

class Supervisor {
 public:
  Supervisor(RaftNode& node, SupervisorOptions options, prometheus::Registry& registry);

  /// Leader ticks: leases, overdue handoffs, placement.
  void on_tick();
  /// After entries were applied: handoffs that completed stop being tracked.
  void on_applied();
  /// A heartbeat (or registration) from a worker's agent, at the leader.
  HeartbeatAnswer heartbeat(const controlplane::WorkerId& worker);
  /// The placement the leader would carry out now.
  controlplane::Plan plan() const;
  /// Proposes `plan`; `done` gets the number of shards changed.
  void execute(const controlplane::Plan& plan, std::function<void(const NodeError*, size_t)> done);
  const SupervisorOptions& options() const { return options_; }

 private:
  void become_leader(uint64_t now);
  void check_leases(uint64_t now);
  void expire_handoffs(uint64_t now);
  void maybe_place(uint64_t now);
  controlplane::PlacementOptions placement_options() const;

  RaftNode& node_;
  SupervisorOptions options_;
  bool leading_ = false;
  consensus::Term leading_term_;
  std::map<controlplane::WorkerId, uint64_t> last_heard_ms_;       ///< steady clock
  std::map<controlplane::ShardId, uint64_t> handoff_seen_ms_;      ///< steady clock
  std::set<controlplane::WorkerId> declaring_dead_;
  std::set<controlplane::ShardId> expiring_;
  bool placing_ = false;
  uint64_t last_check_ms_ = 0;
  uint64_t last_place_ms_ = 0;
  controlplane::Revision last_place_revision_;
  prometheus::Family<prometheus::Counter>& handoffs_;
  prometheus::Family<prometheus::Histogram>& handoff_seconds_;
  prometheus::Counter& workers_declared_dead_;
};

}  // namespace tenure::controller
