#pragma once
// The HTTP/1.1 client every Tenure program uses: request forwarding, the
// peer transport, agents' heartbeats and watch streams, tenurectl. Like the
// server it keeps Beast inside net/*.cc (DESIGN.md, house style 12).
//
// Threads: one HttpClient per program, on the program's io_context; every
// method is thread-safe. Callbacks run on an io_context thread, never inside
// the call that started the request, and must not block.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/http_types.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace tenure::net {

namespace detail {
struct ClientCore;
}  // namespace detail

/// One request. `target` is the path and query ("/v1/shards?worker=w1").
struct ClientRequest {
  std::string method = "GET";
  std::string target = "/";
  std::string body;
  /// Extra fields (e.g. "authorization"). Host, Content-Length and, for a
  /// body, Content-Type (application/json unless given) are added.
  HeaderMap headers;
  /// The whole exchange, from the call to the last byte of the response
  /// (queueing, connecting, TLS, writing, reading). For stream(): up to the
  /// response headers.
  uint32_t timeout_ms = 10000;
  /// stream() only: the longest silence allowed between two pieces of body
  /// (the server should send keep-alive lines more often). 0 = none.
  uint32_t idle_timeout_ms = 30000;
  /// The request may run twice (duplicates are harmless, e.g. a batch of
  /// Raft messages): retried like an idempotent method when a reused
  /// connection turns out dead before any response byte.
  bool retry_safe = false;
};

/// A response of any status (a 404 or 503 is a response, not an error).
struct ClientResponse {
  int status = 0;
  HeaderMap headers;  ///< lower-case names
  std::string body;

  /// The header's value, or `fallback`. `name` must be lower case.
  std::string header(std::string_view name, std::string_view fallback = {}) const;
};

/// Why no response arrived.
enum class ClientErrc {
  bad_address,     ///< host_port does not parse
  resolve_failed,  ///< the host name does not resolve
  connect_failed,  ///< refused, unreachable
  tls_failed,      ///< handshake or certificate verification failed, or bad TLS files
  timeout,         ///< ClientRequest::timeout_ms (or idle_timeout_ms) ran out
  io_error,        ///< the connection broke during the exchange
  protocol_error,  ///< the response is not valid HTTP/1.1
  too_large,       ///< the response exceeds ClientOptions::max_response_bytes
  overloaded,      ///< too many requests already queued for that host
  cancelled,       ///< StreamHandle::cancel()
  shut_down,       ///< the client was shut down
};
using ClientError = Error<ClientErrc>;
using ClientResult = Result<ClientResponse, ClientErrc>;

/// The name of a code ("timeout"), for logs and messages.
std::string_view to_string(ClientErrc code);

/// Pool limits, timeouts and TLS. Every limit is per host:port.
struct ClientOptions {
  bool tls = false;           ///< dial HTTPS (a "https://" or "http://" prefix on host_port overrides)
  std::string tls_ca_file;    ///< PEM CA to verify servers; empty = the system store
  std::string tls_cert_file;  ///< PEM client certificate (for servers that require one)
  std::string tls_key_file;   ///< its private key
  /// When set (e.g. "controller"), a server certificate that names a Tenure
  /// identity (a tenure:// subjectAltName URI) must name this kind: an agent
  /// or a peer then never talks, nor sends its token, to a worker's or an
  /// admin's certificate posing as a controller. A certificate without any
  /// tenure:// URI is accepted (CN-only, as the servers accept it).
  std::string tls_server_kind;
  size_t max_connections_per_host = 64;  ///< beyond this, requests wait for a connection
  size_t max_idle_per_host = 16;         ///< keep-alive connections kept for reuse
  size_t max_queued_per_host = 4096;     ///< waiting requests beyond this fail "overloaded"
  uint32_t pool_idle_timeout_ms = 30000; ///< an idle pooled connection older than this is dropped
  size_t max_response_bytes = 64 << 20;
  size_t max_header_bytes = 64 << 10;
  std::string user_agent = "tenure";
};

/// A running stream(). cancel() is thread-safe and idempotent.
class StreamHandle {
 public:
  virtual ~StreamHandle() = default;
  /// Closes the stream; on_end then runs once with `cancelled` (unless it
  /// already ran). No on_data runs after on_end.
  virtual void cancel() = 0;
  /// False once on_end has been scheduled.
  virtual bool active() const = 0;
};

/// Called once when the response headers arrive (any status).
using StreamHeadersFn = std::function<void(int status, const HeaderMap& headers)>;
/// Called with each piece of the body as it arrives, in order; pieces do not
/// follow line boundaries (see LineSplitter).
using StreamDataFn = std::function<void(std::string_view chunk)>;
/// Called exactly once: nullopt when the server ended the body, else why not.
using StreamEndFn = std::function<void(std::optional<ClientError>)>;

/// A keep-alive connection pool per host:port, with request timeouts.
class HttpClient {
 public:
  /// `ioc` must outlive the client's operations. A bad TLS file does not
  /// throw: config_error() says so and every request fails `tls_failed`.
  explicit HttpClient(boost::asio::io_context& ioc, ClientOptions options = {});
  /// Calls shutdown().
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  /// Why the client cannot work (bad TLS files), if so.
  std::optional<ClientError> config_error() const;

  /// Sends `req` to host_port ("10.0.0.1:7001", "[::1]:7001", "name:7001",
  /// optionally prefixed "http://" or "https://") and calls `done` exactly
  /// once with the response or the error. A request that fails on a reused
  /// connection before any response byte is retried once on a fresh one, if
  /// its method is idempotent (GET, HEAD, PUT, DELETE, OPTIONS) or it is
  /// marked retry_safe.
  void request(const std::string& host_port, ClientRequest req,
               std::function<void(ClientResult)> done);

  /// A long-lived request (e.g. GET /v1/watch) on its own connection whose
  /// body is delivered as it arrives. Callbacks run in order on one strand.
  std::shared_ptr<StreamHandle> stream(const std::string& host_port, ClientRequest req,
                                       StreamHeadersFn on_headers, StreamDataFn on_data,
                                       StreamEndFn on_end);

  /// Dials host_port (a TCP connection only, closed at once) and calls
  /// `done(true)` iff it was refused: nothing listens there. Accepted, no
  /// answer within `timeout_ms`, or any other failure: `done(false)`.
  /// Called once, on an io thread, unless the client is shut down first.
  void probe_listener(const std::string& host_port, uint32_t timeout_ms, std::function<void(bool refused)> done);

  /// Closes every connection and stream and drops what is pending: once
  /// it returns, no callback of this client runs again (it waits for
  /// callbacks running on other threads), and later requests are dropped
  /// without a callback. For program exit. Idempotent.
  void shutdown();

  /// TCP connections opened so far (pool reuse shows in tests and metrics).
  uint64_t connections_opened() const;

  struct Impl;

 private:
  const std::shared_ptr<detail::ClientCore>& impl_core() const;
  std::shared_ptr<Impl> impl_;
};

}  // namespace tenure::net
