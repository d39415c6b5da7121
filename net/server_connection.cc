// One server connection: reads requests with Beast's parser (fed by hand so
// we can tell "idle" from "slow client"), hands them to the Handler in
// order, and writes the answers in request order as they complete
// (pipelining). Plain TCP and TLS share the code through a template.
//
// Timers. The read deadline is either the idle timeout (nothing in flight,
// no bytes of a next request) or the read timeout counted from a request's
// first byte (a slow client cannot hold the connection by trickling bytes).
// While a response is being produced there is no read deadline: the client
// is waiting for us. Each socket write has its own deadline.

#include <array>
#include <chrono>
#include <deque>
#include <optional>
#include <vector>

#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "common/log.h"
#include "net/detail/deadline.h"
#include "net/detail/request_parse.h"
#include "net/detail/server_shared.h"
#include "net/detail/tls.h"
#include "net/detail/tls_socket.h"
#include "net/io_runner.h"

namespace tenure::net::detail {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using Parser = RequestParser;

constexpr Clock::time_point kNever = Deadline::kNever;
constexpr size_t kMaxCoalesceBytes = 256 << 10;  // one socket write gathers at most this
constexpr size_t kReadChunkBytes = 16 << 10;
// Between requests a connection reads into this much, and keeps at most
// kKeptWriteBytes of write buffer after a write: a controller holds a
// keep-alive connection per agent (heartbeats) and a watch stream per
// agent, 10,000 of each in a large fleet, mostly idle; with the 16 KB read
// chunk and the largest write's buffer kept for the connection's life
// they cost ~10 KB each of resident memory, more after a burst.
constexpr size_t kIdleReadBytes = 2 << 10;
constexpr size_t kKeptWriteBytes = 16 << 10;
constexpr uint32_t kLingerMs = 2000;  // drain after an error reply, so it is not lost to an RST

template <typename Stream>
class ServerConnection final : public ConnectionBase {
  static constexpr bool kTls = std::is_same_v<Stream, TlsSocket>;

 public:
  ServerConnection(std::shared_ptr<ServerShared> shared, Strand strand, Stream stream, uint64_t id)
      : ConnectionBase(strand),
        shared_(std::move(shared)),
        opts_(shared_->options),
        id_(id),
        stream_(std::move(stream)),
        buffer_(opts_.max_header_bytes + kReadChunkBytes),
        read_deadline_(strand, [this] { on_timeout(); }),
        write_deadline_(strand, [this] { on_timeout(); }) {
    streams_refused_ = &shared_->streams_refused;
    boost::system::error_code ec;
    auto ep = socket().remote_endpoint(ec);
    if (!ec) {
      remote_ = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
      remote_ += ":" + std::to_string(ep.port());
    }
  }

  ~ServerConnection() override {
    shared_->open.fetch_sub(1);
    shared_->buffer_bytes.fetch_sub(accounted_bytes_);
  }

  void start() {
    idle_since_ = Clock::now();
    if constexpr (kTls) {
      set_read_deadline(Clock::now() + std::chrono::milliseconds(opts_.read_timeout_ms));
      stream_.async_handshake(asio::ssl::stream_base::server,
                              [self = self()](const boost::system::error_code& ec) {
                                if (ec) return self->close_now();
                                (self->stream_.resumed() ? self->shared_->tls_resumed : self->shared_->tls_new_sessions)
                                    .fetch_add(1);
                                // Read once: every request on this connection carries it.
                                self->client_cert_ = detail::verified_peer_certificate(self->stream_.native_handle());
                                self->process_input();
                              });
    } else {
      process_input();
    }
  }

 private:
  struct InFlight {
    std::shared_ptr<Responder> responder;
    size_t bytes;
    bool finished;
  };

  std::shared_ptr<ServerConnection> self() {
    return std::static_pointer_cast<ServerConnection>(shared_from_this());
  }

  tcp::socket& socket() {
    if constexpr (kTls) {
      return stream_.next_layer();
    } else {
      return stream_;
    }
  }

  /// Brings ServerStats::buffer_bytes up to date with this connection's
  /// buffers, after anything that may have grown or freed one.
  void account_buffers() {
    size_t now = buffer_.capacity() + wbuf_.capacity();
    if (now > accounted_bytes_) shared_->buffer_bytes.fetch_add(now - accounted_bytes_);
    if (now < accounted_bytes_) shared_->buffer_bytes.fetch_sub(accounted_bytes_ - now);
    accounted_bytes_ = now;
  }

  // ---- reading ----

  /// Parses what is buffered, dispatching complete requests, then reads more.
  void process_input() {
    while (!read_stopped_ && !closed_) {
      if (held_) {
        paused_ = true;  // resumes when the stream holding the connection ends
        break;
      }
      if (!parser_) {
        if (pending_.size() >= opts_.max_pipelined_requests) {
          paused_ = true;  // resumes when an answer is written
          break;
        }
        if (buffer_.size() == 0) break;
        new_parser();
      }
      if (buffer_.size() == 0) break;
      if (!parser_->is_header_done()) choose_body_limit();
      beast::error_code ec;
      size_t n = parser_->put(buffer_.data(), ec);
      buffer_.consume(n);
      if (ec == http::error::need_more) break;
      if (ec) {
        reject(ec);
        break;
      }
      if (parser_->is_header_done()) maybe_continue();
      if (parser_->is_done()) {
        dispatch();
        continue;
      }
      if (n == 0) break;
    }
    if (write_wanted_) try_write();
    update_read_timer();
    maybe_read();
  }

  void new_parser() {
    // Not eager: put() stops after the header, so a body_limit error found
    // there is returned (Beast 1.74's eager mode can lose it) and the 413
    // goes out before any of the body is read.
    parser_.emplace();
    limit_parser(*parser_, opts_);
    body_limit_ = opts_.max_body_bytes;
    body_limit_chosen_ = opts_.body_limits.empty();
    request_started_ = Clock::now();
    continue_sent_ = false;
  }

  /// A ServerOptions::body_limits entry whose prefix the target has replaces
  /// max_body_bytes. Chosen once the request line is buffered: Beast parses
  /// a header only when all of it is buffered, and checks Content-Length
  /// against the limit right then, so this comes before that check.
  void choose_body_limit() {
    if (body_limit_chosen_) return;
    auto data = buffer_.data();
    auto limit = body_limit_for(opts_, std::string_view(static_cast<const char*>(data.data()), data.size()));
    if (!limit) return;
    body_limit_chosen_ = true;
    body_limit_ = *limit;
    parser_->body_limit(*limit);
  }

  void maybe_read() {
    if (reading_ || read_stopped_ || paused_ || closed_) return;
    size_t room = buffer_.max_size() - buffer_.size();
    if (room == 0) {
      reject(http::error::header_limit);
      return;
    }
    size_t chunk = kReadChunkBytes;
    if (buffer_.size() == 0 && !parser_) {
      // No request in progress: a small read (a request larger than it
      // takes one read more), and the buffer a large one grew is let go.
      if (buffer_.capacity() > kIdleReadBytes) buffer_.shrink_to_fit();
      chunk = kIdleReadBytes;
    }
    reading_ = true;
    auto space = buffer_.prepare(std::min(room, chunk));
    account_buffers();
    stream_.async_read_some(space, [self = self()](const boost::system::error_code& ec, size_t n) {
      self->on_read(ec, n);
    });
  }

  void on_read(const boost::system::error_code& ec, size_t n) {
    reading_ = false;
    if (closed_) return;
    if (lingering_) return linger_read(ec, n);
    if (ec) {
      bool eof = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
      return eof ? on_peer_eof() : close_now();
    }
    buffer_.commit(n);
    process_input();
  }

  /// The client closed its side. Answers already owed are still written
  /// (a half-closing client waits for them), unless one is a stream: a
  /// stream's reader that closes is gone.
  void on_peer_eof() {
    read_stopped_ = true;
    eof_ = true;
    bool partial = parser_ && parser_->got_some();
    bool any_stream = false;
    for (const auto& r : pending_) any_stream = any_stream || r->streaming();
    if (partial || any_stream || pending_.empty()) return close_now();
    update_read_timer();
  }

  /// Sends 100 Continue (in order, as an answer of its own) so a client
  /// that waits for it sends the body; only when the body fits the limit.
  void maybe_continue() {
    if (continue_sent_ || parser_->is_done()) return;
    continue_sent_ = true;
    const auto& msg = parser_->get();
    auto it = msg.find(http::field::expect);
    if (it == msg.end() || !beast::iequals(it->value(), "100-continue")) return;
    auto interim = make_responder(true, false, false);
    interim->reply_internal("HTTP/1.1 100 Continue\r\n\r\n", false);
    pending_.push_back(std::move(interim));
    write_wanted_ = true;
  }

  std::shared_ptr<Responder> make_responder(bool keep_alive, bool http10, bool head, uint64_t seq = 0) {
    Responder::Init init;
    init.seq = seq;
    init.conn = weak_from_this();
    init.keep_alive = keep_alive;
    init.http10 = http10;
    init.head = head;
    init.max_queued_bytes = opts_.max_stream_queued_bytes;
    return std::make_shared<Responder>(std::move(init));
  }

  void dispatch() {
    auto msg = parser_->release();
    parser_.reset();
    dispatch(std::move(msg));
  }

  /// Hands a complete request to the handler, unless a stream holds the
  /// connection: then it waits (the only one: reading pauses) until the
  /// stream ends. Answers must go out in order, and one queued behind an
  /// endless stream would never be sent, so it is not even started.
  void dispatch(http::request<http::string_body>&& msg) {
    uint64_t seq = next_seq_ + 1;
    if (!may_dispatch(seq)) {
      held_.emplace(std::move(msg));
      paused_ = true;
      shared_->held_behind_stream.fetch_add(1);
      return;
    }
    next_seq_ = seq;
    bool keep_alive = msg.keep_alive();
    auto strong = make_responder(keep_alive, msg.version() == 10, msg.method() == http::verb::head, seq);
    pending_.push_back(strong);
    if (!keep_alive) read_stopped_ = true;  // nothing after a "Connection: close" request
    HttpRequest req = to_request(std::move(msg), remote_, kTls, client_cert_);
    if (std::string bad = non_utf8_part(req); !bad.empty()) {
      shared_->non_utf8.fetch_add(1);
      strong->reply(json_error(400, "bad_request", bad + " is not valid UTF-8"));
      return;
    }
    // The handler's copy: when its last reference goes, an unanswered
    // request gets a 500 instead of hanging the pipeline.
    std::shared_ptr<Responder> handed(strong.get(),
                                      [strong](Responder*) { strong->released_by_handler(); });
    bool called = shared_->call_user([&] {
      try {
        shared_->handler(std::move(req), std::move(handed));
      } catch (const std::exception& e) {
        count_escaped_exception();
        log_error("http", std::string("event=handler_exception what=\"") + e.what() + "\"");
        strong->reply(json_error(500, "internal", e.what()));
      } catch (...) {
        count_escaped_exception();
        log_error("http", "event=handler_exception what=unknown");
        strong->reply(json_error(500, "internal", "unknown exception"));
      }
    });
    if (!called) close_now();
  }

  /// A request the parser refused: answer with a JSON error, then close.
  void reject(const boost::system::error_code& ec) {
    read_stopped_ = true;
    parser_.reset();
    Refusal refused = refusal(ec, body_limit_, opts_.max_header_bytes);
    (refused.too_large ? shared_->too_large : shared_->malformed).fetch_add(1);
    auto r = make_responder(false, false, false);
    r->reply_internal(std::move(refused.raw), true);
    pending_.push_back(std::move(r));
    write_wanted_ = true;
  }

  // ---- timers ----

  void update_read_timer() {
    if (closed_ || lingering_) return;
    if (read_stopped_ || paused_) return set_read_deadline(kNever);
    if (parser_ && parser_->got_some()) {
      return set_read_deadline(request_started_ + std::chrono::milliseconds(opts_.read_timeout_ms));
    }
    if (pending_.empty() && !writing_) {
      return set_read_deadline(idle_since_ + std::chrono::milliseconds(opts_.idle_timeout_ms));
    }
    set_read_deadline(kNever);
  }

  void set_read_deadline(Clock::time_point t) { read_deadline_.set(t, shared_from_this()); }
  void set_write_deadline(Clock::time_point t) { write_deadline_.set(t, shared_from_this()); }

  // ---- writing ----

  /// Gathers the output of answers at the head of the queue, in request
  /// order, into one socket write.
  void try_write() override {
    write_wanted_ = false;
    if (writing_ || closed_ || lingering_) return;
    wbuf_.clear();
    in_flight_.clear();
    write_closes_ = false;
    while (!pending_.empty() && wbuf_.size() < kMaxCoalesceBytes) {
      std::shared_ptr<Responder>& head = pending_.front();
      Responder::Taken t = head->take_output(wbuf_);
      if (!t.finished) {
        if (t.bytes > 0) in_flight_.push_back({head, t.bytes, false});
        break;
      }
      in_flight_.push_back({head, t.bytes, true});
      pending_.pop_front();
      if (t.close_after) {
        write_closes_ = true;
        read_stopped_ = true;
        break;
      }
    }
    if (wbuf_.empty()) {
      if (!in_flight_.empty()) after_write();
      return;
    }
    writing_ = true;
    account_buffers();
    set_write_deadline(Clock::now() + std::chrono::milliseconds(opts_.write_timeout_ms));
    asio::async_write(stream_, asio::buffer(wbuf_),
                      [self = self()](const boost::system::error_code& ec, size_t) {
                        self->writing_ = false;
                        self->set_write_deadline(kNever);
                        if (self->closed_) return;
                        if (ec) return self->close_now();
                        self->after_write();
                      });
  }

  void after_write() {
    // What a burst (a large answer, a stream's backlog) grew is let go;
    // take_output swaps buffers with the responders, so theirs shrink too.
    if (wbuf_.capacity() > kKeptWriteBytes) std::string().swap(wbuf_);
    account_buffers();
    auto done = std::move(in_flight_);
    in_flight_.clear();
    bool stream_ended = false;
    for (auto& f : done) {
      f.responder->written(f.bytes);
      if (!f.finished) continue;
      stream_ended = release_stream(f.responder->seq()) || stream_ended;
      run_close_callback(f.responder->finish());
    }
    if (closed_) return;
    if (stream_ended && held_) {
      auto msg = std::move(*held_);
      held_.reset();
      dispatch(std::move(msg));
      paused_ = true;  // so that reading resumes below, within the pipelining cap
    }
    if (write_closes_) return start_linger();
    if (pending_.empty()) {
      idle_since_ = Clock::now();
      if (eof_) return close_now();
    }
    if (paused_ && pending_.size() < opts_.max_pipelined_requests) {
      paused_ = false;
      process_input();  // dispatches what was held back, reads again
    }
    update_read_timer();
    try_write();  // output that arrived while this write was in flight
  }

  void run_close_callback(std::function<void()> callback) {
    if (callback) shared_->call_user(callback);
  }

  // ---- closing ----

  /// After an answer that closes the connection: stop sending, and read
  /// (and drop) what the client still sends for a short while, so that our
  /// answer is not destroyed by a reset (the client may still be sending a
  /// body we refused).
  void start_linger() {
    lingering_ = true;
    read_stopped_ = true;
    uint32_t ms = std::min(opts_.read_timeout_ms, kLingerMs);
    set_read_deadline(Clock::now() + std::chrono::milliseconds(ms));
    // For TLS, no close_notify: it would need a read of its own, and the
    // answers are length-delimited, so a TCP close after the drain is enough.
    boost::system::error_code ec;
    socket().shutdown(tcp::socket::shutdown_send, ec);
    if (!reading_) linger_read({}, 0);
  }

  void linger_read(const boost::system::error_code& ec, size_t n) {
    if (ec) return close_now();
    linger_bytes_ += n;
    if (linger_bytes_ > 2 * opts_.max_body_bytes + (1 << 20)) return close_now();
    reading_ = true;
    // Read the raw socket: a TLS peer's records are dropped unread anyway.
    if (!drain_) drain_ = std::make_unique<std::array<char, 4096>>();
    socket().async_read_some(asio::buffer(*drain_),
                             [self = self()](const boost::system::error_code& e, size_t m) {
                               self->on_read(e, m);
                             });
  }

  void on_timeout() {
    if (!closed_ && !lingering_) shared_->timeouts.fetch_add(1);
    close_now();
  }

  void close_now() override {
    if (closed_) return;
    closed_ = true;
    boost::system::error_code ec;
    read_deadline_.cancel();
    write_deadline_.cancel();
    socket().shutdown(tcp::socket::shutdown_both, ec);
    socket().close(ec);
    std::vector<std::shared_ptr<Responder>> over;
    for (auto& f : in_flight_) over.push_back(f.responder);
    for (auto& r : pending_) over.push_back(r);
    pending_.clear();
    // in_flight_ stays: an aborted write still completes into after-write code.
    for (auto& r : over) run_close_callback(r->finish());
    std::lock_guard lock(shared_->conns_mu);
    shared_->conns.erase(id_);
  }

  std::shared_ptr<ServerShared> shared_;
  const ServerOptions& opts_;
  const uint64_t id_;
  Stream stream_;
  std::string remote_;
  std::shared_ptr<const ClientCertificate> client_cert_;  ///< set after a TLS handshake that verified one
  beast::flat_buffer buffer_;
  std::optional<Parser> parser_;
  std::optional<http::request<http::string_body>> held_;  ///< parsed, waiting for a stream to end
  uint64_t next_seq_ = 0;  ///< seq of the last request dispatched
  size_t accounted_bytes_ = 0;  ///< this connection's share of ServerShared::buffer_bytes
  Deadline read_deadline_;   ///< idle, request, TLS handshake or linger deadline
  Deadline write_deadline_;  ///< the socket write in flight
  Clock::time_point request_started_{};
  Clock::time_point idle_since_{};

  std::deque<std::shared_ptr<Responder>> pending_;  ///< answers owed, in request order
  std::vector<InFlight> in_flight_;                 ///< whose bytes are in wbuf_
  std::string wbuf_;
  /// What a lingering connection reads and drops; allocated only then (4 KB
  /// in every connection was a third of an idle one's memory).
  std::unique_ptr<std::array<char, 4096>> drain_;
  size_t linger_bytes_ = 0;

  bool reading_ = false;
  bool read_stopped_ = false;  ///< no further requests will be read
  bool paused_ = false;        ///< at the pipelining cap
  bool writing_ = false;
  bool write_closes_ = false;  ///< the write in flight ends with a closing answer
  bool continue_sent_ = false;
  size_t body_limit_ = 0;           ///< of the request being parsed
  bool body_limit_chosen_ = false;  ///< choose_body_limit() found its request line
  bool eof_ = false;
  bool lingering_ = false;
  bool closed_ = false;
};

template <typename Stream>
void launch(std::shared_ptr<ServerShared> shared, Strand strand, Stream stream) {
  uint64_t id;
  {
    std::lock_guard lock(shared->conns_mu);
    id = shared->next_id++;
  }
  auto conn = std::make_shared<ServerConnection<Stream>>(shared, strand, std::move(stream), id);
  {
    std::lock_guard lock(shared->conns_mu);
    shared->conns.emplace(id, conn);
  }
  asio::post(strand, [conn] { conn->start(); });
}

}  // namespace

void start_connection(std::shared_ptr<ServerShared> shared, Strand strand, tcp::socket socket) {
  shared->open.fetch_add(1);
  shared->accepted.fetch_add(1);
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  if (shared->tls) {
    TlsSocket stream(std::move(socket), *shared->tls);  // not asio::ssl::stream: see tls_socket.h
    launch(shared, strand, std::move(stream));
  } else {
    launch(shared, strand, std::move(socket));
  }
}

}  // namespace tenure::net::detail
