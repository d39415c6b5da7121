// The simulated agent's process and I/O: its strand, timers, controller
// pool (dataplane_agent/controller_pool.cc), durable writes and the watch,
// around the real session core (dataplane_agent/session_core.h).
#include "sim/fleet_agent.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace tenure::sim {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

agent::SteadyTime SimClock::now() const {
  double real_ns = static_cast<double>(env_.now()) * 1000.0;
  return agent::SteadyTime(nanoseconds(base_ns_ + std::llround(real_ns * rate_)));
}

int64_t SimClock::wall_ms() const {
  // Only the grant-delay metric reads it; any monotonic value will do.
  return 1'700'000'000'000 + std::chrono::duration_cast<milliseconds>(now().time_since_epoch()).count();
}

int64_t SimClock::real_us(nanoseconds d) const {
  return static_cast<int64_t>(std::ceil(static_cast<double>(d.count()) / rate_ / 1000.0));
}

namespace {

/// tenure-agent's timings (session_core.h), scaled to the run's lease.
agent::SessionTimings session_timings(const FleetOptions& o) {
  agent::SessionTimings t;
  t.heartbeat_interval = milliseconds(o.heartbeat_ms);
  // max(interval, 500 ms), scaled; never below a round trip of this network.
  t.heartbeat_timeout = milliseconds(std::max({o.heartbeat_ms, o.scaled_ms(500), o.min_call_ms}));
  t.register_timeout = milliseconds(o.scaled_ms(5000));
  t.list_timeout = milliseconds(o.scaled_ms(10000));
  t.release_timeout = milliseconds(o.scaled_ms(5000));
  t.release_retry_base = milliseconds(o.scaled_ms(200));
  t.backoff_base = milliseconds(o.scaled_ms(100));
  t.backoff_max = milliseconds(o.scaled_ms(5000));
  t.watch_lag_limit = milliseconds(o.scaled_ms(15000));
  t.own_events_lag_limit = milliseconds(o.scaled_ms(1000));
  return t;
}

/// The planted agent bugs (--fleet --bug NAME) as the core's testing knobs.
agent::SessionKnobs session_knobs(const FleetOptions& o) {
  agent::SessionKnobs k;
  k.lease_no_margin = o.bug == "fleet-lease-no-margin";
  k.lease_ignores_worker_revision = o.bug == "fleet-lease-ignores-worker-revision";
  k.drain_past_lease = o.bug == "fleet-drain-past-lease";
  return k;
}

}  // namespace

SimAgent::SimAgent(WorkerId id, std::string zone, double capacity, double rate, int64_t clock_base_ns,
                   const FleetOptions& o, AgentEnv& env)
    : id_(std::move(id)),
      zone_(std::move(zone)),
      capacity_(capacity),
      o_(o),
      env_(env),
      clock_(env, rate, clock_base_ns),
      session_config_{id_, session_timings(o), session_knobs(o)} {}

SimAgent::~SimAgent() = default;

void SimAgent::trace(const std::string& what) const {
  if (env_.tracing()) env_.trace("agent " + id_.str() + " " + what);
}

void SimAgent::log(agent::LogLevel, const std::string& fields) { trace(fields); }

// ---- The process ----

void SimAgent::start() {
  if (up_) return;
  up_ = true;
  paused_ = false;
  busy_ = false;
  ++life_;
  watch_gen_ = watch_request_ = 0;
  current_ = 0;
  // A new process: the fence starts from the durable table, with no lease,
  // and a new session.
  fence_ = std::make_unique<agent::FenceState>(clock_);
  fence_->load(durable_, durable_revision_);
  ++table_version_;
  core_ = std::make_unique<agent::SessionCore>(session_config_, *fence_, clock_, static_cast<agent::SessionIo&>(*this));
  trace("start held=" + std::to_string(fence_->held_count()));
  post([this] { core_->start(); });
}

void SimAgent::crash() {
  if (!up_) return;
  // SQLite commits atomically: a write in flight is durable or not.
  if (writing_ && env_.rng().chance(0.5)) write_durably(*writing_);
  writing_.reset();
  up_ = paused_ = busy_ = false;
  tasks_.clear();
  attempts_.clear();
  past_stats_ += core_->stats();
  core_.reset();
  fence_.reset();
  ++table_version_;
  ++life_;
  trace("crash");
  env_.changed(id_);
}

void SimAgent::pause() {
  if (!up_ || paused_) return;
  paused_ = true;
  trace("pause");
}

void SimAgent::resume() {
  if (!up_ || !paused_) return;
  paused_ = false;
  trace("resume");
  pump();
}

void SimAgent::shut_down() {
  if (!up_) return;
  post([this] {
    trace("shut down: leave");
    fence_->stop();  // every check fails from now on
    // Exit 0 once left (or refused): nothing in flight, so the "crash" loses
    // nothing. As its own task: the core must not be destroyed under itself.
    core_->leave(milliseconds(o_.scaled_ms(3000)), [this](bool) { post([this] { crash(); }); });
  });
}

AgentStats SimAgent::stats() const {
  AgentStats s = past_stats_;
  if (core_) s += core_->stats();
  return s;
}

// ---- The strand ----

void SimAgent::post(Task t) {
  tasks_.push_back(std::move(t));
  pump();
}

void SimAgent::pump() {
  if (pumping_) return;  // a task that posts: the loop below runs it
  pumping_ = true;
  while (up_ && !paused_ && !busy_ && !tasks_.empty()) {
    Task t = std::move(tasks_.front());
    tasks_.pop_front();
    t();
    env_.changed(id_);
  }
  pumping_ = false;
}

void SimAgent::timer(nanoseconds d, Task t) {
  uint64_t life = life_;
  env_.after(clock_.real_us(d), [this, life, t = std::move(t)]() mutable {
    if (!up_ || life_ != life) return;
    post(std::move(t));
  });
}

// ---- Durable writes and timers ----

void SimAgent::write_durably(const agent::GrantChanges& c) {
  if (!c.records().empty()) ++table_version_;
  for (const auto& [id, rec] : c.records()) durable_[id] = rec;
  if (c.revision()) durable_revision_ = *c.revision();
}

void SimAgent::persist(std::shared_ptr<const agent::GrantChanges> c, std::function<void(std::string)> done) {
  // Durable before it takes effect: the strand waits for the fsync.
  busy_ = true;
  writing_ = c;
  int64_t us = env_.rng().range(o_.fsync_min_us, o_.fsync_max_us);
  if (env_.faulty() && env_.rng().chance(o_.fsync_stall)) {
    us = env_.rng().range(1, static_cast<int64_t>(o_.stall_max_ms)) * 1000;
    trace("fsync stall " + std::to_string(us / 1000) + "ms");
  }
  uint64_t life = life_;
  env_.after(us, [this, life, c, done = std::move(done)]() mutable {
    if (!up_ || life_ != life) return;
    write_durably(*c);  // durable now, even if the process is stopped
    writing_.reset();
    busy_ = false;
    // The install and what follows run when the strand next runs, first.
    tasks_.push_front([this, done = std::move(done)] {
      done(std::string());
      ++table_version_;  // installed
    });
    pump();
  });
}

void SimAgent::after(std::chrono::nanoseconds d, std::function<void()> fn) {
  uint64_t armed = core_timers_;
  timer(d, [this, armed, fn = std::move(fn)] {
    if (armed == core_timers_) fn();
  });
}

std::string SimAgent::status() const {
  std::ostringstream os;
  os << id_.str() << ":";
  if (!up_) return os.str() + "down";
  os << (paused_ ? "paused" : "up") << (core_->registered() ? "/registered" : "/unregistered")
     << (core_->synced() ? "/synced" : "") << (core_->stopping() ? "/stopping" : "");
  auto left = std::chrono::duration_cast<milliseconds>(fence_->lease_remaining()).count();
  os << "/lease=" << left << "ms/rev=" << fence_->revision() << "/held=";
  bool first = true;
  for (const auto& s : fence_->held()) {
    os << (first ? "" : ",") << s.shard.str() << "@" << s.epoch;
    first = false;
  }
  return os.str();
}

std::vector<agent::ShardEpoch> SimAgent::accepting() const {
  if (!up_ || !fence_) return {};
  // The fence's own rule: a shard being drained stops at its deadline.
  return fence_->accepting();
}

std::optional<Epoch> SimAgent::accepts(const ShardId& shard) const {
  if (!up_ || !fence_) return std::nullopt;
  return fence_->admits(shard.str());
}

// ---- The program (CONTRACT.md, "Agent and program") ----

void SimAgent::program_drain(const agent::ShardEpoch& s, std::chrono::nanoseconds budget, std::function<void()> done) {
  // As ProgramLink: the core's budget, capped by drain_timeout.
  auto limit = std::min<std::chrono::nanoseconds>(budget, std::chrono::milliseconds(o_.drain_timeout_ms));
  program_call("drain", s, limit, o_.program_drain_max_ms, std::move(done));
}

void SimAgent::program_prepare(const agent::ShardEpoch& s, std::function<void()> done) {
  program_call("prepare", s, std::chrono::milliseconds(o_.prepare_timeout_ms), o_.program_prepare_max_ms,
               std::move(done));
}

void SimAgent::program_call(const char* call, const agent::ShardEpoch& s, std::chrono::nanoseconds limit,
                            uint64_t max_ms, std::function<void()> done) {
  // As ProgramLink: done once, at the program's answer or when the limit
  // runs out, whichever is first.
  auto once = std::make_shared<std::function<void()>>(std::move(done));
  auto finish = [once] {
    if (!*once) return;
    auto f = std::move(*once);
    *once = nullptr;
    f();
  };
  bool answers = !env_.rng().chance(o_.program_never);
  int64_t answer_ms = env_.rng().range(0, static_cast<int64_t>(max_ms));
  trace(std::string(call) + " " + s.shard.str() + "@" + std::to_string(s.epoch.value()) +
        " limit_ms=" + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(limit).count()) +
        (answers ? " answer_ms=" + std::to_string(answer_ms) : " never"));
  timer(limit, finish);
  if (answers) timer(std::chrono::milliseconds(answer_ms), finish);
}

}  // namespace tenure::sim
