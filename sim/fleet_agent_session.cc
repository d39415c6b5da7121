// The simulated agent's I/O towards the controllers, as agent::SessionIo:
// its calls through a model of the controller pool
// (dataplane_agent/controller_pool.cc) over the simulated network, and its
// watch stream as one poll at a time. The decisions are the session core's.
#include "sim/fleet_agent.h"

namespace tenure::sim {

using std::chrono::milliseconds;

namespace {

agent::ReplyStatus reply_status(FleetStatus s) {
  switch (s) {
    case FleetStatus::kOk: return agent::ReplyStatus::kOk;
    case FleetStatus::kUnavailable: return agent::ReplyStatus::kFailed;
    case FleetStatus::kNotFound: return agent::ReplyStatus::kNotFound;
    case FleetStatus::kDead: return agent::ReplyStatus::kWorkerDead;
    case FleetStatus::kGone:
    case FleetStatus::kRefused: return agent::ReplyStatus::kRefused;
  }
  return agent::ReplyStatus::kFailed;
}

/// The HTTP status each outcome stands for (logs only).
int http_status(FleetStatus s) {
  switch (s) {
    case FleetStatus::kOk: return 200;
    case FleetStatus::kUnavailable: return 503;
    case FleetStatus::kNotFound: return 404;
    case FleetStatus::kDead: return 409;
    case FleetStatus::kGone: return 410;
    case FleetStatus::kRefused: return 400;
  }
  return 0;
}

}  // namespace

// ---- The controller pool ----

void SimAgent::call(agent::Call c, std::function<void(agent::Reply)> done) {
  auto call = std::make_shared<Call>();
  FleetRequest& r = call->request;
  switch (c.kind) {
    case agent::CallKind::kRegister:
      r.call = FleetCall::kRegister;
      r.address = "sim://" + id_.str();
      r.zone = zone_;
      r.capacity = capacity_;
      r.prepares = o_.program;
      break;
    case agent::CallKind::kHeartbeat: r.call = FleetCall::kHeartbeat; break;
    case agent::CallKind::kList: r.call = FleetCall::kList; break;  // one page holds every shard
    case agent::CallKind::kRelease:
      r.call = FleetCall::kRelease;
      r.shards = std::move(c.shards);
      break;
    case agent::CallKind::kLeave: r.call = FleetCall::kLeave; break;
    case agent::CallKind::kPrepared:
      r.call = FleetCall::kPrepared;
      r.shards = std::move(c.shards);
      break;
  }
  r.worker = id_;
  call->timeout = c.timeout;
  call->done = std::move(done);
  attempt(std::move(call));
}

void SimAgent::attempt(std::shared_ptr<Call> c) {
  std::vector<NodeId> members = env_.controllers();
  if (members.empty()) {
    agent::Reply r;
    r.sent = clock_.now();
    r.detail = "no controllers";
    return post([c, r = std::move(r)] { c->done(r); });
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
    if (a.id == watch_request_) on_watch_answer(a);
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
  agent::Reply r;
  r.sent = at.sent;
  r.endpoint = at.endpoint.str();
  if (a) {
    r.status = reply_status(a->status);
    r.http_status = http_status(a->status);
    r.detail = to_string(a->status);
    r.lease = std::move(a->lease);
    r.list = std::move(a->list);
  } else {
    r.detail = "timeout";
  }
  at.call->done(std::move(r));
}

std::string SimAgent::endpoint() const {
  std::vector<NodeId> members = env_.controllers();
  return members.empty() ? std::string() : members[current_ % members.size()].str();
}

// ---- The watch: one poll at a time stands for the stream ----

void SimAgent::open_watch(uint64_t gen, Revision from) {
  (void)from;  // every poll asks from the revision applied so far
  std::vector<NodeId> members = env_.controllers();
  watch_gen_ = gen;
  watch_request_ = 0;
  if (members.empty()) return;
  watch_node_ = members[current_ % members.size()];
  poll_watch(gen);
}

void SimAgent::close_watch() { watch_gen_ = watch_request_ = 0; }

void SimAgent::poll_watch(uint64_t gen) {
  if (gen != watch_gen_ || !core_) return;
  FleetRequest r;
  r.call = FleetCall::kWatch;
  r.worker = id_;
  r.id = watch_request_ = env_.next_request_id();
  r.after = fence_->revision();
  env_.send(address(), watch_node_, r);
  // A stream that stays silent (its member crashed or was cut off) ends.
  uint64_t id = r.id;
  timer(milliseconds(3 * o_.watch_poll_ms + std::max(o_.scaled_ms(1000), o_.min_call_ms)), [this, gen, id] {
    if (gen != watch_gen_ || watch_request_ != id) return;
    watch_gen_ = watch_request_ = 0;
    core_->on_watch_end(gen, agent::WatchEnd::kUnavailable, 0);
  });
}

void SimAgent::on_watch_answer(const FleetAnswer& a) {
  uint64_t gen = watch_gen_;
  watch_request_ = 0;
  if (a.status != FleetStatus::kOk) {
    watch_gen_ = 0;
    bool gone = a.status == FleetStatus::kGone;
    return core_->on_watch_end(gen, gone ? agent::WatchEnd::kCompacted : agent::WatchEnd::kUnavailable,
                               http_status(a.status));
  }
  core_->on_watch_open(gen);
  // The events, then a progress line at the revision they reach.
  agent::WatchBatch batch;
  batch.events = a.events;
  agent::WatchEvent progress;
  progress.kind = agent::WatchEvent::Kind::kProgress;
  progress.revision = a.progress;
  batch.events.push_back(std::move(progress));
  core_->on_watch_batch(gen, std::move(batch));
  // The next poll asks from what the batch installed: if it is still being
  // made durable, the strand runs the poll after the install.
  timer(milliseconds(o_.watch_poll_ms), [this, gen] { poll_watch(gen); });
}

}  // namespace tenure::sim
