#pragma once
// The fleet mode of the simulator (`tenure-sim --fleet`): every member runs
// the controller's real state machine and, while it leads, the real leader
// policy (fleet_controller.h); simulated agents (fleet_agent.h) register,
// heartbeat, watch and release over the same seeded network; an operator
// creates and deletes shards, drains and undrains workers and moves shards
// by hand; agents are paused past their lease, killed, shut down and cut off.
// The fleet checkers (fleet_checkers.h) run after every step that can change
// what they look at; the liveness phase then requires every shard to be
// active on an agent that holds it under a valid lease, within a bound.
//
// Time: the simulator's clock is real time. Each member's steady clock runs
// at its skewed tick rate; each agent's at a drawn rate no slower than
// (1 - kMaxClockDrift) times the fastest a member's can run: drift within
// the bound the lease argument assumes (docs/fencing.md), sometimes exactly
// at it.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "sim/clients.h"
#include "sim/fleet_agent.h"
#include "sim/fleet_checkers.h"
#include "sim/fleet_controller.h"
#include "sim/options.h"

namespace tenure::sim {

/// What the fleet needs from the simulator beyond what clients do.
class FleetEnv : public ClientEnv {
 public:
  virtual Node* fleet_node(const NodeId& id) = 0;
  /// The member of the highest term that believes it leads, if any.
  virtual Node* fleet_leader() = 0;
  /// Delays of the copies of a message sent now (none: lost), as for Raft traffic.
  virtual std::vector<int64_t> fleet_route(const NodeId& from, const NodeId& to) = 0;
  virtual void fleet_observe(Node& n) = 0;
  /// Runs `fn` as the member's own work: now, or once its pause (a SIGSTOP)
  /// ends, in any order with the rest that waited. `fn` must check that the
  /// member is still up (it may have crashed meanwhile).
  virtual void fleet_run_on(const NodeId& member, std::function<void()> fn) = 0;
};

struct FleetStats {
  uint64_t decisions = 0;       ///< policy decisions proposed
  uint64_t operator_ops = 0;    ///< operator commands applied
  uint64_t heartbeats_ok = 0;
  uint64_t declared_dead = 0;   ///< agents told they were declared dead
  uint64_t relists = 0;
  uint64_t releases = 0;
  uint64_t grants = 0;          ///< grants agents took up
  uint64_t drains = 0;          ///< planned moves drained through a program
  uint64_t prepares = 0;        ///< planned moves prepared through a program
  uint64_t pauses = 0;
  uint64_t long_pauses = 0;     ///< pauses longer than the lease
  uint64_t agent_crashes = 0;
  uint64_t leaves = 0;
  uint64_t cuts = 0;
  uint64_t max_shards = 0;
  int64_t settled_ms = -1;      ///< liveness: heal to every shard served, ms (the worst, in a sum)
};
/// Adds `s` to `total` (settled_ms: the worst).
void add(FleetStats& total, const FleetStats& s);
/// "decisions=... settled_ms=..." for the stats lines.
std::string describe(const FleetStats& s);

class Fleet final : private AgentEnv, private ControllerEnv {
 public:
  Fleet(const RunOptions& o, FleetEnv& env);
  ~Fleet() override;

  /// The replicated state machine of a fleet-mode member.
  static std::unique_ptr<StateMachine> make_state_machine(const FleetOptions& o);

  /// Starts the agents and the operator (the members exist by now).
  void start();

  // Hooks from the simulator.
  void on_tick(Node& n);
  void on_applied(Node& n, const Entry& e);
  void on_restored(Node& n);
  void on_started(Node& n);
  void on_crashed(Node& n);
  void on_reply(Node& n, const ClientReply& r);

  /// Faults stop: links heal, paused agents resume, dead ones restart,
  /// drained workers are undrained.
  void start_liveness();
  /// Whether every shard was, at some instant since start_liveness(), active
  /// on an agent that holds it under a valid lease.
  bool settled() const { return settled_us_ >= 0; }
  /// How long the liveness phase may take on top of the Raft one.
  int64_t liveness_bound_us() const;
  /// Why the fleet has not settled (for the liveness violation).
  std::string unsettled();
  FleetStats stats() const;

 private:
  // AgentEnv and ControllerEnv (fleet.cc).
  int64_t now() const override { return env_.now(); }
  void after(int64_t delay_us, std::function<void()> f) override { env_.after(delay_us, std::move(f)); }
  void send(const NodeId& from, const NodeId& to, FleetRequest r) override;
  std::vector<NodeId> controllers() const override { return env_.members(); }
  uint64_t next_request_id() override { return ++request_seq_; }
  Rng& rng() override { return rng_; }
  bool faulty() const override { return !liveness_; }
  void changed(const WorkerId& agent) override;
  bool tracing() const override { return env_.tracing(); }
  void trace(const std::string& line) override { env_.trace(line); }
  uint64_t clock_ms(const Node& n) override;
  uint64_t wall_ms(const Node& n) override;
  void answer(const Node& from, const NodeId& to, FleetAnswer a) override;
  void forward(const Node& from, const NodeId& to, FleetRequest r) override;
  /// Hands an answer to the agent or member it is addressed to.
  void deliver(const NodeId& to, const FleetAnswer& a);
  void observe(Node& n) override { env_.fleet_observe(n); }
  void run_on(const Node& n, std::function<void()> f) override { env_.fleet_run_on(n.id(), std::move(f)); }
  /// An agent's call (or a member's forward) reaching member `to`.
  void deliver_request(const NodeId& from, const NodeId& to, const FleetRequest& r);

  // fleet.cc
  /// Each agent's table_version() when EpochOwners::on_agent last read it.
  std::map<WorkerId, uint64_t> table_checked_;
  NodeController* controller(Node& n);
  /// Member `id`'s controller if it is still the process of incarnation
  /// `life`: what waited for a paused member is dropped if the member died
  /// meanwhile (the connection died with it).
  NodeController* controller_of(const NodeId& id, uint64_t life);
  SimAgent* agent(const NodeId& address);
  std::vector<int64_t> route(const NodeId& from, const NodeId& to);
  bool cut(const NodeId& a, const NodeId& b) const { return cuts_.count({a, b}) > 0; }
  void check_state(Node& n, bool fresh);
  void check_settled();
  int64_t clock_offset_ms(const NodeId& id);

  // fleet_faults.cc: the operator, agent faults, liveness.
  int64_t gap_us(uint64_t mean_ms);
  void schedule(uint64_t mean_ms, void (Fleet::*fault)());
  /// Proposes `cmd` at the leader; `done(ok)` when applied (false: no leader or lost).
  void operate(controlplane::Command cmd, const std::string& what, std::function<void(bool)> done = nullptr);
  /// The id of the k-th shard created (padded on large runs).
  std::string shard_name(int k) const;
  void create_initial_shards();
  void create_fault();
  void delete_fault();
  void drain_fault();
  void move_fault();
  void pause_fault();
  void crash_fault();
  void leave_fault();
  void cut_fault();
  void mute_fault();
  void isolate_fault();
  /// Cuts `links` (agent <-> member) for `for_us`, then restores them.
  void cut_links(std::vector<std::pair<NodeId, NodeId>> links, int64_t for_us);
  /// A drawn duration of `lo` to `hi` half leases, in µs.
  int64_t half_leases(int64_t lo, int64_t hi);
  void restart_agent(size_t k, int64_t delay_us);
  void undrain_all();

  const RunOptions& o_;
  const FleetOptions& f_;
  FleetEnv& env_;
  Rng rng_;
  uint64_t request_seq_ = 0;
  bool liveness_ = false;

  std::vector<std::unique_ptr<SimAgent>> agents_;
  std::map<NodeId, size_t> agent_index_;
  /// The controller of each member's current life; earlier lives stay
  /// allocated (their pending callbacks check alive()) in all_controllers_.
  std::map<NodeId, NodeController*> controllers_;
  std::vector<std::unique_ptr<NodeController>> all_controllers_;
  std::map<NodeId, int64_t> clock_offsets_;
  std::set<std::pair<NodeId, NodeId>> cuts_;  ///< agent <-> member links cut by cut_fault
  double max_node_rate_ = 1;

  EpochOwners epochs_;
  int next_shard_ = 1;
  std::vector<std::string> deleted_;
  int64_t liveness_start_us_ = 0;
  int64_t settled_us_ = -1;
  FleetStats stats_;
};

}  // namespace tenure::sim
