#pragma once
// A simulated tenure-agent: the real agent code (dataplane_agent's
// SessionCore, FenceState, GrantTable, GrantChanges and lease arithmetic,
// the library tenure_agent_core) with only its I/O swapped: the simulated
// network for HTTP, a simulated durable store for SQLite, and a clock of
// its own that runs at a drawn rate. This file is the I/O shell, as
// dataplane_agent/session.cc is tenure-agent's; no decision is made here.
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
#include "dataplane_agent/session_core.h"
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

/// What an agent's sessions did, over all its lives.
using AgentStats = agent::SessionStats;

class SimAgent final : private agent::SessionIo {
 public:
  SimAgent(WorkerId id, std::string zone, double capacity, double rate, int64_t clock_base_ns,
           const FleetOptions& o, AgentEnv& env);
  ~SimAgent();

  const WorkerId& id() const { return id_; }
  NodeId address() const { return NodeId(id_.str()); }
  const SimClock& clock() const { return clock_; }
  bool up() const { return up_; }
  bool paused() const { return paused_; }
  bool registered() const { return core_ && core_->registered(); }
  /// Shutting down (SIGTERM): leaving, then exiting.
  bool stopping() const { return core_ && core_->stopping(); }
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
  /// The epoch this agent accepts writes for `shard` at now, if any.
  std::optional<Epoch> accepts(const ShardId& shard) const;
  /// The fence table (what it remembers of every shard); null when down.
  const agent::GrantTable* table() const { return fence_ ? &fence_->table_for_planning() : nullptr; }
  /// Moves whenever the durable table or the fence's records may have
  /// changed (a checker that reads them need not look again until then).
  uint64_t table_version() const { return table_version_; }
  /// The durable table (what survives a crash).
  const std::map<std::string, agent::ShardRecord>& durable() const { return durable_; }
  /// "w1:up/registered/synced/lease=..ms/held=.." for liveness reports.
  std::string status() const;
  AgentStats stats() const;

 private:
  using Task = std::function<void()>;
  struct Call {
    FleetRequest request;
    std::chrono::milliseconds timeout{0};
    size_t tried = 0;
    std::function<void(agent::Reply)> done;
  };
  struct Attempt {
    std::shared_ptr<Call> call;
    size_t index = 0;
    agent::SteadyTime sent;
    NodeId endpoint;
  };

  // fleet_agent.cc: the process, the strand, timers, durable writes.
  void post(Task t);
  void pump();
  /// Runs `t` after `d` of this agent's clock, on the strand, in this life.
  void timer(std::chrono::nanoseconds d, Task t);
  void write_durably(const agent::GrantChanges& c);
  void trace(const std::string& what) const;
  // fleet_agent_session.cc: calls through the controller pool, the watch.
  void attempt(std::shared_ptr<Call> c);
  void finish_attempt(uint64_t id, std::optional<FleetAnswer> a);
  void poll_watch(uint64_t gen);
  void on_watch_answer(const FleetAnswer& a);

  // agent::SessionIo: what the session core asks of the world.
  void call(agent::Call c, std::function<void(agent::Reply)> done) override;
  void open_watch(uint64_t gen, Revision from) override;
  void close_watch() override;
  void rotate() override { ++current_; }
  std::string endpoint() const override;
  void persist(std::shared_ptr<const agent::GrantChanges> c, std::function<void(std::string)> done) override;
  void after(std::chrono::nanoseconds d, std::function<void()> fn) override;
  void cancel_timers() override { ++core_timers_; }
  int64_t uniform(int64_t lo, int64_t hi) override { return env_.rng().range(lo, hi); }
  bool logging(agent::LogLevel) const override { return env_.tracing(); }
  void log(agent::LogLevel level, const std::string& fields) override;
  bool program_drains() const override { return o_.program; }
  void program_drain(const agent::ShardEpoch& s, std::chrono::nanoseconds budget, std::function<void()> done) override;
  void program_prepare(const agent::ShardEpoch& s, std::function<void()> done) override;
  /// The program answers a drain or a prepare after up to `max_ms`, or
  /// never; `done` runs once, at its answer or when `limit` runs out.
  void program_call(const char* call, const agent::ShardEpoch& s, std::chrono::nanoseconds limit, uint64_t max_ms,
                    std::function<void()> done);

  const WorkerId id_;
  const std::string zone_;
  const double capacity_;
  const FleetOptions& o_;
  AgentEnv& env_;
  SimClock clock_;
  const agent::SessionCoreConfig session_config_;

  // The process.
  bool up_ = false;
  bool paused_ = false;
  bool busy_ = false;  ///< a durable write blocks the strand
  bool pumping_ = false;
  uint64_t life_ = 0;
  std::deque<Task> tasks_;
  std::unique_ptr<agent::FenceState> fence_;
  std::unique_ptr<agent::SessionCore> core_;
  /// after() timers armed before this count was bumped never run.
  uint64_t core_timers_ = 0;
  /// A durable write in flight: at a crash it is durable or not, at random.
  std::shared_ptr<const agent::GrantChanges> writing_;
  std::map<std::string, agent::ShardRecord> durable_;
  uint64_t table_version_ = 0;
  Revision durable_revision_;
  AgentStats past_stats_;  ///< of earlier lives

  // The controller pool.
  size_t current_ = 0;
  std::map<uint64_t, Attempt> attempts_;

  // The watch stream, as one poll at a time on `watch_node_`.
  uint64_t watch_gen_ = 0;  ///< the core's; 0 when none is open
  NodeId watch_node_;
  uint64_t watch_request_ = 0;
};

}  // namespace tenure::sim
