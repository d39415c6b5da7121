#include "dataplane_agent/agent.h"

#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include "common/log.h"
#include "common/thread_name.h"
#include "dataplane_agent/agent_db.h"
#include "dataplane_agent/controller_pool.h"
#include "dataplane_agent/data_store.h"
#include "dataplane_agent/fence_state.h"
#include "dataplane_agent/grant_store.h"
#include "dataplane_agent/http_api.h"
#include "dataplane_agent/metrics.h"
#include "net/certificate.h"
#include "dataplane_agent/grant_feed.h"
#include "dataplane_agent/program_link.h"
#include "dataplane_agent/session.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/io_runner.h"
#include "net/server_metrics.h"

namespace tenure::agent {

namespace asio = boost::asio;

struct Agent::Impl {
  Impl(config::AgentConfig c, AgentOptions o)
      : config(std::move(c)),
        options(o),
        clock(o.clock ? o.clock : &system_clock),
        fence(*clock),
        metrics(fence),
        guard(asio::make_work_guard(io)) {
    if (o.trace) fence.set_trace(o.trace);
  }

  Result<Ok, AgentErrc> open_storage();
  Result<Ok, AgentErrc> start_network();
  void stop_threads();

  config::AgentConfig config;
  AgentOptions options;
  SystemClock system_clock;
  const Clock* clock;
  FenceState fence;
  AgentMetrics metrics;
  asio::io_context io;  // outlives every object below that uses it
  asio::executor_work_guard<asio::io_context::executor_type> guard;
  std::vector<std::thread> threads;
  std::unique_ptr<DirLock> dir_lock;
  std::unique_ptr<GrantStore> grants;
  std::unique_ptr<DataStore> data;
  std::unique_ptr<net::HttpClient> client;
  std::unique_ptr<ControllerPool> pool;
  std::unique_ptr<GrantFeed> feed;       // outlives the session and the API, which call it
  std::unique_ptr<ProgramLink> program;  // outlives the session, which calls it
  std::unique_ptr<asio::steady_timer> feed_timer;
  void schedule_feed_progress();
  std::unique_ptr<Session> session;
  std::unique_ptr<HttpApi> api;
  std::unique_ptr<net::HttpServer> server;
  std::unique_ptr<asio::signal_set> signals;

  std::mutex mu;
  std::condition_variable cv;
  enum class Phase { kNew, kRunning, kStopped } phase = Phase::kNew;
  bool signalled = false;
  std::atomic<bool> failed{false};
};

Result<Ok, AgentErrc> Agent::Impl::open_storage() {
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) return AgentError{AgentErrc::kStorage, "cannot create data_dir " + config.data_dir + ": " + ec.message()};
  auto lock = DirLock::acquire(config.data_dir);
  if (!lock.ok()) return AgentError{AgentErrc::kStorage, lock.error().message};
  dir_lock = std::move(lock.value());
  WorkerId self(config.worker_id);
  auto store = GrantStore::open(config.data_dir + "/agent.db", self);
  if (!store.ok()) return AgentError{AgentErrc::kStorage, store.error().message};
  grants = std::move(store.value());
  auto loaded = grants->load();
  if (!loaded.ok()) return AgentError{AgentErrc::kStorage, loaded.error().message};
  size_t remembered = loaded.value().records.size();
  fence.load(std::move(loaded.value().records), loaded.value().revision);
  auto d = DataStore::open(config.data_dir + "/data.db", fence);
  if (!d.ok()) return AgentError{AgentErrc::kStorage, d.error().message};
  data = std::move(d.value());
  sync_dir(config.data_dir);
  log_info("agent", "event=opened data_dir=" + config.data_dir + " shards_remembered=" + std::to_string(remembered) +
                        " held_before_restart=" + std::to_string(fence.held_count()) +
                        " revision=" + std::to_string(fence.revision().value()));
  return Ok{};
}

Result<Ok, AgentErrc> Agent::Impl::start_network() {
  net::ClientOptions co;
  co.tls = config.tls_enabled() || !config.tls.ca_file.empty();
  co.tls_ca_file = config.tls.ca_file;
  co.tls_cert_file = config.tls.cert_file;
  co.tls_key_file = config.tls.key_file;
  co.tls_server_kind = "controller";  // our token goes to controllers only
  client = std::make_unique<net::HttpClient>(io, co);
  if (auto err = client->config_error()) return AgentError{AgentErrc::kClient, err->message};
  pool = std::make_unique<ControllerPool>(*client, config.controllers, config.auth.agent_token, *clock);
  SessionConfig sc;
  sc.worker = WorkerId(config.worker_id);
  sc.advertise = config.advertise;
  sc.zone = config.zone;
  sc.capacity = config.capacity;
  sc.heartbeat_interval = std::chrono::milliseconds(config.heartbeat_interval_ms);
  ProgramLinkOptions po;
  po.url = config.app.url;
  po.drain_timeout = std::chrono::milliseconds(config.app.drain_timeout_ms);
  po.prepare_timeout = std::chrono::milliseconds(config.app.prepare_timeout_ms);
  po.token = config.app.token;
  po.handler = options.handler;
  program = std::make_unique<ProgramLink>(io, *client, metrics, po);
  if (program->enabled()) {
    log_info("agent", "event=program worker=" + config.worker_id +
                          " via=" + (options.handler ? std::string("handler") : "url=" + config.app.url) +
                          " prepare_timeout_ms=" + std::to_string(config.app.prepare_timeout_ms) +
                          " drain_timeout_ms=" + std::to_string(config.app.drain_timeout_ms));
  }
  sc.program = program.get();
  feed = std::make_unique<GrantFeed>([this] { return fence.held(); }, [this] { return fence.revision(); });
  sc.feed = feed.get();
  session = std::make_unique<Session>(io, *client, *pool, *grants, fence, metrics, *clock, sc);
  session->on_fatal([this](const std::string&) {
    failed = true;
    std::lock_guard lock(mu);
    cv.notify_all();
  });
  api = std::make_unique<HttpApi>(sc.worker, fence, *data, metrics, [this] { return session->synced(); });
  api->serve_grant_feed(*feed);
  feed_timer = std::make_unique<asio::steady_timer>(io);
  schedule_feed_progress();
  if (!config.auth.client_token.empty()) {
    api->require_client_token(config.auth.client_token);
  } else {
    log_warn("security", "event=client_auth_disabled worker=" + config.worker_id +
                             " hint=\"no auth.client_token: anyone who can reach " + config.listen.str() +
                             " may write through the fence (docs/security.md)\"");
  }
  if (config.auth.agent_token.empty()) {
    log_warn("security", "event=no_agent_token worker=" + config.worker_id +
                             " hint=\"controllers with auth will refuse this agent (docs/security.md)\"");
  }
  net::register_certificate_expiry(metrics.registry(), config.tls.cert_file, config.tls.ca_file);
  if (options.serve_http) {
    net::ServerOptions so;
    so.host = config.listen.host;
    so.port = config.listen.port;
    so.tls_cert_file = config.tls.cert_file;
    so.tls_key_file = config.tls.key_file;
    so.tls_ca_file = config.tls_enabled() ? config.tls.ca_file : "";
    // A descriptor per connection: raise the soft limit, keep the cap below it.
    so.max_connections = net::connection_cap(so.max_connections, net::raise_fd_limit());
    server = std::make_unique<net::HttpServer>(io, so, [this](net::HttpRequest req, std::shared_ptr<net::Responder> res) {
      api->handle(std::move(req), std::move(res));
    });
    metrics.set_server_stats([this] { return server ? server->stats() : net::ServerStats{}; });
    auto started = server->start();
    if (!started.ok()) {
      return AgentError{AgentErrc::kListen, "cannot listen on " + config.listen.str() + ": " + started.error().message};
    }
  }
  return Ok{};
}

void Agent::Impl::schedule_feed_progress() {
  // A progress line keeps idle /v1/grants/watch streams alive (and tells
  // the program the agent's revision).
  feed_timer->expires_after(std::chrono::seconds(5));
  feed_timer->async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    feed->tick();
    schedule_feed_progress();
  });
}

void Agent::Impl::stop_threads() {
  if (feed) feed->close();
  if (feed_timer) feed_timer->cancel();
  if (server) server->stop();
  if (client) client->shutdown();
  signals.reset();
  guard.reset();
  io.stop();
  for (auto& t : threads) t.join();
  threads.clear();
}

Agent::Agent(config::AgentConfig config, AgentOptions options)
    : impl_(std::make_unique<Impl>(std::move(config), options)) {}

Agent::~Agent() { shutdown(); }

Result<Ok, AgentErrc> Agent::start() {
  Impl& p = *impl_;
  {
    std::lock_guard lock(p.mu);
    if (p.phase != Impl::Phase::kNew) return AgentError{AgentErrc::kState, "start() may be called once"};
    p.phase = Impl::Phase::kRunning;
  }
  auto storage = p.open_storage();
  if (!storage.ok()) return storage;
  auto network = p.start_network();
  if (!network.ok()) {
    p.stop_threads();
    return network;
  }
  int n = std::max(1, p.options.io_threads);
  for (int i = 0; i < n; ++i) p.threads.emplace_back([&p] {
    name_this_thread("agent-io");
    net::run_guarded(p.io, "agent");
  });
  p.session->start();
  log_info("agent", "event=started worker=" + p.config.worker_id + " listen=" +
                        (p.options.serve_http ? p.config.listen.host + ":" + std::to_string(port()) : "none"));
  return Ok{};
}

FenceResult Agent::fence(const ShardId& shard, Epoch epoch) const { return impl_->fence.check(shard.str(), epoch); }

FenceResult Agent::fence(std::string_view shard, Epoch epoch) const { return impl_->fence.check(shard, epoch); }

FenceResult Agent::with_fence(std::string_view shard, Epoch epoch, const std::function<void()>& write) const {
  return impl_->fence.with_fence(shard, epoch, write);
}

bool Agent::ready() const {
  return impl_->session && impl_->session->synced() && impl_->fence.lease_valid() && !impl_->fence.stopped();
}

bool Agent::wait_ready(std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ready()) {
    if (std::chrono::steady_clock::now() >= deadline || impl_->failed) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

std::vector<ShardEpoch> Agent::grants() const { return impl_->fence.held(); }
Revision Agent::revision() const { return impl_->fence.revision(); }
uint16_t Agent::port() const { return impl_->server ? impl_->server->port() : 0; }
std::string Agent::metrics_text() const { return impl_->metrics.serialize(); }
bool Agent::failed() const { return impl_->failed; }

void Agent::shutdown(std::chrono::milliseconds leave_timeout) {
  Impl& p = *impl_;
  {
    std::lock_guard lock(p.mu);
    if (p.phase != Impl::Phase::kRunning) {
      p.phase = Impl::Phase::kStopped;
      return;
    }
    p.phase = Impl::Phase::kStopped;
  }
  bool was_running = !p.threads.empty();
  if (was_running) log_info("agent", "event=stopping worker=" + p.config.worker_id);
  // 1. Refuse every write from now on, and wait for those in flight.
  p.fence.stop();
  if (p.data) p.data->stop();
  // 2. Tell the controllers, so they move our shards without waiting out the lease.
  if (p.session && !p.threads.empty()) {
    auto left = std::make_shared<std::promise<bool>>();
    auto result = left->get_future();
    p.session->leave(leave_timeout, [left](bool ok) { left->set_value(ok); });
    // The leave call may try every controller; give it a little beyond one attempt.
    if (result.wait_for(leave_timeout + std::chrono::milliseconds(500)) != std::future_status::ready) {
      log_warn("agent", "event=leave_timeout action=exit_anyway hint=\"the controllers will wait out the lease\"");
    }
  }
  // 3. The program hears of the shards the leave took (briefly: it may be gone).
  if (p.program) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (p.program->pending() > 0 && !p.threads.empty() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    p.program->shutdown();
  }
  // 4. Close the network; the stores close (checkpointing the WAL) as they go.
  p.stop_threads();
  p.session.reset();
  p.program.reset();
  p.api.reset();
  p.server.reset();
  p.feed_timer.reset();
  p.feed.reset();
  p.pool.reset();
  p.client.reset();
  p.data.reset();
  p.grants.reset();
  p.dir_lock.reset();
  if (was_running) log_info("agent", "event=stopped worker=" + p.config.worker_id);
}

int Agent::run_until_signal() {
  Impl& p = *impl_;
  {
    std::lock_guard lock(p.mu);
    if (p.phase != Impl::Phase::kRunning) return 1;
    p.signals = std::make_unique<asio::signal_set>(p.io, SIGTERM, SIGINT);
  }
  p.signals->async_wait([&p](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log_info("agent", "event=signal signal=" + std::to_string(sig));
    std::lock_guard lock(p.mu);
    p.signalled = true;
    p.cv.notify_all();
  });
  {
    std::unique_lock lock(p.mu);
    p.cv.wait(lock, [&p] { return p.signalled || p.failed.load(); });
  }
  shutdown();
  return p.failed ? 1 : 0;
}

}  // namespace tenure::agent
