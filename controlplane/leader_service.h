#pragma once
// The leader's loop over the fleet: it runs the pure policy (fleet_policy.h)
// on a consensus member through its port (consensus_port.h), with that
// member's clocks. On every tick of a member that leads it starts leading
// on a new term, and once the member has committed an entry of its term and
// applied everything committed (§6.4) it ticks the policy and proposes the
// decisions that come out, telling the policy when each one has an outcome.
// The controller runs it on its Raft strand (controller/supervisor.h), the
// simulator on a simulated member (sim/fleet_controller.h).
//
// Thread: the port's executor.

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "controlplane/consensus_port.h"
#include "controlplane/fleet_policy.h"

namespace tenure::controlplane {

/// What the loop reports as it goes (logs, metrics, traces). Every method
/// has an empty default; called on the port's executor.
class LeaderObserver {
 public:
  virtual ~LeaderObserver() = default;
  /// This member started leading `term` (or a new term).
  virtual void on_leading(consensus::Term /*term*/, const StateMachine& /*sm*/) {}
  /// A decision is about to be proposed.
  virtual void on_decided(const Decision& /*d*/) {}
  /// A decision's proposal has an outcome: `err` or `result`.
  virtual void on_decision_done(const Decision& /*d*/, const PortError* /*err*/, const ApplyResult* /*result*/) {}
  /// Handoffs this leader saw complete since the last call (non-empty).
  virtual void on_handoffs_finished(const std::vector<FinishedHandoff>& /*done*/) {}
};

class LeaderService {
 public:
  /// `observer` may be null; it must outlive the service.
  LeaderService(ConsensusPort& port, FleetPolicyOptions options, LeaderObserver* observer = nullptr);

  /// A tick of the member (leader or not).
  void on_tick();
  /// After entries were applied.
  void on_applied();
  /// A worker was heard (register or heartbeat) now, by this leader after
  /// its leadership was confirmed: its lease as the policy answers it.
  HeartbeatAnswer heard(const WorkerId& worker);
  /// The placement this leader would carry out now.
  Plan plan() const;
  /// FleetPolicy::grant_hold_ms on this leader's state and clock; nullopt
  /// while the service does not lead yet (it holds nothing it could vouch for).
  std::optional<uint64_t> grant_hold_ms(const ShardId& shard);
  /// Proposes `plan`'s commands; `done` once, with the first error (if
  /// any) and the number of shards changed by those that applied.
  void execute(const Plan& plan, std::function<void(const PortError*, size_t changed)> done);
  const FleetPolicyOptions& options() const { return policy_.options(); }
  /// Whether the policy leads (it started leading and has not stopped).
  bool leading() const { return policy_.leading(); }

 private:
  void propose(Decision d);

  ConsensusPort& port_;
  FleetPolicy policy_;
  LeaderObserver* observer_;
  consensus::Term leading_term_;
  uint64_t stalled_seen_ = 0;  ///< port_.stalled_ms() at the last tick
};

}  // namespace tenure::controlplane
