#pragma once
// Runs the leader's fleet policy (controlplane/fleet_policy.h) on the Raft
// driver's strand with real time: it feeds ticks, heartbeats and applied
// state in, proposes the decisions that come out, and exports their metrics.
//
// Thread: every method runs on the RaftNode's strand.

#include <functional>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "controller/raft_node.h"
#include "controlplane/fleet_policy.h"

namespace tenure::controller {

using HeartbeatAnswer = controlplane::HeartbeatAnswer;

class Supervisor {
 public:
  Supervisor(RaftNode& node, controlplane::FleetPolicyOptions options, prometheus::Registry& registry);

  /// Every driver tick (leader or not).
  void on_tick();
  /// After entries were applied.
  void on_applied();
  /// A heartbeat (or registration) from a worker's agent, at the leader.
  HeartbeatAnswer heartbeat(const controlplane::WorkerId& worker);
  /// The placement the leader would carry out now.
  controlplane::Plan plan() const;
  /// Proposes `plan`; `done` gets the number of shards changed.
  void execute(const controlplane::Plan& plan, std::function<void(const NodeError*, size_t)> done);
  const controlplane::FleetPolicyOptions& options() const { return policy_.options(); }

 private:
  void propose(controlplane::Decision d);

  RaftNode& node_;
  controlplane::FleetPolicy policy_;
  consensus::Term leading_term_;
  prometheus::Family<prometheus::Counter>& handoffs_;
  prometheus::Family<prometheus::Histogram>& handoff_seconds_;
  prometheus::Counter& workers_declared_dead_;
};

}  // namespace tenure::controller
