#pragma once
// The HTTP/1.1 server every Tenure program embeds (controller API, peer
// transport, agent API). Boost.Beast stays inside net/*.cc: this header only
// forward-declares boost::asio::io_context (DESIGN.md, house style 12).
//
// Threads: the server runs on the io_context it is given, which may be run by
// several threads. Each connection lives on its own strand; the Handler is
// called on that strand and must not block. A Responder may be used from any
// thread, at any later time (e.g. once a Raft entry commits).

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/result.h"
#include "net/http_types.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace tenure::net {

/// Limits and TLS settings of one listener. Every wait on the network has a
/// timeout and every queue a bound (DESIGN.md, house style 6).
/// A body limit for the requests whose target starts with `path_prefix`.
struct BodyLimit {
  std::string path_prefix;
  size_t max_bytes = 0;
};

struct ServerOptions {
  std::string host = "127.0.0.1";  ///< address to bind ("0.0.0.0", "::1", a name)
  uint16_t port = 0;               ///< 0 = an ephemeral port; see HttpServer::port()
  size_t max_body_bytes = 1 << 20;     ///< larger bodies get 413 too_large, unread
  /// Exceptions to max_body_bytes by target prefix, first match wins (the
  /// controller's peer routes take larger batches than any client sends).
  std::vector<BodyLimit> body_limits;
  size_t max_header_bytes = 16 << 10;  ///< request line + fields; larger gets 431
  uint32_t read_timeout_ms = 10000;    ///< from a request's first byte to its last (and TLS handshake)
  uint32_t idle_timeout_ms = 60000;    ///< keep-alive connection with nothing in flight
  uint32_t write_timeout_ms = 10000;   ///< one socket write (a client that stops reading)
  std::string tls_cert_file;  ///< PEM chain; with tls_key_file, the listener speaks HTTPS only
  std::string tls_key_file;   ///< PEM private key
  std::string tls_ca_file;    ///< PEM CA bundle: when set, clients must present a cert it signed
  size_t max_connections = 10000;       ///< further connections are closed at accept; keep it below RLIMIT_NOFILE (raise_fd_limit)
  size_t max_pipelined_requests = 16;   ///< per connection: requests read but not yet answered
  size_t max_stream_queued_bytes = 16 << 20;  ///< per stream: beyond this the connection is cut
};

/// What a listener has seen since start: exported as metrics by the
/// programs (docs/architecture.md, "Limits"). Counters only grow.
struct ServerStats {
  size_t open_connections = 0;
  size_t max_connections = 0;          ///< the cap (ServerOptions::max_connections)
  uint64_t accepted = 0;
  uint64_t refused_at_cap = 0;         ///< closed at accept: the cap was reached
  uint64_t malformed = 0;              ///< 400: not HTTP/1.1 the parser accepts
  uint64_t too_large = 0;              ///< 413 body, 431 header
  uint64_t non_utf8 = 0;               ///< 400: path, query or header not UTF-8
  uint64_t timeouts = 0;               ///< closed by the read (request or idle) or write timeout
  uint64_t streams_refused = 0;        ///< 400: a stream with a request pipelined behind it
  uint64_t held_behind_stream = 0;     ///< requests that waited for a stream on their connection to end
  /// What the open connections' read and write buffers hold now (their
  /// capacity): between requests a few KB each, more during a large
  /// request, answer or a stream's burst.
  size_t buffer_bytes = 0;
  uint64_t tls_new_sessions = 0;  ///< TLS handshakes completed with a new session (a full handshake)
  uint64_t tls_resumed = 0;       ///< TLS handshakes that resumed a session (no certificates, no signature)
};

namespace detail {
class ConnectionBase;
}  // namespace detail

/// The answer to one request. Shared between the server and the handler;
/// every method is thread-safe. Exactly one of reply() or start_stream() ...
/// end_stream() should be used; later calls are ignored. If the last
/// reference is dropped without an answer, the client gets 500.
class Responder {
 public:
  /// Sends a complete response. Ignored after the first reply/start_stream.
  void reply(HttpResponse response);

  /// Starts a chunked response (e.g. an ndjson watch). False if the
  /// connection is gone or an answer was already started. A stream holds its
  /// connection until it ends (no later request is read meanwhile), so it
  /// must be the last request pipelined on it: if another was already
  /// handed to the handler, the stream is refused with 400 (answered here)
  /// and false is returned.
  bool start_stream(int status, std::string content_type,
                    std::vector<std::pair<std::string, std::string>> headers = {});
  /// Queues one chunk; data is sent in order, as soon as the socket allows.
  /// False when the connection is gone (or the stream is over); the caller
  /// should then stop producing. Passing more than
  /// ServerOptions::max_stream_queued_bytes unsent cuts the connection.
  bool write_chunk(std::string data);
  /// Ends a stream (the zero-length chunk); the connection stays usable.
  void end_stream();

  /// Bytes accepted by reply/start_stream/write_chunk and not yet written to
  /// the socket: lets a producer cut off a slow consumer before the hard cap.
  size_t queued_bytes() const;
  /// True once nothing more can be sent: the connection dropped, or the
  /// response was completely written.
  bool closed() const;
  /// `callback` runs once when this response is over: completely written, or
  /// the connection dropped first (closed() tells nothing which; use it to
  /// release a watch). It runs on an io_context thread, or at once in the
  /// caller if the response is already over. Replaces an earlier callback.
  void on_close(std::function<void()> callback);

  /// Internal: created by the connection.
  struct Init {
    std::weak_ptr<detail::ConnectionBase> conn;
    bool keep_alive = true;
    bool http10 = false;
    bool head = false;
    size_t max_queued_bytes = 0;
    uint64_t seq = 0;  ///< the request's number on its connection (0: the connection's own answer)
  };
  explicit Responder(Init init);
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;

  // --- Used by the connection (on its strand) ---
  /// What take_output() handed over.
  struct Taken {
    size_t bytes = 0;
    bool finished = false;     ///< the response is complete once these bytes are written
    bool close_after = false;  ///< the connection must close after it
  };
  /// Moves queued output to the end of `dst`.
  Taken take_output(std::string& dst);
  /// `bytes` taken earlier reached the socket.
  void written(size_t bytes);
  /// The response is over (completely written, or the connection is gone);
  /// returns the on_close callback for the connection to run (once).
  std::function<void()> finish();
  /// A response the connection itself makes (errors, 100 Continue).
  void reply_internal(std::string raw, bool close_after);
  /// Whether the response is a stream still open.
  bool streaming() const;
  uint64_t seq() const { return init_.seq; }
  /// The handler dropped its last reference: answer 500 if it never did.
  void released_by_handler();

 private:
  enum class Phase { waiting, replied, streaming, ended };
  void kick();
  void serialize_locked(const HttpResponse& response, bool force_close);

  const Init init_;
  mutable std::mutex mu_;
  Phase phase_ = Phase::waiting;
  std::string out_;
  size_t queued_ = 0;
  bool close_after_ = false;
  bool over_ = false;
  std::function<void()> on_close_;
};

/// Called once per request on the connection's strand. Must not block; may
/// answer now or keep `responder` and answer later from any thread.
using Handler = std::function<void(HttpRequest, std::shared_ptr<Responder>)>;

enum class ServerErrc { invalid_address, bind_failed, tls_failed, already_started };

/// One HTTP(S) listener. Not copyable; stop() (or the destructor) closes the
/// listener and every connection, and no handler is called afterwards.
class HttpServer {
 public:
  /// `ioc` must outlive the server's connections (run it until they are gone).
  HttpServer(boost::asio::io_context& ioc, ServerOptions options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Binds and listens (synchronously); a clear error if the address is bad
  /// or in use, or the TLS files cannot be loaded. Accepting starts at once.
  Result<Ok, ServerErrc> start();
  /// The bound port (the ephemeral one when options.port was 0); 0 before start.
  uint16_t port() const;
  /// Closes the listener and every connection (responders report closed()).
  /// Thread-safe and idempotent.
  void stop();
  /// Connections open now.
  size_t connection_count() const;
  /// Connections accepted since start (keep-alive reuse shows in tests).
  uint64_t accepted_count() const;
  /// Counters since start, for metrics. Thread-safe.
  ServerStats stats() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tenure::net
