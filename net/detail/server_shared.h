#pragma once
// Internal to net/: state shared by the listener and its connections. Asio
// only, never Beast, so http_server.cc and responder.cc stay light.

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <utility>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/strand.hpp>

#include "net/detail/user_gate.h"
#include "net/http_server.h"

namespace tenure::net::detail {

using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;

/// What every connection of one listener shares. Outlives the HttpServer
/// while connections are still draining.
struct ServerShared {
  ServerOptions options;
  Handler handler;
  std::shared_ptr<boost::asio::ssl::context> tls;  ///< null: plain HTTP
  std::atomic<bool> stopped{false};
  std::atomic<size_t> open{0};
  std::atomic<uint64_t> accepted{0};
  /// Counters behind HttpServer::stats() (see ServerStats).
  std::atomic<uint64_t> refused_at_cap{0};
  std::atomic<uint64_t> malformed{0};
  std::atomic<uint64_t> too_large{0};
  std::atomic<uint64_t> non_utf8{0};
  std::atomic<uint64_t> timeouts{0};
  std::atomic<uint64_t> streams_refused{0};
  std::atomic<uint64_t> held_behind_stream{0};
  std::atomic<size_t> buffer_bytes{0};  ///< ServerStats::buffer_bytes
  std::atomic<uint64_t> tls_new_sessions{0};
  std::atomic<uint64_t> tls_resumed{0};

  std::mutex conns_mu;
  std::map<uint64_t, std::weak_ptr<ConnectionBase>> conns;  ///< by id, for stop()
  uint64_t next_id = 0;

  /// Calls into the program (handler, on_close) pass here; see UserGate.
  UserGate gate;
  template <typename F>
  bool call_user(F&& f) {
    return gate.call(std::forward<F>(f));
  }
};

/// The strand-bound part of a connection that Responders talk to. The
/// transport (plain or TLS) is a template in server_connection.cc.
class ConnectionBase : public std::enable_shared_from_this<ConnectionBase> {
 public:
  explicit ConnectionBase(Strand strand) : strand_(std::move(strand)) {}
  virtual ~ConnectionBase() = default;

  /// A responder has new output: write it soon. Any thread.
  void kick();
  /// Closes the connection now. Any thread.
  void abort();
  /// The response to request `seq` wants to become a stream. Granted only
  /// when no later request of this connection was handed to the handler:
  /// a stream holds the connection until it ends, and an answer queued
  /// behind an endless stream would wait forever. Any thread.
  bool claim_stream(uint64_t seq);

 protected:
  virtual void try_write() = 0;
  virtual void close_now() = 0;

  /// Whether request `seq` may go to the handler now (no stream holds the
  /// connection); records it as the last one handed over. Strand only.
  bool may_dispatch(uint64_t seq);
  /// The stream of request `seq` is over (written or dropped): later
  /// requests may be dispatched again. True if it held the connection.
  bool release_stream(uint64_t seq);

  Strand strand_;
  std::atomic<uint64_t>* streams_refused_ = nullptr;  ///< ServerShared's counter
  std::atomic<bool> kick_posted_{false};
  bool write_wanted_ = false;  ///< strand only: kick() from our own strand

 private:
  std::mutex order_mu_;          ///< the stream claim vs. dispatching the next request
  uint64_t last_dispatched_ = 0;  ///< seq of the last request handed to the handler
  uint64_t stream_seq_ = 0;       ///< seq of the stream holding the connection; 0: none
};

/// Takes over an accepted socket (bound to `strand`) and serves it.
void start_connection(std::shared_ptr<ServerShared> shared, Strand strand,
                      boost::asio::ip::tcp::socket socket);

}  // namespace tenure::net::detail
