// The client's pool: per host:port, a bounded set of keep-alive connections,
// a bounded queue of requests waiting for one, and a deadline per request.
//
// A request's fate and its connection's fate are decided separately: the
// request completes exactly once (response, error, or its deadline, which
// wins races through ClientOp::finished), while the connection goes back to
// the pool only after a clean exchange.
//
// Cost per request matters (the controller forwards through this pool and
// the benchmarks drive clusters with it), so a request has no timer or strand
// of its own: the connection that serves it enforces its deadline, and one
// sweeper timer covers requests waiting in a queue, which only happens when
// a host is at its connection limit.

#include "net/http_client.h"

#include <algorithm>
#include <deque>
#include <map>
#include <vector>

#include <boost/asio/post.hpp>

#include "net/detail/client_shared.h"
#include "net/detail/tls.h"

namespace tenure::net {

using namespace detail;  // NOLINT: internal types of this file's own module

std::string_view to_string(ClientErrc code) {
  switch (code) {
    case ClientErrc::bad_address: return "bad_address";
    case ClientErrc::resolve_failed: return "resolve_failed";
    case ClientErrc::connect_failed: return "connect_failed";
    case ClientErrc::tls_failed: return "tls_failed";
    case ClientErrc::timeout: return "timeout";
    case ClientErrc::io_error: return "io_error";
    case ClientErrc::protocol_error: return "protocol_error";
    case ClientErrc::too_large: return "too_large";
    case ClientErrc::overloaded: return "overloaded";
    case ClientErrc::cancelled: return "cancelled";
    case ClientErrc::shut_down: return "shut_down";
  }
  return "unknown";
}

std::string ClientResponse::header(std::string_view name, std::string_view fallback) const {
  auto it = headers.find(std::string(name));
  return it == headers.end() ? std::string(fallback) : it->second;
}

struct HttpClient::Impl final : PoolSink, std::enable_shared_from_this<HttpClient::Impl> {
  struct Host {
    size_t open = 0;  ///< connections, connecting or connected, idle or busy
    std::vector<std::shared_ptr<ClientConn>> idle;
    std::deque<std::shared_ptr<ClientOp>> waiting;
  };

  explicit Impl(std::shared_ptr<ClientCore> c) : core(std::move(c)), sweep_timer(core->ioc) {}

  void submit(std::shared_ptr<ClientOp> op);
  /// Completes `op` once. `now` runs the callback in this thread (an io
  /// thread, outside any lock); otherwise it is posted.
  void complete(const std::shared_ptr<ClientOp>& op, ClientResult result, bool now);
  void arm_sweep_locked(Clock::time_point deadline);
  void sweep();
  void exchange_done(const std::shared_ptr<ClientConn>& conn, const std::shared_ptr<ClientOp>& op,
                     ExchangeOutcome outcome) override;
  void skipped(const std::shared_ptr<ClientConn>& conn, bool usable) override;
  void release(const std::shared_ptr<ClientConn>& conn);
  void gone(const std::shared_ptr<ClientConn>& conn);
  std::shared_ptr<ClientConn> open_conn(Host& host, const Endpoint& ep);
  void shutdown();

  std::shared_ptr<ClientCore> core;
  std::mutex mu;
  std::map<std::string, Host> hosts;
  std::map<ClientConn*, std::weak_ptr<ClientConn>> live;
  bool shut = false;
  asio::steady_timer sweep_timer;                   ///< guarded by mu
  Clock::time_point sweep_at = Clock::time_point::max();  ///< when it fires
};

std::shared_ptr<ClientConn> HttpClient::Impl::open_conn(Host& host, const Endpoint& ep) {
  ++host.open;
  auto conn = make_client_conn(core, weak_from_this(), ep);
  live[conn.get()] = conn;
  return conn;
}

void HttpClient::Impl::submit(std::shared_ptr<ClientOp> op) {
  std::unique_lock lock(mu);
  if (shut) {
    lock.unlock();
    return complete(op, ClientError{ClientErrc::shut_down, "client shut down"}, false);
  }
  const ClientOptions& o = core->options;
  Host& h = hosts[op->ep.key];
  auto now = Clock::now();
  while (!h.idle.empty()) {
    auto conn = std::move(h.idle.back());
    h.idle.pop_back();
    if (op->fresh_only || conn->stale(now, o.pool_idle_timeout_ms)) {
      --h.open;
      live.erase(conn.get());
      conn->close();
      if (op->fresh_only) break;  // made room for a fresh one
      continue;
    }
    lock.unlock();
    conn->run(std::move(op));
    return;
  }
  if (h.open < o.max_connections_per_host) {
    auto conn = open_conn(h, op->ep);
    lock.unlock();
    conn->run(std::move(op));
    return;
  }
  if (h.waiting.size() >= o.max_queued_per_host) {
    lock.unlock();
    complete(op,
             ClientError{ClientErrc::overloaded,
                         "too many requests queued for " + host_field(op->ep.hp)},
             false);
    return;
  }
  arm_sweep_locked(op->deadline);
  h.waiting.push_back(std::move(op));
}

void HttpClient::Impl::complete(const std::shared_ptr<ClientOp>& op, ClientResult result,
                                bool now) {
  if (op->finished.exchange(true)) return;
  auto done = std::move(op->done);
  op->done = nullptr;
  if (!done) return;
  if (now) {
    core->gate.call([&] { done(std::move(result)); });
    return;
  }
  // Never inside request(): the caller may hold locks the callback takes.
  asio::post(core->ioc, [core = core, done = std::move(done), result = std::move(result)]() mutable {
    core->gate.call([&] { done(std::move(result)); });
  });
}

void HttpClient::Impl::arm_sweep_locked(Clock::time_point deadline) {
  if (deadline >= sweep_at) return;
  sweep_at = deadline;
  sweep_timer.expires_at(deadline);  // cancels an earlier wait, which then returns
  sweep_timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->sweep();
  });
}

void HttpClient::Impl::sweep() {
  std::vector<std::shared_ptr<ClientOp>> expired;
  {
    std::lock_guard lock(mu);
    sweep_at = Clock::time_point::max();
    if (shut) return;
    auto now = Clock::now();
    auto next = Clock::time_point::max();
    for (auto& [key, h] : hosts) {
      std::deque<std::shared_ptr<ClientOp>> keep;
      for (auto& op : h.waiting) {
        if (op->finished.load()) continue;
        if (op->deadline <= now) {
          expired.push_back(std::move(op));
        } else {
          next = std::min(next, op->deadline);
          keep.push_back(std::move(op));
        }
      }
      h.waiting.swap(keep);
    }
    if (next != Clock::time_point::max()) arm_sweep_locked(next);
  }
  for (auto& op : expired) {
    complete(op,
             ClientError{ClientErrc::timeout, "no connection to " + host_field(op->ep.hp) +
                                                  " became free within the request timeout"},
             true);
  }
}

void HttpClient::Impl::exchange_done(const std::shared_ptr<ClientConn>& conn,
                                     const std::shared_ptr<ClientOp>& op, ExchangeOutcome outcome) {
  bool retry = outcome.result && !op->finished.load() && outcome.retryable &&
               op->attempts == 0 && Clock::now() < op->deadline;
  // The connection first: a callback that sends its next request at once
  // should find this connection idle, not open another.
  if (outcome.reusable) {
    release(conn);
  } else {
    gone(conn);
  }
  if (retry) {
    op->attempts++;
    op->fresh_only = true;
    submit(op);
  } else if (outcome.result) {
    complete(op, std::move(*outcome.result), true);
  }
}

void HttpClient::Impl::skipped(const std::shared_ptr<ClientConn>& conn, bool usable) {
  if (usable) {
    release(conn);
  } else {
    gone(conn);
  }
}

void HttpClient::Impl::release(const std::shared_ptr<ClientConn>& conn) {
  std::unique_lock lock(mu);
  Host& h = hosts[conn->key()];
  if (!shut) {
    while (!h.waiting.empty()) {
      auto op = std::move(h.waiting.front());
      h.waiting.pop_front();
      if (op->finished.load()) continue;
      lock.unlock();
      conn->run(std::move(op));
      return;
    }
    if (h.idle.size() < core->options.max_idle_per_host) {
      conn->idle_since = Clock::now();
      h.idle.push_back(conn);
      return;
    }
  }
  --h.open;
  live.erase(conn.get());
  lock.unlock();
  conn->close();
}

void HttpClient::Impl::gone(const std::shared_ptr<ClientConn>& conn) {
  std::unique_lock lock(mu);
  Host& h = hosts[conn->key()];
  --h.open;
  live.erase(conn.get());
  if (shut) return;
  // A waiting request can use the slot this connection freed.
  while (!h.waiting.empty() && h.open < core->options.max_connections_per_host) {
    auto op = std::move(h.waiting.front());
    h.waiting.pop_front();
    if (op->finished.load()) continue;
    auto next = open_conn(h, op->ep);
    lock.unlock();
    next->run(std::move(op));
    return;
  }
}

void HttpClient::Impl::shutdown() {
  std::vector<std::shared_ptr<ClientOp>> ops;
  std::vector<std::shared_ptr<ClientConn>> conns;
  {
    std::lock_guard lock(mu);
    if (shut) return;
    shut = true;
    for (auto& [key, h] : hosts) {
      for (auto& op : h.waiting) ops.push_back(op);
      h.waiting.clear();
      h.idle.clear();
    }
    for (auto& [ptr, weak] : live) {
      if (auto c = weak.lock()) conns.push_back(std::move(c));
    }
    sweep_timer.cancel();
    sweep_at = Clock::time_point::max();
  }
  core->gate.close();
  for (auto& op : ops) complete(op, ClientError{ClientErrc::shut_down, "client shut down"}, false);
  for (auto& c : conns) c->close();
  std::vector<std::shared_ptr<StreamHandle>> streams;
  {
    std::lock_guard lock(core->streams_mu);
    for (auto& [id, weak] : core->streams) {
      if (auto s = weak.lock()) streams.push_back(std::move(s));
    }
  }
  for (auto& s : streams) s->cancel();
}

HttpClient::HttpClient(asio::io_context& ioc, ClientOptions options) {
  auto core = std::make_shared<ClientCore>(ioc);
  core->options = std::move(options);
  const ClientOptions& o = core->options;
  auto tls = make_client_tls(o.tls_ca_file, o.tls_cert_file, o.tls_key_file, o.tls_server_kind);
  if (tls) {
    core->tls = tls.value();
  } else {
    core->tls_error = ClientError{ClientErrc::tls_failed, tls.error().message};
  }
  impl_ = std::make_shared<Impl>(std::move(core));
}

HttpClient::~HttpClient() { shutdown(); }

std::optional<ClientError> HttpClient::config_error() const { return impl_->core->tls_error; }

void HttpClient::request(const std::string& host_port, ClientRequest req,
                         std::function<void(ClientResult)> done) {
  const auto& core = impl_->core;
  auto op = std::make_shared<ClientOp>();
  op->done = std::move(done);
  auto ep = parse_endpoint(host_port, core->options.tls);
  if (!ep) return impl_->complete(op, ep.error(), false);
  if (ep.value().tls && !core->tls) return impl_->complete(op, *core->tls_error, false);
  op->ep = std::move(ep.value());
  op->wire = serialize_request(op->ep, req, core->options);
  op->head = req.method == "HEAD";
  op->idempotent = req.retry_safe || req.method == "GET" || req.method == "HEAD" || req.method == "PUT" ||
                   req.method == "DELETE" || req.method == "OPTIONS";
  op->deadline = Clock::now() + std::chrono::milliseconds(req.timeout_ms);
  impl_->submit(std::move(op));
}

std::shared_ptr<StreamHandle> HttpClient::stream(const std::string& host_port, ClientRequest req,
                                                 StreamHeadersFn on_headers, StreamDataFn on_data,
                                                 StreamEndFn on_end) {
  const auto& core = impl_->core;
  auto ep = parse_endpoint(host_port, core->options.tls);
  if (!ep) return failed_stream(core, ep.error(), std::move(on_end));
  if (ep.value().tls && !core->tls) return failed_stream(core, *core->tls_error, std::move(on_end));
  return start_stream(core, ep.value(), std::move(req), std::move(on_headers), std::move(on_data),
                      std::move(on_end));
}

void HttpClient::shutdown() { impl_->shutdown(); }

const std::shared_ptr<ClientCore>& HttpClient::impl_core() const { return impl_->core; }

uint64_t HttpClient::connections_opened() const { return impl_->core->opened.load(); }

}  // namespace tenure::net
