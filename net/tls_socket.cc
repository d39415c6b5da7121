#include "net/detail/tls_socket.h"

#include <sys/socket.h>

#include <cerrno>
#include <algorithm>
#include <climits>
#include <new>
#include <utility>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <boost/asio/error.hpp>
#include <boost/asio/ssl/error.hpp>

namespace tenure::net::detail {
namespace {

// The BIO between OpenSSL and the socket. Its state is on the heap, so a
// TlsSocket can move while the BIO keeps pointing at it.
struct SocketBio {
  int fd;
  int last_errno = 0;  ///< of the last recv/send, if it failed: errno is not kept until SSL_get_error
};

SocketBio* state(BIO* b) { return static_cast<SocketBio*>(BIO_get_data(b)); }

bool would_block(int e) { return e == EAGAIN || e == EWOULDBLOCK || e == EINTR; }

int bio_write(BIO* b, const char* data, int len) {
  BIO_clear_retry_flags(b);
  state(b)->last_errno = 0;
  ssize_t n = ::send(state(b)->fd, data, static_cast<size_t>(len), MSG_NOSIGNAL);
  if (n >= 0) return static_cast<int>(n);
  state(b)->last_errno = errno;
  if (would_block(errno)) BIO_set_retry_write(b);
  return -1;
}

int bio_read(BIO* b, char* out, int len) {
  BIO_clear_retry_flags(b);
  state(b)->last_errno = 0;
  ssize_t n = ::recv(state(b)->fd, out, static_cast<size_t>(len), 0);
  if (n >= 0) return static_cast<int>(n);  // 0: the peer closed its side
  state(b)->last_errno = errno;
  if (would_block(errno)) BIO_set_retry_read(b);
  return -1;
}

long bio_ctrl(BIO*, int cmd, long, void*) {
  // OpenSSL flushes after a handshake flight; send() has nothing buffered.
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

int bio_destroy(BIO* b) {
  delete state(b);
  BIO_set_data(b, nullptr);
  return 1;
}

const BIO_METHOD* socket_bio_method() {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "tenure socket");
    BIO_meth_set_write(m, bio_write);
    BIO_meth_set_read(m, bio_read);
    BIO_meth_set_ctrl(m, bio_ctrl);
    BIO_meth_set_destroy(m, bio_destroy);
    return m;
  }();
  return method;
}

}  // namespace

TlsSocket::TlsSocket(tcp::socket socket, boost::asio::ssl::context& ctx) : socket_(std::move(socket)) {
  ssl_ = SSL_new(ctx.native_handle());
  if (!ssl_) throw std::bad_alloc();
  // Partial writes: a write_some finishes with the records it sent.
  // Release buffers: OpenSSL frees its record buffers whenever they are empty.
  SSL_set_mode(ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  boost::system::error_code ignored;
  socket_.native_non_blocking(true, ignored);
  BIO* bio = BIO_new(socket_bio_method());
  if (!bio) {
    SSL_free(ssl_);
    throw std::bad_alloc();
  }
  BIO_set_data(bio, new SocketBio{socket_.native_handle()});
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);  // the SSL owns it now
}

TlsSocket::TlsSocket(TlsSocket&& other) noexcept
    : socket_(std::move(other.socket_)), ssl_(std::exchange(other.ssl_, nullptr)) {}

TlsSocket::~TlsSocket() {
  if (ssl_) SSL_free(ssl_);
}

void TlsSocket::begin_handshake(boost::asio::ssl::stream_base::handshake_type type) {
  if (type == boost::asio::ssl::stream_base::server) {
    SSL_set_accept_state(ssl_);
  } else {
    SSL_set_connect_state(ssl_);
  }
}

bool TlsSocket::resumed() const { return SSL_session_reused(ssl_) == 1; }

bool TlsSocket::has_buffered_input() const { return SSL_has_pending(ssl_) == 1; }

TlsSocket::Step TlsSocket::step(Op op, void* data, size_t size) {
  // OpenSSL's error queue is per thread, and this thread runs other
  // connections: start clean, and leave nothing behind.
  ERR_clear_error();
  size_t done = 0;
  int ret;
  int len = static_cast<int>(std::min<size_t>(size, INT_MAX));
  switch (op) {
    case Op::kHandshake: ret = SSL_do_handshake(ssl_); break;
    case Op::kRead: ret = SSL_read_ex(ssl_, data, static_cast<size_t>(len), &done); break;
    case Op::kWrite: ret = SSL_write_ex(ssl_, data, static_cast<size_t>(len), &done); break;
  }
  if (ret == 1) return Step{Wait::kNone, {}, done};
  int err = SSL_get_error(ssl_, ret);
  unsigned long lib_error = ERR_get_error();
  ERR_clear_error();
  switch (err) {
    case SSL_ERROR_WANT_READ: return Step{Wait::kReadable, {}, 0};
    case SSL_ERROR_WANT_WRITE: return Step{Wait::kWritable, {}, 0};
    case SSL_ERROR_ZERO_RETURN: return Step{Wait::kNone, boost::asio::error::eof, 0};  // close_notify
    default: break;
  }
  auto* bio = static_cast<SocketBio*>(BIO_get_data(SSL_get_rbio(ssl_)));
  if (err == SSL_ERROR_SYSCALL && lib_error == 0 && bio->last_errno != 0) {
    int e = std::exchange(bio->last_errno, 0);
    return Step{Wait::kNone, boost::system::error_code(e, boost::asio::error::get_system_category()), 0};
  }
  // The peer closed the TCP connection without a close_notify (OpenSSL 3
  // reports it as SSL_R_UNEXPECTED_EOF_WHILE_READING, OpenSSL 1.1 as a
  // SYSCALL error with nothing queued): what ssl::stream calls truncated.
  bool unexpected_eof = (err == SSL_ERROR_SYSCALL && lib_error == 0)
#ifdef SSL_R_UNEXPECTED_EOF_WHILE_READING
                        || ERR_GET_REASON(lib_error) == SSL_R_UNEXPECTED_EOF_WHILE_READING
#endif
      ;
  if (unexpected_eof) return Step{Wait::kNone, boost::asio::ssl::error::stream_truncated, 0};
  return Step{Wait::kNone,
              boost::system::error_code(static_cast<int>(lib_error), boost::asio::error::get_ssl_category()), 0};
}

}  // namespace tenure::net::detail
