// The listener: binds, accepts onto a fresh strand per connection, enforces
// the connection cap, and stops everything on stop().

#include "net/http_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "net/detail/server_shared.h"
#include "net/detail/tls.h"

namespace tenure::net {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
  Impl(asio::io_context& ioc_in, ServerOptions options, Handler handler)
      : ioc(ioc_in),
        shared(std::make_shared<detail::ServerShared>()),
        strand(asio::make_strand(ioc_in)),
        acceptor(strand),
        retry_timer(strand) {
    shared->options = std::move(options);
    shared->handler = std::move(handler);
  }

  Result<Ok, ServerErrc> start();
  void accept_next();
  void on_accept(const boost::system::error_code& ec, detail::Strand conn_strand);

  asio::io_context& ioc;
  std::shared_ptr<detail::ServerShared> shared;
  detail::Strand strand;
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;
  std::optional<tcp::socket> next_socket;
  std::atomic<uint16_t> port{0};
  bool started = false;
};

namespace {

Result<tcp::endpoint, ServerErrc> resolve_listen(asio::io_context& ioc, const ServerOptions& o) {
  boost::system::error_code ec;
  auto address = asio::ip::make_address(o.host, ec);
  if (!ec) return tcp::endpoint(address, o.port);
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(o.host, std::to_string(o.port), ec);
  if (ec || results.empty()) {
    return Error<ServerErrc>{ServerErrc::invalid_address,
                             "cannot resolve listen host '" + o.host + "': " + ec.message()};
  }
  return results.begin()->endpoint();
}

}  // namespace

Result<Ok, ServerErrc> HttpServer::Impl::start() {
  if (started) return Error<ServerErrc>{ServerErrc::already_started, "server already started"};
  const ServerOptions& o = shared->options;
  if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
    auto tls = detail::make_server_tls(o.tls_cert_file, o.tls_key_file, o.tls_ca_file);
    if (!tls) return Error<ServerErrc>{ServerErrc::tls_failed, tls.error().message};
    shared->tls = tls.value();
  }
  auto ep = resolve_listen(ioc, o);
  if (!ep) return ep.error();
  std::string where = o.host + ":" + std::to_string(o.port);
  boost::system::error_code ec;
  auto fail = [&](const char* step) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    return Error<ServerErrc>{ServerErrc::bind_failed,
                             std::string("cannot ") + step + " " + where + ": " + ec.message()};
  };
  acceptor.open(ep.value().protocol(), ec);
  if (ec) return fail("open a socket for");
  acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return fail("configure");
  acceptor.bind(ep.value(), ec);
  if (ec) return fail("bind");
  acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen on");
  port = acceptor.local_endpoint(ec).port();
  started = true;
  asio::post(strand, [self = shared_from_this()] { self->accept_next(); });
  return Ok{};
}

void HttpServer::Impl::accept_next() {
  if (!acceptor.is_open() || shared->stopped) return;
  auto conn_strand = asio::make_strand(ioc);
  next_socket.emplace(conn_strand);
  acceptor.async_accept(*next_socket, [self = shared_from_this(), conn_strand](
                                          const boost::system::error_code& ec) {
    self->on_accept(ec, conn_strand);
  });
}

void HttpServer::Impl::on_accept(const boost::system::error_code& ec, detail::Strand conn_strand) {
  if (ec == asio::error::operation_aborted || !acceptor.is_open() || shared->stopped) {
    boost::system::error_code ignored;
    if (next_socket) next_socket->close(ignored);  // accepted just as stop() began
    next_socket.reset();
    return;
  }
  if (ec) {
    // Out of descriptors or a transient kernel error: back off instead of
    // spinning on a listener that fails at once.
    retry_timer.expires_after(std::chrono::milliseconds(50));
    retry_timer.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
      if (!e) self->accept_next();
    });
    return;
  }
  tcp::socket socket = std::move(*next_socket);
  next_socket.reset();
  if (shared->open.load() >= shared->options.max_connections) {
    boost::system::error_code ignored;
    socket.close(ignored);  // over the cap: refuse at once rather than queue
    shared->refused_at_cap.fetch_add(1);
  } else {
    detail::start_connection(shared, conn_strand, std::move(socket));
  }
  accept_next();
}

HttpServer::HttpServer(asio::io_context& ioc, ServerOptions options, Handler handler)
    : impl_(std::make_shared<Impl>(ioc, std::move(options), std::move(handler))) {}

HttpServer::~HttpServer() { stop(); }

Result<Ok, ServerErrc> HttpServer::start() { return impl_->start(); }

uint16_t HttpServer::port() const { return impl_->port.load(); }

void HttpServer::stop() {
  auto shared = impl_->shared;
  shared->stopped.store(true);
  shared->gate.close();
  asio::post(impl_->strand, [self = impl_] {
    boost::system::error_code ignored;
    self->acceptor.close(ignored);
    self->retry_timer.cancel();
  });
  std::vector<std::shared_ptr<detail::ConnectionBase>> conns;
  {
    std::lock_guard lock(shared->conns_mu);
    for (auto& [id, weak] : shared->conns) {
      if (auto c = weak.lock()) conns.push_back(std::move(c));
    }
  }
  for (auto& c : conns) c->abort();
}

size_t HttpServer::connection_count() const { return impl_->shared->open.load(); }

uint64_t HttpServer::accepted_count() const { return impl_->shared->accepted.load(); }

ServerStats HttpServer::stats() const {
  const auto& s = *impl_->shared;
  ServerStats out;
  out.open_connections = s.open.load();
  out.max_connections = s.options.max_connections;
  out.accepted = s.accepted.load();
  out.refused_at_cap = s.refused_at_cap.load();
  out.malformed = s.malformed.load();
  out.too_large = s.too_large.load();
  out.non_utf8 = s.non_utf8.load();
  out.timeouts = s.timeouts.load();
  out.streams_refused = s.streams_refused.load();
  out.held_behind_stream = s.held_behind_stream.load();
  out.buffer_bytes = s.buffer_bytes.load();
  out.tls_new_sessions = s.tls_new_sessions.load();
  out.tls_resumed = s.tls_resumed.load();
  return out;
}

}  // namespace tenure::net
