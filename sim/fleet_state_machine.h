#pragma once
// The replicated state of a fleet-mode member: the controller's real state
// machine (controlplane::StateMachine), fed with commands encoded by
// controlplane::encode_command, beside the key-value register the Raft
// checkers and the liveness probe use. A `put` entry goes to the register,
// anything else must decode as a command (as in the controller's driver, an
// entry that does not is a broken invariant). Snapshots hold both.

#include <string>

#include "controlplane/state_machine.h"
#include "sim/state_machine.h"

namespace tenure::sim {

class FleetStateMachine final : public StateMachine {
 public:
  explicit FleetStateMachine(controlplane::Limits limits) : fleet_(limits) {}

  std::string apply(LogIndex index, const std::string& data) override;
  std::string snapshot() const override;
  bool restore(const std::string& data) override;
  /// The register's value of `key` (what the Raft checkers compare).
  std::string query(const std::string& key) const override { return kv_.query(key); }

  const controlplane::StateMachine& fleet() const { return fleet_; }
  /// The result of the last command applied (valid right after apply()).
  const controlplane::ApplyResult& last_result() const { return last_; }

 private:
  KvRegister kv_;
  controlplane::StateMachine fleet_;
  controlplane::ApplyResult last_;
};

}  // namespace tenure::sim
