// The simulator's side of the fleet mode (sim/fleet.h): the network and the
// liveness deadline of agents' traffic.
#include "sim/simulator.h"

namespace tenure::sim {

std::vector<int64_t> Simulator::fleet_route(const NodeId& from, const NodeId& to) {
  // The same seeded network as Raft traffic: loss, duplicates, delays, and
  // (between members) partitions.
  return net_.route(from, to);
}

void Simulator::fleet_deadline() {
  if (phase_ != Phase::kLiveness || fleet_->settled()) return;
  Node* l = leader();
  report(Violation{"fleet-liveness", l ? l->id() : NodeId(), l ? l->raft().term() : Term(0),
                   l ? l->applied() : LogIndex(0),
                   "not every shard was active on an agent holding it under a valid lease within " +
                       std::to_string(fleet_->liveness_bound_us() / 1000) + " ms of healing (plus the Raft bound); " +
                       fleet_->unsettled()});
}

}  // namespace tenure::sim
