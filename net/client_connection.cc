// A pooled client connection: dials once, then serves one request at a time
// (write the request, read the response with Beast's parser) and reports
// each exchange to the pool, which decides on reuse and retries.

#include <sys/socket.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "net/detail/ascii.h"
#include "net/detail/client_shared.h"
#include "net/detail/deadline.h"

namespace tenure::net::detail {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using Parser = http::response_parser<http::string_body>;

bool connection_dropped(const boost::system::error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset ||
         ec == asio::error::broken_pipe || ec == http::error::end_of_stream ||
         ec == asio::ssl::error::stream_truncated;
}

ClientError read_error(const boost::system::error_code& ec, const Endpoint& ep) {
  std::string where = " (" + host_field(ep.hp) + ")";
  if (ec == http::error::body_limit) {
    return ClientError{ClientErrc::too_large, "response body too large" + where};
  }
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    return ClientError{ClientErrc::too_large, "response header too large" + where};
  }
  bool http_category = ec.category() == make_error_code(http::error::end_of_stream).category();
  if (http_category && ec != http::error::end_of_stream && ec != http::error::partial_message) {
    return ClientError{ClientErrc::protocol_error, "bad HTTP response: " + ec.message() + where};
  }
  return ClientError{ClientErrc::io_error, "connection failed: " + ec.message() + where};
}

class PooledConn final : public ClientConn, public std::enable_shared_from_this<PooledConn> {
 public:
  PooledConn(std::shared_ptr<ClientCore> core, std::weak_ptr<PoolSink> pool, const Endpoint& ep)
      : core_(std::move(core)),
        pool_(std::move(pool)),
        ep_(ep),
        transport_(core_->ioc, ep.tls ? core_->tls : nullptr),
        deadline_(transport_.strand(), [this] { on_deadline(); }),
        buffer_(core_->options.max_header_bytes + (64 << 10)) {
    key_ = ep.key;
  }

  void run(std::shared_ptr<ClientOp> op) override {
    // dispatch: a callback that sends its next request from this strand
    // starts it at once instead of paying for a post.
    asio::dispatch(transport_.strand(), [self = shared_from_this(), op = std::move(op)]() mutable {
      self->start(std::move(op));
    });
  }

  void close() override {
    asio::post(transport_.strand(), [self = shared_from_this()] { self->shut(); });
  }

  bool stale(Clock::time_point now, uint32_t max_idle_ms) override {
    if (now - idle_since > std::chrono::milliseconds(max_idle_ms)) return true;
    // Idle means no operation is pending, so peeking at the descriptor from
    // this thread races with nothing. 0 = FIN; data = junk we cannot use.
    char byte;
    ssize_t n = ::recv(transport_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
  }

 private:
  void start(std::shared_ptr<ClientOp> op) {
    if (op->finished.load() || closed_) {
      if (auto pool = pool_.lock()) pool->skipped(shared_from_this(), connected_ && !closed_);
      return;
    }
    op_ = std::move(op);
    timed_out_ = false;
    deadline_.set(op_->deadline, shared_from_this());
    if (connected_) return send();
    core_->opened.fetch_add(1);
    transport_.connect(ep_.hp, [self = shared_from_this()](std::optional<ClientError> err) {
      if (self->timed_out_) err = self->timeout_error();
      if (err) return self->report(ExchangeOutcome{ClientResult(std::move(*err)), false, false});
      self->connected_ = true;
      self->send();
    });
  }

  void send() {
    if (closed_) return report_closed();
    transport_.with_stream([&](auto& stream) {
      asio::async_write(stream, asio::buffer(op_->wire),
                        [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                          if (ec) return self->fail(ec);
                          self->receive();
                        });
    });
  }

  void receive() {
    parser_.emplace();
    parser_->body_limit(core_->options.max_response_bytes);
    parser_->header_limit(static_cast<std::uint32_t>(core_->options.max_header_bytes));
    if (op_->head) parser_->skip(true);
    // Header first, then the body: Beast 1.74's eager parse (async_read)
    // drops a body_limit error when body bytes follow the header in the
    // same buffer, and would then read a body of any size.
    transport_.with_stream([&](auto& stream) {
      http::async_read_header(stream, buffer_, *parser_,
                              [self = shared_from_this()](const boost::system::error_code& ec,
                                                          size_t) {
                                if (ec) return self->fail(ec);
                                self->receive_body();
                              });
    });
  }

  void receive_body() {
    // The body often came with the header: parse what is buffered first,
    // which spares an asynchronous read (and its completion post).
    while (!parser_->is_done() && buffer_.size() > 0) {
      boost::system::error_code ec;
      size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec == http::error::need_more) break;
      if (ec) return fail(ec);
      if (n == 0) break;
    }
    if (parser_->is_done()) return succeed();
    transport_.with_stream([&](auto& stream) {
      http::async_read(stream, buffer_, *parser_,
                       [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                         if (ec) return self->fail(ec);
                         self->succeed();
                       });
    });
  }

  void succeed() {
    auto msg = parser_->release();
    parser_.reset();
    ClientResponse resp;
    resp.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg) {
      auto [it, inserted] = resp.headers.try_emplace(ascii_lower(f.name_string()), f.value());
      if (!inserted) {
        it->second += ", ";
        it->second += f.value();
      }
    }
    resp.body = std::move(msg.body());
    bool reusable = msg.keep_alive() && buffer_.size() == 0 && !closed_;
    reused_ = true;
    report(ExchangeOutcome{ClientResult(std::move(resp)), reusable, false});
  }

  void fail(const boost::system::error_code& ec) {
    bool got_some = parser_ && parser_->got_some();
    parser_.reset();
    ExchangeOutcome out;
    // A keep-alive connection the server closed while it sat idle fails
    // before any response byte; the request never ran, so an idempotent
    // one may be sent again on a fresh connection.
    out.retryable =
        !timed_out_ && reused_ && !got_some && op_->idempotent && connection_dropped(ec);
    out.result = timed_out_ ? ClientResult(timeout_error()) : ClientResult(read_error(ec, ep_));
    shut();
    report(std::move(out));
  }

  void report_closed() {
    report(ExchangeOutcome{ClientResult(ClientError{ClientErrc::io_error, "connection closed"}),
                           false, false});
  }

  /// The request's deadline passed: the exchange is abandoned and the
  /// connection, in an unknown state, closed; the pending operation then
  /// fails and reports `timeout`.
  void on_deadline() {
    if (!op_) return;
    timed_out_ = true;
    shut();
  }

  ClientError timeout_error() const {
    return ClientError{ClientErrc::timeout,
                       "no response from " + host_field(ep_.hp) + " within the request timeout"};
  }

  void report(ExchangeOutcome outcome) {
    deadline_.set(Deadline::kNever, nullptr);  // lazy: no timer operation
    if (!outcome.reusable) shut();
    auto op = std::move(op_);
    op_.reset();
    if (auto pool = pool_.lock()) pool->exchange_done(shared_from_this(), op, std::move(outcome));
  }

  void shut() {
    if (closed_) return;
    closed_ = true;
    deadline_.cancel();
    transport_.close();
  }

  std::shared_ptr<ClientCore> core_;
  std::weak_ptr<PoolSink> pool_;
  Endpoint ep_;
  Transport transport_;
  Deadline deadline_;  ///< the current request's
  beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  std::shared_ptr<ClientOp> op_;
  bool connected_ = false;
  bool reused_ = false;  ///< served a request before: a failure may be a stale connection
  bool timed_out_ = false;
  bool closed_ = false;
};

}  // namespace

std::shared_ptr<ClientConn> make_client_conn(std::shared_ptr<ClientCore> core,
                                             std::weak_ptr<PoolSink> pool, const Endpoint& ep) {
  return std::make_shared<PooledConn>(std::move(core), std::move(pool), ep);
}

}  // namespace tenure::net::detail
