#pragma once
// Internal to net/: the pieces of the client shared by the pool
// (http_client.cc), pooled connections (client_connection.cc) and streams
// (client_stream.cc). Asio only, never Beast.

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "net/detail/user_gate.h"
#include "net/http_client.h"

namespace tenure::net::detail {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Strand = asio::strand<asio::io_context::executor_type>;

/// Where to dial: the pool key is "scheme://host:port".
struct Endpoint {
  std::string key;
  HostPort hp;
  bool tls = false;
};
Result<Endpoint, ClientErrc> parse_endpoint(const std::string& host_port, bool default_tls);

/// "Host" field value for `hp` (brackets around IPv6).
std::string host_field(const HostPort& hp);

/// A TCP socket, with TLS on top when a context is given, on its own strand.
/// Every method but the constructor runs on the strand.
class Transport {
 public:
  Transport(asio::io_context& ioc, std::shared_ptr<asio::ssl::context> tls);
  Strand& strand() { return strand_; }
  tcp::socket& socket() { return socket_; }
  bool tls() const { return tls_.has_value(); }

  /// Resolves (unless `hp.host` is an IP literal), connects, and does the
  /// TLS handshake (SNI and host name verification). `done` gets nullopt on
  /// success. Deadlines are the caller's: it calls close() on expiry.
  void connect(const HostPort& hp, std::function<void(std::optional<ClientError>)> done);
  /// Closes the socket; pending operations complete with operation_aborted.
  void close();
  /// Calls f(stream) with the TLS stream or the plain socket.
  template <typename F>
  decltype(auto) with_stream(F&& f) {
    if (tls_) return f(*tls_);
    return f(socket_);
  }

 private:
  Strand strand_;
  tcp::resolver resolver_;
  tcp::socket socket_;
  std::shared_ptr<asio::ssl::context> ctx_;
  std::string tls_server_;  ///< the server tls_ dials (its sessions' key); outlives tls_
  std::optional<asio::ssl::stream<tcp::socket&>> tls_;
};

class ClientConn;

/// One request in the pool, from request() to its callback. Its deadline is
/// enforced by the pool's queue sweeper while it waits for a connection and
/// by the connection's own (lazy) deadline once it runs: no timer or strand
/// per request.
struct ClientOp {
  Endpoint ep;
  std::string wire;  ///< the serialized request
  bool head = false;
  bool idempotent = false;
  bool fresh_only = false;  ///< a retry: do not take an idle connection
  int attempts = 0;
  Clock::time_point deadline;
  std::function<void(ClientResult)> done;  ///< touched only by the completer
  std::atomic<bool> finished{false};       ///< the first completer wins
};

/// How an exchange on a pooled connection ended.
struct ExchangeOutcome {
  std::optional<ClientResult> result;
  bool reusable = false;   ///< the connection may serve another request
  bool retryable = false;  ///< failed on a reused connection before any response byte
};

/// What a pooled connection reports to its pool.
class PoolSink {
 public:
  virtual ~PoolSink() = default;
  /// On the connection's strand, after each exchange.
  virtual void exchange_done(const std::shared_ptr<ClientConn>& conn,
                             const std::shared_ptr<ClientOp>& op, ExchangeOutcome outcome) = 0;
  /// `op` was already over when the connection got to it.
  virtual void skipped(const std::shared_ptr<ClientConn>& conn, bool usable) = 0;
};

/// A keep-alive connection to one endpoint, serving one request at a time.
class ClientConn {
 public:
  virtual ~ClientConn() = default;
  /// Serves `op` (connecting first if needed) and fails it `timeout` at
  /// its deadline. Any thread; runs at once when called on the connection's
  /// own strand (a callback sending the next request).
  virtual void run(std::shared_ptr<ClientOp> op) = 0;
  /// Closes the connection. Any thread.
  virtual void close() = 0;
  /// While idle in the pool (no operation pending): too old, or the server
  /// closed it (a FIN or stray bytes waiting on the socket).
  virtual bool stale(Clock::time_point now, uint32_t max_idle_ms) = 0;

  const std::string& key() const { return key_; }
  Clock::time_point idle_since{};

 protected:
  std::string key_;
};

/// What the pool, its connections and the streams share; outlives the
/// HttpClient while operations drain.
struct ClientCore {
  explicit ClientCore(asio::io_context& ioc_in) : ioc(ioc_in) {}
  asio::io_context& ioc;
  ClientOptions options;
  std::shared_ptr<asio::ssl::context> tls;  ///< for https endpoints; null if tls_error
  std::optional<ClientError> tls_error;
  UserGate gate;  ///< every callback into the program passes here
  std::atomic<uint64_t> opened{0};

  std::mutex streams_mu;
  std::map<uint64_t, std::weak_ptr<StreamHandle>> streams;  ///< for shutdown
  uint64_t next_stream = 0;
};

/// A pooled connection to `ep`.
std::shared_ptr<ClientConn> make_client_conn(std::shared_ptr<ClientCore> core,
                                             std::weak_ptr<PoolSink> pool, const Endpoint& ep);

/// Starts a stream() on its own connection.
std::shared_ptr<StreamHandle> start_stream(std::shared_ptr<ClientCore> core, const Endpoint& ep,
                                           ClientRequest req, StreamHeadersFn on_headers,
                                           StreamDataFn on_data, StreamEndFn on_end);

/// A stream that failed before it started: on_end(error) runs soon.
std::shared_ptr<StreamHandle> failed_stream(std::shared_ptr<ClientCore> core, ClientError error,
                                            StreamEndFn on_end);

/// Serializes a request for `ep`.
std::string serialize_request(const Endpoint& ep, const ClientRequest& req,
                              const ClientOptions& options);

}  // namespace tenure::net::detail
