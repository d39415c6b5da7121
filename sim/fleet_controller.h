#pragma once
// One life of a simulated controller: the production leader services
// (controlplane::LeaderService, the leader's loop over the fleet policy, and
// controlplane::AgentService, the agents' register, heartbeat, release and
// leave) on a simulated member, through a ConsensusPort implemented here
// over the member's client requests (a write of a command; a read for a
// ReadIndex), with the member's own (skewed) steady clock and wall clock.
// This class only translates: the simulated wire's calls to the service and
// its answers back (as api/agent_routes.cc does for HTTP), and the loop's
// reports into traces. A list is a linearizable read; a watch poll reads the
// member's applied state as it is (maybe stale).

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "controlplane/agent_service.h"
#include "controlplane/consensus_port.h"
#include "controlplane/leader_service.h"
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
  /// Sends an agent (or a forwarding member) its answer over the simulated network.
  virtual void answer(const Node& from, const NodeId& to, FleetAnswer a) = 0;
  /// Forwards an agent's call to another member over the simulated network.
  virtual void forward(const Node& from, const NodeId& to, FleetRequest r) = 0;
  /// The simulator looks at a member after the fleet drove it.
  virtual void observe(Node& n) = 0;
  /// Runs `f` as the member's own work: now, or once its pause ends.
  virtual void run_on(const Node& n, std::function<void()> f) = 0;
  virtual bool tracing() const = 0;
  virtual void trace(const std::string& line) = 0;
};

class NodeController final : private controlplane::ConsensusPort, private controlplane::LeaderObserver {
 public:
  NodeController(Node& node, const FleetOptions& o, ControllerEnv& env);

  /// This object serves the member's current life only.
  bool alive() const { return node_.up() && node_.incarnation() == life_; }
  /// The member's applied fleet state.
  const controlplane::StateMachine& state() const override;

  /// Every tick of the member.
  void on_tick();
  /// After an entry was applied.
  void on_applied();
  /// The member answered one of our requests.
  void on_reply(const ClientReply& r);
  /// An agent's call arrived (or one forwarded by another member).
  void on_request(const NodeId& from, const FleetRequest& r);
  /// The leader answered a call this member forwarded.
  void on_forwarded_answer(const FleetAnswer& a);
  uint64_t decisions() const { return decisions_; }
  /// The member as the leader's services see it (the operator proposes through it too).
  controlplane::ConsensusPort& port() { return *this; }

 private:
  using ReplyFn = std::function<void(const ClientReply*)>;
  struct Pending {
    ReplyFn done;
    int64_t deadline_us = 0;
  };
  /// A call forwarded to the leader: whom to answer, under which id.
  struct Forwarded {
    NodeId agent;
    uint64_t id = 0;
    int64_t deadline_us = 0;
  };
  // ConsensusPort over the simulated member.
  void propose(controlplane::Command cmd, ProposeDone done) override;
  void confirm(ConfirmDone done) override;
  bool leading() const override;
  consensus::Term term() const override { return node_.raft().term(); }
  bool caught_up() const override;
  uint64_t steady_ms() const override { return env_.clock_ms(node_); }
  uint64_t wall_ms() const override { return env_.wall_ms(node_); }
  // LeaderObserver: traces and the decisions count.
  void on_leading(Term term, const controlplane::StateMachine& sm) override;
  void on_decided(const controlplane::Decision& d) override;

  void submit(ClientRequest r, int64_t timeout_us, ReplyFn done);
  void lease(const NodeId& agent, const FleetRequest& r, const controlplane::LeaseReply& reply);
  void answer(const NodeId& to, FleetAnswer a);
  void answer_status(const NodeId& to, uint64_t id, FleetStatus s);
  void serve_list(const NodeId& agent, const FleetRequest& r);
  void forward_to_leader(const NodeId& agent, const FleetRequest& r);
  void serve_watch(const NodeId& agent, const FleetRequest& r);
  void expire();

  Node& node_;
  const uint64_t life_;
  const FleetOptions& o_;
  ControllerEnv& env_;
  std::map<uint64_t, Pending> pending_;
  std::map<uint64_t, Forwarded> forwarded_;
  uint64_t decisions_ = 0;
  controlplane::LeaderService leader_;
  controlplane::AgentService agents_;
};

}  // namespace tenure::sim
