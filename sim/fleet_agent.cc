// The simulated agent's process: its strand, timers, controller pool
// (dataplane_agent/controller_pool.cc) and durable writes.
#include "sim/fleet_agent.h"

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

SimAgent::SimAgent(WorkerId id, std::string zone, double capacity, double rate, int64_t clock_base_ns,
                   const FleetOptions& o, AgentEnv& env)
    : id_(std::move(id)),
      zone_(std::move(zone)),
      capacity_(capacity),
      o_(o),
      env_(env),
      clock_(env, rate, clock_base_ns),
      interval_(milliseconds(o.heartbeat_ms)) {}

SimAgent::~SimAgent() = default;

void SimAgent::log(const std::string& what) const {
  if (env_.tracing()) env_.trace("agent " + id_.str() + " " + what);
}

// ---- The process ----

void SimAgent::start() {
  if (up_) return;
  up_ = true;
  paused_ = false;
  busy_ = false;
  ++life_;
  stopping_ = false;
  registered_ = register_inflight_ = heartbeat_inflight_ = relist_inflight_ = synced_ = false;
  ++session_gen_;
  leases_.clear();
  relist_attempt_ = watch_attempt_ = 0;
  stop_watch();
  watch_lag_.reset();
  current_ = 0;
  // A new process: the fence starts from the durable table, with no lease.
  fence_ = std::make_unique<agent::FenceState>(clock_);
  fence_->load(durable_, durable_revision_);
  log("start held=" + std::to_string(fence_->held_count()));
  post([this] {
    send_register();
    schedule_tick();
  });
}

void SimAgent::crash() {
  if (!up_) return;
  // SQLite commits atomically: a write in flight is durable or not.
  if (writing_ && env_.rng().chance(0.5)) persist(*writing_);
  writing_.reset();
  up_ = paused_ = busy_ = false;
  tasks_.clear();
  attempts_.clear();
  fence_.reset();
  ++life_;
  log("crash");
  env_.changed(id_);
}

void SimAgent::pause() {
  if (!up_ || paused_) return;
  paused_ = true;
  log("pause");
}

void SimAgent::resume() {
  if (!up_ || !paused_) return;
  paused_ = false;
  log("resume");
  pump();
}

void SimAgent::shut_down() {
  if (!up_) return;
  post([this] {
    log("shut down: leave");
    stopping_ = true;
    fence_->stop();  // every check fails from now on
    stop_watch();
    if (!registered_) return crash();
    FleetRequest r;
    r.call = FleetCall::kLeave;
    r.worker = id_;
    call(std::move(r), milliseconds(o_.scaled_ms(3000)), [this](Reply rep) {
      if (!rep.ok()) return crash();
      auto c = changes();
      c->drop_all();
      commit(c, [this] { crash(); });  // exit 0: nothing in flight, so the "crash" loses nothing
    });
  });
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

// ---- The controller pool ----

void SimAgent::call(FleetRequest r, milliseconds timeout, ReplyFn done) {
  auto c = std::make_shared<Call>();
  c->request = std::move(r);
  c->request.worker = id_;
  c->timeout = timeout;
  c->done = std::move(done);
  attempt(std::move(c));
}

void SimAgent::attempt(std::shared_ptr<Call> c) {
  std::vector<NodeId> members = env_.controllers();
  if (members.empty()) {
    Reply r;
    r.sent = clock_.now();
    return c->done(std::move(r));
  }
  Attempt a;
  a.index = current_;
  a.endpoint = members[a.index % members.size()];
  a.sent = clock_.now();
  ++c->tried;
  FleetRequest req = c->request;
  req.id = env_.next_request_id();
  uint64_t id = req.id;
  milliseconds timeout = c->timeout;
  a.call = std::move(c);
  NodeId to = a.endpoint;
  attempts_.emplace(id, std::move(a));
  env_.send(address(), to, std::move(req));
  timer(timeout, [this, id] { finish_attempt(id, std::nullopt); });
}

void SimAgent::on_answer(const FleetAnswer& a) {
  if (!up_) return;
  post([this, a] {
    if (attempts_.count(a.id)) return finish_attempt(a.id, a);
    if (a.id == watch_request_) on_watch_answer(watch_gen_, a);
  });
}

void SimAgent::finish_attempt(uint64_t id, std::optional<FleetAnswer> a) {
  auto it = attempts_.find(id);
  if (it == attempts_.end()) return;  // answered or timed out already
  Attempt at = std::move(it->second);
  attempts_.erase(it);
  // A 503 or no answer at all: another member may do better (each once per call).
  if (!a || a->status == FleetStatus::kUnavailable) {
    if (current_ == at.index) current_ = at.index + 1;
    if (at.call->tried < env_.controllers().size()) return attempt(at.call);
  }
  Reply r;
  r.status = a ? a->status : FleetStatus::kUnavailable;
  if (a) r.answer = std::move(*a);
  r.sent = at.sent;
  r.endpoint = at.endpoint;
  at.call->done(std::move(r));
}

// ---- Durable writes ----

std::shared_ptr<agent::GrantChanges> SimAgent::changes() const {
  return std::make_shared<agent::GrantChanges>(fence_->table_for_planning());
}

void SimAgent::persist(const agent::GrantChanges& c) {
  for (const auto& [id, rec] : c.records()) durable_[id] = rec;
  if (c.revision()) durable_revision_ = *c.revision();
}

void SimAgent::commit(std::shared_ptr<agent::GrantChanges> c, Task then) {
  if (c->empty()) return then();
  if (c->records().empty()) {
    // Only the revision moves: no fsync (a restart re-lists anyway).
    fence_->install(*c);
    refresh_lease();
    return then();
  }
  // Durable before it takes effect: the strand waits for the fsync.
  busy_ = true;
  writing_ = c;
  int64_t us = env_.rng().range(o_.fsync_min_us, o_.fsync_max_us);
  if (env_.faulty() && env_.rng().chance(o_.fsync_stall)) {
    us = env_.rng().range(1, static_cast<int64_t>(o_.stall_max_ms)) * 1000;
    log("fsync stall " + std::to_string(us / 1000) + "ms");
  }
  uint64_t life = life_;
  env_.after(us, [this, life, c, then = std::move(then)]() mutable {
    if (!up_ || life_ != life) return;
    persist(*c);  // durable now, even if the process is stopped
    writing_.reset();
    busy_ = false;
    // The install and what follows run when the strand next runs.
    tasks_.push_front([this, c, then = std::move(then)] {
      fence_->install(*c);
      refresh_lease();
      if (env_.tracing()) log("installed granted=" + std::to_string(c->granted()) + " dropped=" + std::to_string(c->dropped()) + " " + status());
      then();
    });
    pump();
  });
}

std::string SimAgent::status() const {
  std::ostringstream os;
  os << id_.str() << ":";
  if (!up_) return os.str() + "down";
  os << (paused_ ? "paused" : "up") << (registered_ ? "/registered" : "/unregistered") << (synced_ ? "/synced" : "")
     << (stopping_ ? "/stopping" : "");
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
  if (!up_ || !fence_ || !fence_->lease_valid()) return {};
  return fence_->held();
}

}  // namespace tenure::sim
