#pragma once
// A simulated tenure-agent: the real fence (dataplane_agent's FenceState,
// GrantTable, GrantChanges and lease arithmetic) behind a model of its
// session (dataplane_agent/session.cc, session_watch.cc) that keeps the
// real one's order of work, on a clock of its own that runs at a drawn rate.
//
// Like the real agent, all work runs on one strand: a task at a time, and a
// durable write of grants (SQLite, fsync) blocks it until it completes. A
// pause (SIGSTOP) freezes the strand while the clock runs on; timers and
// answers that came due meanwhile run on resume. A crash (SIGKILL) loses
// everything but the durable grant table; a write in flight at the crash
// is durable or not, at random. Fence checks (the checkers') may come at
// any instant, between tasks or while one is blocked.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "consensus/types.h"
#include "dataplane_agent/clock.h"
#include "dataplane_agent/fence_state.h"
#include "dataplane_agent/grant_table.h"
#include "dataplane_agent/lease.h"
#include "sim/fleet_options.h"
#include "sim/fleet_wire.h"
#include "sim/rng.h"

namespace tenure::sim {

using consensus::NodeId;

/// What an agent needs from the simulation.
class AgentEnv {
 public:
  virtual ~AgentEnv() = default;
  /// Real (virtual) time in microseconds.
  virtual int64_t now() const = 0;
  virtual void after(int64_t delay_us, std::function<void()> f) = 0;
  /// Sends a request to a member over the simulated network.
  virtual void send(const NodeId& from, const NodeId& to, FleetRequest r) = 0;
  /// The controllers the agent is configured with, in a stable order.
  virtual std::vector<NodeId> controllers() const = 0;
  virtual uint64_t next_request_id() = 0;
  virtual Rng& rng() = 0;
  /// Whether faults may strike (the safety phase).
  virtual bool faulty() const = 0;
  /// The agent ran a step: its fence may accept other shards now.
  virtual void changed(const WorkerId& agent) = 0;
  virtual bool tracing() const = 0;
  virtual void trace(const std::string& line) = 0;
};

/// The agent's steady clock: `base` plus real time at `rate`.
class SimClock final : public agent::Clock {
 public:
  SimClock(const AgentEnv& env, double rate, int64_t base_ns) : env_(env), rate_(rate), base_ns_(base_ns) {}
  agent::SteadyTime now() const override;
  int64_t wall_ms() const override;
  double rate() const { return rate_; }
  /// Real microseconds for `d` of this clock.
  int64_t real_us(std::chrono::nanoseconds d) const;

 private:
  const AgentEnv& env_;
  double rate_;
  int64_t base_ns_;
};

struct AgentStats {
  uint64_t heartbeats_ok = 0;
  uint64_t declared_dead = 0;  ///< "worker dead" answers and watch events
  uint64_t relists = 0;
  uint64_t releases = 0;
  uint64_t grants = 0;  ///< shards newly granted
};

class SimAgent {
 public:
  SimAgent(WorkerId id, std::string zone, double capacity, double rate, int64_t clock_base_ns,
           const FleetOptions& o, AgentEnv& env);
  ~SimAgent();

  const WorkerId& id() const { return id_; }
  NodeId address() const { return NodeId(id_.str()); }
  const SimClock& clock() const { return clock_; }
  bool up() const { return up_; }
  bool paused() const { return paused_; }
  bool registered() const { return registered_; }
  /// Shutting down (SIGTERM): leaving, then exiting.
  bool stopping() const { return stopping_; }
  /// Changes at every start: timers and answers of an earlier life check it.
  uint64_t life() const { return life_; }

  // The process.
  void start();
  void crash();
  void pause();
  void resume();
  /// SIGTERM: stop accepting, leave, exit.
  void shut_down();

  /// An answer arrived from the network.
  void on_answer(const FleetAnswer& a);

  /// The shards this agent accepts writes for now (held, under a valid
  /// lease by its own clock), sorted; empty when down.
  std::vector<agent::ShardEpoch> accepting() const;
  /// The fence table (what it remembers of every shard); null when down.
  const agent::GrantTable* table() const { return fence_ ? &fence_->table_for_planning() : nullptr; }
  /// The durable table (what survives a crash).
  const std::map<std::string, agent::ShardRecord>& durable() const { return durable_; }
  /// "w1:up/registered/synced/lease=..ms/held=.." for liveness reports.
  std::string status() const;
  const AgentStats& stats() const { return stats_; }
  /// When (real time) the leader granted the lease this agent holds now.

 private:
  using Task = std::function<void()>;
  struct Reply {
    FleetStatus status = FleetStatus::kUnavailable;
    FleetAnswer answer;
    agent::SteadyTime sent;
    NodeId endpoint;
    bool ok() const { return status == FleetStatus::kOk; }
  };
  using ReplyFn = std::function<void(Reply)>;
  struct Call {
    FleetRequest request;
    std::chrono::milliseconds timeout{0};
    size_t tried = 0;
    ReplyFn done;
  };
  struct Attempt {
    std::shared_ptr<Call> call;
    size_t index = 0;
    agent::SteadyTime sent;
    NodeId endpoint;
  };

  // fleet_agent.cc: the strand, timers, the controller pool, durable writes.
  void post(Task t);
  void pump();
  /// Runs `t` after `d` of this agent's clock, on the strand, in this life.
  void timer(std::chrono::nanoseconds d, Task t);
  void call(FleetRequest r, std::chrono::milliseconds timeout, ReplyFn done);
  void attempt(std::shared_ptr<Call> c);
  void finish_attempt(uint64_t id, std::optional<FleetAnswer> a);
  /// Persists `c` (blocking the strand for an fsync), installs it, then runs `then`.
  void commit(std::shared_ptr<agent::GrantChanges> c, Task then);
  void persist(const agent::GrantChanges& c);
  std::shared_ptr<agent::GrantChanges> changes() const;
  void log(const std::string& what) const;

  // fleet_agent_session.cc: the session (register, heartbeat, re-list, watch, release).
  void schedule_tick();
  void tick();
  void send_register();
  void send_heartbeat();
  void handle_lease_reply(const Reply& r, bool is_register);
  void apply_lease_answer(const Reply& r, bool is_register);
  void extend_from(const Reply& r);
  void lost_registration(const std::string& reason, bool drop_grants);
  void start_relist();
  void on_relist(const Reply& r);
  void schedule_relist();
  void send_release(std::vector<agent::ShardEpoch> shards, int attempt = 0);
  void check_watch_lag(Revision heartbeat_revision, Revision worker_revision);
  void refresh_lease();
  void start_watch(Revision from);
  void stop_watch() {
    ++watch_gen_;
    watch_request_ = 0;
  }
  void poll_watch(uint64_t gen);
  void on_watch_answer(uint64_t gen, std::optional<FleetAnswer> a);
  void on_watch_end(uint64_t gen, bool gone);
  void schedule_watch_reconnect();
  std::chrono::milliseconds backoff(int& attempt) const;

  const WorkerId id_;
  const std::string zone_;
  const double capacity_;
  const FleetOptions& o_;
  AgentEnv& env_;
  SimClock clock_;
  const std::chrono::milliseconds interval_;

  // The process.
  bool up_ = false;
  bool paused_ = false;
  bool busy_ = false;  ///< a durable write blocks the strand
  bool pumping_ = false;
  uint64_t life_ = 0;
  std::deque<Task> tasks_;
  std::unique_ptr<agent::FenceState> fence_;
  /// A durable write in flight: at a crash it is durable or not, at random.
  std::shared_ptr<agent::GrantChanges> writing_;
  std::map<std::string, agent::ShardRecord> durable_;
  Revision durable_revision_;

  // The controller pool.
  size_t current_ = 0;
  std::map<uint64_t, Attempt> attempts_;

  // The session (the names of session_impl.h).
  bool stopping_ = false;
  bool registered_ = false;
  bool register_inflight_ = false;
  bool heartbeat_inflight_ = false;
  bool relist_inflight_ = false;
  bool synced_ = false;
  uint64_t session_gen_ = 1;
  agent::LeaseLedger leases_;
  int relist_attempt_ = 0;
  // The watch: one poll at a time on `watch_node_`.
  uint64_t watch_gen_ = 0;
  NodeId watch_node_;
  uint64_t watch_request_ = 0;
  int watch_attempt_ = 0;
  std::optional<std::pair<Revision, agent::SteadyTime>> watch_lag_;

  AgentStats stats_;
};

}  // namespace tenure::sim
