#pragma once
// Internal to net/: a server's TLS connection that holds no buffers of its
// own while idle.
//
// Asio's ssl::stream keeps, for the connection's whole life, two zero-filled
// 17 KB record buffers and an OpenSSL BIO pair whose two 17 KB buffers fill
// as data passes: ~84 KB per idle mutual-TLS connection, measured, where a
// plain one costs ~5 KB. A controller holds a heartbeat connection and a
// watch stream per agent, so 10,000 agents over TLS came to ~1.1 GB.
//
// Here OpenSSL reads and writes the socket itself, through a BIO that calls
// recv/send (MSG_NOSIGNAL: a closed peer is an error, never SIGPIPE), with
// SSL_MODE_RELEASE_BUFFERS: its record buffers exist only while a record is
// half read or half written. When OpenSSL wants the socket readable or
// writable, the operation waits for that with socket::async_wait and tries
// again. Only what the server connection uses is here: handshake,
// read_some, write_some (for asio::async_write); it closes the socket
// without a TLS close_notify, as it did with ssl::stream.

#include <cstddef>
#include <type_traits>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/compose.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream_base.hpp>

struct ssl_st;

namespace tenure::net::detail {

class TlsSocket {
 public:
  using tcp = boost::asio::ip::tcp;
  using executor_type = tcp::socket::executor_type;
  using error_code = boost::system::error_code;

  TlsSocket(tcp::socket socket, boost::asio::ssl::context& ctx);
  TlsSocket(TlsSocket&& other) noexcept;
  TlsSocket& operator=(TlsSocket&&) = delete;
  TlsSocket(const TlsSocket&) = delete;
  ~TlsSocket();

  executor_type get_executor() { return socket_.get_executor(); }
  tcp::socket& next_layer() { return socket_; }
  ssl_st* native_handle() { return ssl_; }
  /// After the handshake: whether it resumed a session.
  bool resumed() const;

  template <typename Handler>
  auto async_handshake(boost::asio::ssl::stream_base::handshake_type type, Handler&& handler) {
    begin_handshake(type);
    return start<void(error_code)>(Op::kHandshake, nullptr, 0, std::forward<Handler>(handler));
  }

  template <typename MutableBuffers, typename Handler>
  auto async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    auto b = first_nonempty<boost::asio::mutable_buffer>(buffers);
    return start<void(error_code, size_t)>(Op::kRead, b.data(), b.size(), std::forward<Handler>(handler));
  }

  template <typename ConstBuffers, typename Handler>
  auto async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    auto b = first_nonempty<boost::asio::const_buffer>(buffers);
    return start<void(error_code, size_t)>(Op::kWrite, const_cast<void*>(b.data()), b.size(),
                                            std::forward<Handler>(handler));
  }

 private:
  enum class Op { kHandshake, kRead, kWrite };
  enum class Wait { kNone, kReadable, kWritable };
  struct Step {
    Wait wait = Wait::kNone;  ///< kNone: finished with ec and bytes
    error_code ec;
    size_t bytes = 0;
  };

  /// Whether OpenSSL holds bytes of a record read before (then a read
  /// must not wait for the socket).
  bool has_buffered_input() const;
  /// One try of `op` at OpenSSL: finished, or what it waits for.
  Step step(Op op, void* data, size_t size);
  void begin_handshake(boost::asio::ssl::stream_base::handshake_type type);

  template <typename Buffer, typename Buffers>
  static Buffer first_nonempty(const Buffers& buffers) {
    for (auto it = boost::asio::buffer_sequence_begin(buffers); it != boost::asio::buffer_sequence_end(buffers);
         ++it) {
      Buffer b(*it);
      if (b.size() != 0) return b;
    }
    return Buffer();
  }

  /// Tries the operation, waits on the socket for what OpenSSL wants, and
  /// tries again, until it finishes. A result found at once is handed over
  /// through a post: a handler never runs inside the call that started it.
  template <bool kWithBytes>
  struct Composed {
    TlsSocket& s;
    Op op;
    void* data;
    size_t size;
    enum { kStarting, kWaiting, kPosted } phase = kStarting;
    Step result{};

    template <typename Self>
    void operator()(Self& self, error_code wait_ec = {}) {
      if (phase == kPosted) return finish(self, result);
      if (wait_ec) return finish(self, Step{Wait::kNone, wait_ec, 0});  // closed while waiting
      if (phase == kStarting && op == Op::kRead && size != 0 && !s.has_buffered_input()) {
        // Wait before asking OpenSSL: a read it starts allocates its 16 KB
        // record buffer, which an idle connection would hold while waiting.
        phase = kWaiting;
        return s.socket_.async_wait(tcp::socket::wait_read, std::move(self));
      }
      Step r = (op != Op::kHandshake && size == 0) ? Step{} : s.step(op, data, size);
      if (r.wait == Wait::kNone) {
        if (phase == kWaiting) return finish(self, r);
        phase = kPosted;
        result = r;
        return boost::asio::post(s.get_executor(), std::move(self));
      }
      phase = kWaiting;
      s.socket_.async_wait(r.wait == Wait::kReadable ? tcp::socket::wait_read : tcp::socket::wait_write,
                           std::move(self));
    }

    template <typename Self>
    void finish(Self& self, const Step& r) {
      if constexpr (kWithBytes) {
        self.complete(r.ec, r.bytes);
      } else {
        self.complete(r.ec);
      }
    }
  };

  template <typename Signature, typename Handler>
  auto start(Op op, void* data, size_t size, Handler&& handler) {
    constexpr bool kWithBytes = std::is_same_v<Signature, void(error_code, size_t)>;
    return boost::asio::async_compose<Handler, Signature>(Composed<kWithBytes>{*this, op, data, size}, handler,
                                                          socket_);
  }

  tcp::socket socket_;
  ssl_st* ssl_ = nullptr;
};

}  // namespace tenure::net::detail
