#pragma once
// The fleet mode's checkers (docs/simulator.md, "Fleet mode"). Like the Raft
// checkers they take plain values, so unit tests can feed them bad states.
//
//   fleet-one-writer       at most one agent accepts writes for a shard at
//                          any instant (held, under a lease valid by the
//                          agent's own clock at that real instant);
//   fleet-epoch-monotonic  a shard's epoch never goes down: along the log
//                          (every member's applied state, restarts and
//                          snapshots included) and in what every agent saw;
//   fleet-epoch-owner      each (shard, epoch) belongs to one worker, in
//                          every member's applied state and at every agent.

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "controlplane/state_machine.h"
#include "dataplane_agent/grant_table.h"
#include "sim/checkers.h"
#include "sim/fleet_wire.h"

namespace tenure::sim {

/// What one agent accepts writes for right now.
struct AcceptingView {
  WorkerId agent;
  std::vector<agent::ShardEpoch> accepting;
};

/// Two agents accepting writes for one shard at once.
struct WriterConflict {
  ShardId shard;
  WorkerId first;
  Epoch first_epoch;
  WorkerId second;
  Epoch second_epoch;
};
/// Every shard accepted by two agents (the first two found) at one instant.
std::vector<WriterConflict> one_writer_conflicts(const std::vector<AcceptingView>& agents);
Violation one_writer_violation(const WriterConflict& c);
/// fleet-one-writer over every agent at one instant.
Check check_one_writer(const std::vector<AcceptingView>& agents);

class EpochOwners {
 public:
  /// `node`'s applied state `sm` at log index `index`. `fresh` when the
  /// member (re)started or installed a snapshot: its earlier view is gone.
  Check on_state(const NodeId& node, LogIndex index, const controlplane::StateMachine& sm, bool fresh);
  /// What agent `worker` remembers: its fence's table (null while it is
  /// down) and its durable table.
  Check on_agent(const WorkerId& worker, const agent::GrantTable* table,
                 const std::map<std::string, agent::ShardRecord>& durable);
  /// Every (shard, epoch) ever seen owned, with its worker.
  const std::map<std::pair<ShardId, Epoch>, WorkerId>& owners() const { return owners_; }
  /// Called with a line for each (shard, epoch) seen owned for the first time (--verbose).
  void set_trace(std::function<void(const std::string&)> fn) { trace_ = std::move(fn); }

 private:
  Check observe(const NodeId& node, LogIndex index, const ShardId& id, const controlplane::Shard& s);
  Check owner(const NodeId& who, const std::string& where, const ShardId& id, Epoch e, const WorkerId& w);

  struct NodeView {
    controlplane::Revision revision;
    bool valid = false;
    std::map<ShardId, Epoch> epochs;  ///< kept for deleted shards too: a re-created one must go on from there
  };
  std::map<NodeId, NodeView> nodes_;
  /// Epochs seen along the log: by_index_[shard][i] is the shard's epoch in
  /// a state applied up to index i.
  std::map<ShardId, std::map<LogIndex, Epoch>> by_index_;
  std::map<std::pair<ShardId, Epoch>, WorkerId> owners_;
  std::map<WorkerId, std::map<std::string, Epoch>> agent_max_;
  std::function<void(const std::string&)> trace_;
};

}  // namespace tenure::sim
