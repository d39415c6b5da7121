#pragma once
// The controller's adapter of the leader's services (controlplane/
// leader_service.h, controlplane/agent_service.h) to its Raft driver: the
// port over the RaftNode (RaftNodePort), the services on it, fed with the
// driver's ticks and applies, and what the leader loop reports turned into
// logs and Prometheus metrics. The decisions themselves are the services'.
//
// Thread: every method runs on the RaftNode's strand, except the port's
// propose() and confirm(), which may be called from any thread (they post
// to the strand; their completions run there).

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "member/port_errors.h"
#include "member/raft_node.h"
#include "controlplane/consensus_port.h"
#include "controlplane/agent_service.h"
#include "controlplane/leader_service.h"

namespace tenure::member {

class RaftNodePort final : public controlplane::ConsensusPort {
 public:
  explicit RaftNodePort(RaftNode& node) : node_(node) {}

  void propose(controlplane::Command cmd, ProposeDone done) override;
  void confirm(ConfirmDone done) override;
  const controlplane::StateMachine& state() const override { return node_.state(); }
  bool leading() const override;
  consensus::Term term() const override { return node_.raft().term(); }
  bool caught_up() const override;
  uint64_t steady_ms() const override;
  uint64_t wall_ms() const override { return wall_clock_ms(); }
  uint64_t stalled_ms() const override { return node_.stalled_ms(); }

 private:
  RaftNode& node_;
};

class Supervisor final : private controlplane::LeaderObserver {
 public:
  Supervisor(RaftNode& node, controlplane::FleetPolicyOptions options, prometheus::Registry& registry);

  /// Every driver tick (leader or not).
  void on_tick() { leader_.on_tick(); }
  /// After entries were applied.
  void on_applied() { leader_.on_applied(); }
  controlplane::LeaderService& leader() { return leader_; }
  controlplane::AgentService& agents() { return agents_; }
  controlplane::ConsensusPort& port() { return port_; }
  const controlplane::FleetPolicyOptions& options() const { return leader_.options(); }

 private:
  void on_leading(consensus::Term term, const controlplane::StateMachine& sm) override;
  void on_decided(const controlplane::Decision& d) override;
  void on_decision_done(const controlplane::Decision& d, const controlplane::PortError* err,
                        const controlplane::ApplyResult* r) override;
  void on_handoffs_finished(const std::vector<controlplane::FinishedHandoff>& done) override;

  RaftNodePort port_;
  controlplane::LeaderService leader_;
  controlplane::AgentService agents_;
  prometheus::Family<prometheus::Counter>& handoffs_;
  prometheus::Family<prometheus::Histogram>& handoff_seconds_;
  prometheus::Family<prometheus::Histogram>& phase_seconds_;
  prometheus::Family<prometheus::Counter>& phase_timeouts_;
  prometheus::Counter& workers_declared_dead_;
};

}  // namespace tenure::member
