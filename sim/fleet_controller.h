#pragma once
// One life of a simulated controller: what controller/supervisor.cc and
// api/agent_routes.cc do around the real leader policy
// (controlplane::FleetPolicy), on a simulated member. On every tick of the
// leader it starts leading on a new term, and once the member has committed
// an entry in its term and applied everything committed (§6.4) it ticks the
// policy with the member's own (skewed) clock and proposes the decisions
// through the real Raft core; finished() when they apply, fail or time out.
// Agents' calls are served as the API serves them: register proposes
// RegisterWorker when something changed; register and heartbeat grant the
// lease only after a ReadIndex confirmed leadership; release proposes
// CompleteMoves; leave proposes DeclareDead; a list is a linearizable read;
// a watch poll reads the member's applied state as it is (maybe stale).

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "controlplane/fleet_policy.h"
#include "sim/fleet_options.h"
#include "sim/fleet_state_machine.h"
#include "sim/fleet_wire.h"
#include "sim/node.h"

namespace tenure::sim {

/// What a controller needs from the simulation.
class ControllerEnv {
 public:
  virtual ~ControllerEnv() = default;
  virtual int64_t now() const = 0;
  virtual void after(int64_t delay_us, std::function<void()> f) = 0;
  /// The member's steady clock (it runs at the member's skewed tick rate).
  virtual uint64_t clock_ms(const Node& n) = 0;
  /// The member's wall clock (stamps commands; join delays).
  virtual uint64_t wall_ms(const Node& n) = 0;
  virtual uint64_t next_request_id() = 0;
  /// Sends an agent its answer over the simulated network.
  virtual void answer(const Node& from, const NodeId& to, FleetAnswer a) = 0;
  /// The simulator looks at a member after the fleet drove it.
  virtual void observe(Node& n) = 0;
  virtual bool tracing() const = 0;
  virtual void trace(const std::string& line) = 0;
};

class NodeController {
 public:
  /// `ok` false: not applied (not leader, lost, timed out); else `result` is the command's.
  using Done = std::function<void(bool ok, const controlplane::ApplyResult* result)>;

  NodeController(Node& node, const FleetOptions& o, ControllerEnv& env);

  /// This object serves the member's current life only.
  bool alive() const { return node_.up() && node_.incarnation() == life_; }
  const controlplane::StateMachine& state() const;

  /// Every tick of the member.
  void on_tick();
  /// After an entry was applied.
  void on_applied();
  /// The member answered one of our requests.
  void on_reply(const ClientReply& r);
  /// An agent's call arrived.
  void on_request(const NodeId& from, const FleetRequest& r);
  /// Proposes `cmd` stamped with this member's wall clock (leader only).
  void propose(controlplane::Command cmd, Done done);
  using AllDone = std::function<void(bool all_ok, const std::vector<controlplane::ApplyResult>& results)>;
  /// Proposes the pieces of a split operation; `done` once all have an outcome.
  void propose_all(std::vector<controlplane::Command> cmds, AllDone done);
  uint64_t decisions() const { return decisions_; }

 private:
  using ReplyFn = std::function<void(const ClientReply*)>;
  struct Pending {
    ReplyFn done;
    int64_t deadline_us = 0;
  };
  void submit(ClientRequest r, int64_t timeout_us, ReplyFn done);
  /// A linearizable read (ReadIndex); `done(ok)` with the state at or past it.
  void read(std::function<void(bool ok)> done);
  void confirmed_lease(const NodeId& agent, const FleetRequest& r);
  void answer(const NodeId& to, FleetAnswer a);
  void answer_status(const NodeId& to, uint64_t id, FleetStatus s);
  void serve_list(const NodeId& agent, const FleetRequest& r);
  void serve_watch(const NodeId& agent, const FleetRequest& r);
  void leave(const NodeId& agent, const FleetRequest& r);
  void expire();

  Node& node_;
  const uint64_t life_;
  const FleetOptions& o_;
  ControllerEnv& env_;
  controlplane::FleetPolicy policy_;
  Term leading_term_;
  std::map<uint64_t, Pending> pending_;
  uint64_t decisions_ = 0;
};

}  // namespace tenure::sim
