// HttpClient::probe_listener: is anything listening at an address? A TCP
// connection only (no TLS, no request), closed at once. What matters is the
// one answer a live process never gives: "connection refused", which the
// kernel of a machine whose process died answers for its port. A process
// that is alive but stopped, busy or cut off is connected to by its kernel
// (or not answered at all), never refused.

#include <chrono>
#include <memory>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "net/detail/client_shared.h"
#include "net/http_client.h"

namespace tenure::net {

using namespace detail;  // NOLINT: internal types of this module
namespace asio = boost::asio;
using tcp = asio::ip::tcp;

namespace {

struct Probe : std::enable_shared_from_this<Probe> {
  Probe(std::shared_ptr<ClientCore> c, std::function<void(bool)> d)
      : core(std::move(c)), strand(asio::make_strand(core->ioc)), resolver(strand), socket(strand), timer(strand),
        done(std::move(d)) {}

  void start(const HostPort& hp, uint32_t timeout_ms) {
    auto self = shared_from_this();
    timer.expires_after(std::chrono::milliseconds(timeout_ms));
    timer.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->finish(false);  // no answer in time: not proof of anything
    });
    boost::system::error_code ec;
    auto address = asio::ip::make_address(hp.host, ec);
    if (!ec) {
      socket.async_connect(tcp::endpoint(address, hp.port),
                           [self](const boost::system::error_code& e) { self->connected(e); });
      return;
    }
    resolver.async_resolve(hp.host, std::to_string(hp.port),
                           [self](const boost::system::error_code& e, const tcp::resolver::results_type& results) {
                             if (e) return self->finish(false);
                             asio::async_connect(self->socket, results,
                                                 [self](const boost::system::error_code& ce, const tcp::endpoint&) {
                                                   self->connected(ce);
                                                 });
                           });
  }

  void connected(const boost::system::error_code& ec) {
    // With several addresses, async_connect reports the last attempt's error:
    // refused there means every one was refused or unreachable.
    finish(ec == asio::error::connection_refused);
  }

  void finish(bool refused) {
    if (finished) return;
    finished = true;
    boost::system::error_code ignored;
    timer.cancel();
    resolver.cancel();
    socket.close(ignored);
    auto fn = std::move(done);
    core->gate.call([&] { fn(refused); });
  }

  std::shared_ptr<ClientCore> core;
  asio::strand<asio::io_context::executor_type> strand;
  tcp::resolver resolver;
  tcp::socket socket;
  asio::steady_timer timer;
  std::function<void(bool)> done;
  bool finished = false;
};

}  // namespace

void HttpClient::probe_listener(const std::string& host_port, uint32_t timeout_ms, std::function<void(bool)> done) {
  const auto& core = impl_core();
  auto ep = parse_endpoint(host_port, core->options.tls);
  if (!ep) {
    asio::post(core->ioc, [core, done = std::move(done)] { core->gate.call([&] { done(false); }); });
    return;
  }
  auto probe = std::make_shared<Probe>(core, std::move(done));
  asio::post(probe->strand, [probe, hp = ep.value().hp, timeout_ms] { probe->start(hp, timeout_ms); });
}

}  // namespace tenure::net
