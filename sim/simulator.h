#pragma once
// The deterministic simulator: N real Raft members with durable stores and
// state machines, a seeded network, clients, crashes, partitions, clock skew
// and membership churn, all on one virtual clock in one thread. A safety
// phase with faults is followed by a liveness phase (heal, restart, stop
// churn: a leader must then commit a new write and every member catch up
// within a bound). The checkers run after every step; the run stops at the
// first violation.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <vector>

#include "sim/checkers.h"
#include "sim/clients.h"
#include "sim/event_queue.h"
#include "sim/fleet.h"
#include "sim/history.h"
#include "sim/network.h"
#include "sim/node.h"
#include "sim/options.h"
#include "sim/rng.h"

namespace tenure::sim {

struct SimStats {
  uint64_t events = 0;
  uint64_t messages = 0;
  uint64_t dropped = 0;
  uint64_t crashes = 0;
  uint64_t torn_crashes = 0;
  uint64_t partitions = 0;
  uint64_t leaders = 0;  ///< distinct (term, leader) pairs seen
  uint64_t snapshots_installed = 0;
  uint64_t snapshots_unreadable = 0;  ///< sends whose snapshot bytes the sender no longer held (none expected)
  uint64_t read_back = 0;  ///< entries the cores read back from their stores (released payloads)
  uint64_t conf_changes = 0;
  uint64_t lease_reads = 0;  ///< reads a leader began on its lease
  uint64_t pauses = 0;       ///< members paused (pause_fault)
  /// From a leader's crash to the next leader (any member, a later term):
  /// the failover time the probes shorten (--probe-leader 0 for an A/B).
  uint64_t crash_failovers = 0;
  int64_t crash_failover_us = 0;
  uint64_t probes = 0;          ///< followers dialing a silent leader
  uint64_t probes_refused = 0;  ///< ... whose process was down
  uint64_t old_term_commits = 0;  ///< a leader's commit landing on an older term's entry
  uint64_t committed = 0;  ///< length of the committed history
  uint64_t writes_acked = 0;
  uint64_t reads_ok = 0;
  int64_t liveness_ticks = -1;  ///< heal to committed probe write, nominal ticks
  int64_t end_ticks = 0;
  FleetStats fleet;  ///< fleet mode only
};

struct SimResult {
  std::optional<Violation> violation;
  SimStats stats;
};

class Simulator final : private NodeHooks, private FleetEnv {
 public:
  /// `trace`, when set, receives a line per event (--verbose).
  Simulator(RunOptions o, std::ostream* trace);
  ~Simulator() override;
  SimResult run();

 private:
  enum class Phase { kSafety, kLiveness, kDone };

  // simulator.cc: setup, nodes, network, observation.
  Node& add_node(const NodeId& id, const InitialState& initial);
  void schedule_tick(Node& n, int64_t delay_us);
  void deliver(Message m, uint64_t sender_incarnation);
  void report_snapshot(const NodeId& from, uint64_t incarnation, const NodeId& to, bool delivered);
  void observe(Node& n);
  void note_committed(LogIndex i);
  void check_electors();
  Node* leader();
  Node* node(const NodeId& id);
  std::vector<NodeId> up_nodes() const;
  std::string status_line(const Node& n) const;
  void report(Check c) override;
  void trace(const std::string& line) override;
  bool tracing() const override { return trace_ != nullptr; }

  // NodeHooks
  void on_send(Node& from, Message m, bool early, std::optional<Term> acked_term) override;
  void on_persisted(Node& n, const Ready& rd, const HardState& before, Term prev_term,
                    const std::optional<std::string>& contract_error) override;
  void schedule(Node& n, int64_t delay_us, std::function<void()> fn) override;
  int64_t fsync_us(Node& n) override;
  int64_t handoff_us(Node& n) override;
  uint64_t steady_ns(const Node& n) const override;
  bool link_healthy(const Node& n, const NodeId& peer) const override;
  void probe(Node& n, const NodeId& peer, std::function<void(bool)> done) override;
  int64_t now_us() const override { return q_.now(); }
  void on_applied(Node& n, const Entry& e) override;
  void on_restored(Node& n, const Snapshot& s) override;
  void on_read_back(Node& n, const std::vector<Entry>& entries) override;
  void on_lease_read(Node&) override { ++stats_.lease_reads; }
  void on_started(Node& n, const InitialState& recovered) override;
  void on_reply(Node& n, ClientReply r) override;
  void on_crashed(Node& n) override;

  // ClientEnv
  int64_t now() const override { return q_.now(); }
  void after(int64_t delay_us, std::function<void()> f) override { q_.at(q_.now() + delay_us, std::move(f)); }
  void submit(const NodeId& to, const ClientRequest& r) override;
  std::vector<NodeId> members() const override;

  // FleetEnv (simulator_fleet.cc).
  Node* fleet_node(const NodeId& id) override { return node(id); }
  Node* fleet_leader() override { return leader(); }
  std::vector<int64_t> fleet_route(const NodeId& from, const NodeId& to) override;
  void fleet_observe(Node& n) override { observe(n); }
  void fleet_run_on(const NodeId& member, std::function<void()> fn) override { run_on(member, std::move(fn)); }
  void fleet_deadline();

  // simulator_faults.cc: crashes, partitions, membership, the liveness phase.
  int64_t draw_gap_us(int64_t mean_ticks);
  void crash_fault();
  void restart(const NodeId& id);
  void partition_fault();
  void churn_fault();
  void churn_step(Node& leader);
  void transfer_fault();
  void pause_fault();
  /// Runs `fn`, work of member `id`, now, or within a tick after the
  /// member's pause ends (in any order with the rest that waited).
  void run_on(const NodeId& id, std::function<void()> fn);
  bool paused(const NodeId& id) const;
  void react_to_leader(const NodeId& id, bool crash_allowed);
  void isolate_for_a_while(const NodeId& id);
  void propose_conf_change(Node& leader, consensus::ConfChangeType type, const NodeId& target);
  void start_liveness();
  void probe();
  void liveness_deadline();
  bool caught_up(std::string* lagging);
  void check_catch_up_progress();
  void finish();

  RunOptions o_;
  std::ostream* trace_;
  Rng rng_;
  EventQueue q_;
  Network net_;
  Phase phase_ = Phase::kSafety;
  std::map<NodeId, std::unique_ptr<Node>> nodes_;
  std::map<NodeId, int64_t> paused_until_us_;  ///< members paused (pause_fault) until then
  std::set<NodeId> members_;  ///< nodes clients may address (added, not decommissioned)
  std::set<NodeId> removed_;  ///< nodes whose removal some member applied
  int next_node_id_ = 0;

  // Checkers and what they need.
  History history_;
  LeaderPerTerm leader_per_term_;
  LogMatching log_matching_;
  AppliedPrefix applied_prefix_;
  DurableTermVote durable_;
  AckPersisted ack_persisted_;
  AckedWrites acked_writes_;
  LinearizableReads reads_;
  Clients clients_;
  std::map<NodeId, LogIndex> observed_commit_;
  std::map<NodeId, Term> leaders_;  ///< members currently leading, and their term
  /// A leader crashed at this time in this term, and no later leader yet (stats_.crash_failovers).
  std::optional<std::pair<int64_t, Term>> leader_crash_;
  std::optional<Violation> violation_;

  // The liveness phase.
  int64_t liveness_start_us_ = 0;
  int64_t probe_sent_us_ = 0;
  uint64_t probe_attempt_ = 0;
  uint64_t probe_count_ = 0;
  std::optional<LogIndex> probe_index_;
  std::map<NodeId, std::pair<LogIndex, int64_t>> catch_up_;  ///< applied index, and since when
  SimStats stats_;
  std::unique_ptr<Fleet> fleet_;  ///< fleet mode only
};

}  // namespace tenure::sim
