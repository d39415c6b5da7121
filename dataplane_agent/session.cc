// Session's I/O shell: the core's calls as HTTP requests on the controller
// pool, its durable writes as GrantStore transactions, its timers as
// steady_timers on the control strand (the watch stream is session_watch.cc).
#include "dataplane_agent/session.h"

#include <boost/asio/post.hpp>

#include "common/log.h"
#include "dataplane_agent/messages.h"
#include "dataplane_agent/grant_feed.h"
#include "dataplane_agent/program_link.h"
#include "dataplane_agent/session_impl.h"

namespace tenure::agent {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

/// The HTTP outcome of `kind` as the core distinguishes it; decodes the body.
Reply classify(CallKind kind, const PoolReply& r) {
  Reply out;
  out.http_status = r.status();
  out.endpoint = r.endpoint;
  out.sent = r.sent;
  if (!r.result.ok()) {
    out.detail = std::string(net::to_string(r.result.code()));
    return out;  // kFailed
  }
  const std::string& body = r.result.value().body;
  switch (kind) {
    case CallKind::kRegister:
    case CallKind::kHeartbeat: {
      int s = r.status();
      if (s != 200 && s != 404 && s != 409) {
        out.detail = error_code_of(body);
        return out;  // kFailed
      }
      if (s == 404) {
        out.status = ReplyStatus::kNotFound;
        out.detail = error_code_of(body);
        return out;
      }
      if (s == 409) {
        out.detail = error_code_of(body);
        out.status = out.detail == "worker_dead" ? ReplyStatus::kWorkerDead : ReplyStatus::kRefused;
        return out;
      }
      auto parsed = parse_lease_answer(body);
      if (!parsed.value) {
        out.status = ReplyStatus::kBadAnswer;
        out.detail = parsed.error;
        return out;
      }
      out.status = ReplyStatus::kOk;
      out.lease = std::move(*parsed.value);
      return out;
    }
    case CallKind::kList: {
      if (r.status() != 200) return out;  // kFailed
      auto parsed = parse_shard_list(body);
      if (!parsed.value) {
        out.status = ReplyStatus::kBadAnswer;
        out.detail = parsed.error;
        return out;
      }
      out.status = ReplyStatus::kOk;
      out.list = std::move(*parsed.value);
      return out;
    }
    case CallKind::kRelease:
    case CallKind::kPrepared:
    case CallKind::kLeave:
      if (r.ok()) out.status = ReplyStatus::kOk;
      return out;
  }
  return out;
}

}  // namespace

Session::Impl::Impl(asio::io_context& io_, net::HttpClient& client_, ControllerPool& pool_, GrantStore& store_,
                    FenceState& fence_, AgentMetrics& metrics_, const Clock& clock_, SessionConfig config_)
    : io(io_),
      strand(asio::make_strand(io_)),
      client(client_),
      pool(pool_),
      store(store_),
      metrics(metrics_),
      config(std::move(config_)),
      core(SessionCoreConfig{config.worker, SessionTimings::for_interval(config.heartbeat_interval), {}}, fence_,
           clock_, *this) {}

void Session::Impl::post(std::function<void()> fn) {
  asio::post(strand, [this, fn = std::move(fn)] {
    fn();
    // Readiness for other threads (Session::synced()).
    synced.store(core.synced());
  });
}

std::string Session::Impl::worker_path(const char* action) const {
  return "/v1/workers/" + config.worker.str() + "/" + action;
}

bool Session::Impl::program_drains() const { return config.program && config.program->enabled(); }

void Session::Impl::program_drain(const ShardEpoch& s, std::chrono::nanoseconds budget, std::function<void()> done) {
  // The answer comes on an io thread; the core takes it on the strand.
  config.program->drain(s, budget, [this, done = std::move(done)]() mutable { post(std::move(done)); });
}

void Session::Impl::program_prepare(const ShardEpoch& s, std::function<void()> done) {
  config.program->prepare(s, [this, done = std::move(done)]() mutable { post(std::move(done)); });
}

void Session::Impl::program_abandon(const ShardEpoch& s) {
  if (config.program) config.program->changes({{ProgramChange::Kind::kRevoke, s.shard, s.epoch, "not_granted", {}}});
}

void Session::Impl::program_changes(std::vector<ProgramChange> changes) {
  if (config.feed) config.feed->push(changes);
  if (config.program) config.program->changes(changes);
}

void Session::Impl::program_lease_lost() {
  if (config.feed) config.feed->lease_lost();
  if (config.program) config.program->lease_lost();
}

void Session::Impl::start() {
  post([this] {
    log_info("agent", "event=starting worker=" + config.worker.str() + " advertise=" + config.advertise +
                          " controllers=" + pool.current());
    core.start();
  });
}

void Session::Impl::leave(milliseconds timeout, std::function<void(bool)> done) {
  post([this, timeout, done = std::move(done)]() mutable { core.leave(timeout, std::move(done)); });
}

void Session::Impl::call(Call c, std::function<void(Reply)> done) {
  std::string method = "POST";
  std::string target;
  std::string body = "{}";
  switch (c.kind) {
    case CallKind::kRegister:
      target = worker_path("register");
      body = register_body(config.advertise, config.zone, config.capacity, program_drains());
      break;
    case CallKind::kHeartbeat: target = worker_path("heartbeat"); break;
    case CallKind::kList:
      method = "GET";
      body.clear();
      target = "/v1/shards?worker=" + net::percent_encode(config.worker.str()) +
               "&limit=" + std::to_string(c.page_limit);
      if (!c.page_token.empty()) target += "&continue=" + net::percent_encode(c.page_token);
      break;
    case CallKind::kRelease:
      target = worker_path("release");
      body = release_body(c.shards);
      break;
    case CallKind::kPrepared:
      target = worker_path("prepared");
      body = release_body(c.shards);
      break;
    case CallKind::kLeave: target = worker_path("leave"); break;
  }
  CallKind kind = c.kind;
  pool.call(method, target, std::move(body), static_cast<uint32_t>(c.timeout.count()),
            [this, kind, done = std::move(done)](PoolReply r) mutable {
              post([kind, done = std::move(done), r = std::move(r)] { done(classify(kind, r)); });
            });
}

void Session::Impl::persist(std::shared_ptr<const GrantChanges> c, std::function<void(std::string)> done) {
  // On the strand, synchronously: the strand waits for the fsync.
  auto saved = store.save(*c);
  done(saved.ok() ? std::string() : saved.error().message);
}

void Session::Impl::after(std::chrono::nanoseconds d, std::function<void()> fn) {
  uint64_t id = next_timer++;
  auto timer = std::make_shared<asio::steady_timer>(strand, d);
  timers.emplace(id, timer);
  timer->async_wait([this, id, fn = std::move(fn)](const boost::system::error_code& ec) {
    timers.erase(id);
    if (ec) return;
    fn();
    synced.store(core.synced());
  });
}

void Session::Impl::cancel_timers() {
  for (auto& [id, timer] : timers) timer->cancel();
}

int64_t Session::Impl::uniform(int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); }

void Session::Impl::log(LogLevel level, const std::string& fields) {
  switch (level) {
    case LogLevel::kDebug: return;
    case LogLevel::kInfo: return log_info("agent", fields);
    case LogLevel::kWarn: return log_warn("agent", fields);
    case LogLevel::kError: return log_error("agent", fields);
  }
}

void Session::Impl::fatal(const std::string& message) {
  synced = false;
  if (on_fatal) on_fatal(message);
}

Session::Session(asio::io_context& io, net::HttpClient& client, ControllerPool& pool, GrantStore& store,
                 FenceState& fence, AgentMetrics& metrics, const Clock& clock, SessionConfig config)
    : impl_(std::make_shared<Impl>(io, client, pool, store, fence, metrics, clock, std::move(config))) {}

Session::~Session() = default;

void Session::start() { impl_->start(); }

void Session::leave(milliseconds timeout, std::function<void(bool)> done) { impl_->leave(timeout, std::move(done)); }

void Session::on_fatal(std::function<void(const std::string&)> fn) { impl_->on_fatal = std::move(fn); }

bool Session::synced() const { return impl_->synced.load(); }

}  // namespace tenure::agent
