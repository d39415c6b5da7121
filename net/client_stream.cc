// stream(): one request on a connection of its own whose body is handed to
// the caller piece by piece as it arrives (ndjson watch streams). The
// headers must arrive within ClientRequest::timeout_ms, then each piece
// within idle_timeout_ms of the previous one.

#include <array>
#include <limits>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/read.hpp>

#include "net/detail/ascii.h"
#include "net/detail/client_shared.h"
#include "net/detail/deadline.h"

namespace tenure::net::detail {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
constexpr Clock::time_point kNever = Deadline::kNever;

class ClientStream final : public StreamHandle, public std::enable_shared_from_this<ClientStream> {
 public:
  ClientStream(std::shared_ptr<ClientCore> core, const Endpoint& ep, ClientRequest req,
               StreamHeadersFn on_headers, StreamDataFn on_data, StreamEndFn on_end)
      : core_(std::move(core)),
        ep_(ep),
        req_(std::move(req)),
        on_headers_(std::move(on_headers)),
        on_data_(std::move(on_data)),
        on_end_(std::move(on_end)),
        transport_(core_->ioc, ep.tls ? core_->tls : nullptr),
        deadline_(transport_.strand(), [this] {
          end(ClientError{ClientErrc::timeout, "stream from " + host_field(ep_.hp) + " timed out"});
        }),
        buffer_(core_->options.max_header_bytes + sizeof(body_)) {}

  void start(uint64_t id) {
    id_ = id;
    asio::post(transport_.strand(), [self = shared_from_this()] { self->connect(); });
  }

  void cancel() override {
    asio::post(transport_.strand(), [self = shared_from_this()] {
      self->end(ClientError{ClientErrc::cancelled, "stream cancelled"});
    });
  }

  bool active() const override { return !ended_.load(); }

 private:
  void connect() {
    if (ended_) return;
    set_deadline(Clock::now() + std::chrono::milliseconds(req_.timeout_ms));
    core_->opened.fetch_add(1);
    transport_.connect(ep_.hp, [self = shared_from_this()](std::optional<ClientError> err) {
      if (err) return self->end(std::move(err));
      self->send();
    });
  }

  void send() {
    wire_ = serialize_request(ep_, req_, core_->options);
    transport_.with_stream([&](auto& stream) {
      asio::async_write(stream, asio::buffer(wire_),
                        [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                          if (ec) return self->fail(ec);
                          self->read_header();
                        });
    });
  }

  void read_header() {
    parser_.emplace();
    // A watch never ends by size; each piece is bounded by body_. Not
    // boost::none: Beast 1.74 compares a Content-Length against none as if
    // it were 0.
    parser_->body_limit(std::numeric_limits<std::uint64_t>::max());
    parser_->header_limit(static_cast<std::uint32_t>(core_->options.max_header_bytes));
    if (req_.method == "HEAD") parser_->skip(true);
    transport_.with_stream([&](auto& stream) {
      http::async_read_header(stream, buffer_, *parser_,
                              [self = shared_from_this()](const boost::system::error_code& ec,
                                                          size_t) {
                                if (ec) return self->fail(ec);
                                self->on_header();
                              });
    });
  }

  void on_header() {
    if (ended_) return;
    const auto& msg = parser_->get();
    HeaderMap headers;
    for (const auto& f : msg) {
      auto [it, inserted] = headers.try_emplace(ascii_lower(f.name_string()), f.value());
      if (!inserted) it->second += ", " + std::string(f.value());
    }
    int status = static_cast<int>(msg.result_int());
    if (on_headers_) core_->gate.call([&] { on_headers_(status, headers); });
    arm_idle();
    read_body();
  }

  void read_body() {
    if (ended_) return;
    if (parser_->is_done()) return end(std::nullopt);
    parser_->get().body().data = body_.data();
    parser_->get().body().size = body_.size();
    parser_->get().body().more = true;
    transport_.with_stream([&](auto& stream) {
      // read_some, not read: deliver each piece as soon as it is parsed
      // instead of waiting for the buffer to fill.
      http::async_read_some(stream, buffer_, *parser_,
                            [self = shared_from_this()](boost::system::error_code ec, size_t) {
                              if (ec == http::error::need_buffer) ec = {};
                              if (ec) return self->fail(ec);
                              self->on_body();
                            });
    });
  }

  void on_body() {
    if (ended_) return;
    size_t got = body_.size() - parser_->get().body().size;
    if (got > 0) {
      arm_idle();
      if (on_data_) core_->gate.call([&] { on_data_(std::string_view(body_.data(), got)); });
    }
    read_body();
  }

  void fail(const boost::system::error_code& ec) {
    if (ended_) return;
    if (ec == http::error::end_of_stream || ec == http::error::partial_message ||
        ec == asio::error::eof || ec == asio::error::connection_reset) {
      return end(ClientError{ClientErrc::io_error, "stream from " + host_field(ep_.hp) +
                                                       " broke: " + ec.message()});
    }
    bool http_category = ec.category() == make_error_code(http::error::end_of_stream).category();
    auto code = http_category ? ClientErrc::protocol_error : ClientErrc::io_error;
    end(ClientError{code, "stream from " + host_field(ep_.hp) + ": " + ec.message()});
  }

  void arm_idle() {
    set_deadline(req_.idle_timeout_ms == 0
                     ? kNever
                     : Clock::now() + std::chrono::milliseconds(req_.idle_timeout_ms));
  }

  void set_deadline(Clock::time_point t) { deadline_.set(t, shared_from_this()); }

  void end(std::optional<ClientError> err) {
    if (ended_.exchange(true)) return;
    deadline_.cancel();
    transport_.close();
    auto on_end = std::move(on_end_);
    on_headers_ = nullptr;
    on_data_ = nullptr;
    on_end_ = nullptr;
    if (on_end) core_->gate.call([&] { on_end(std::move(err)); });
    std::lock_guard lock(core_->streams_mu);
    core_->streams.erase(id_);
  }

  std::shared_ptr<ClientCore> core_;
  Endpoint ep_;
  ClientRequest req_;
  StreamHeadersFn on_headers_;
  StreamDataFn on_data_;
  StreamEndFn on_end_;
  Transport transport_;
  Deadline deadline_;  ///< headers, then silence between pieces
  std::array<char, 16 << 10> body_{};
  beast::flat_buffer buffer_;
  std::optional<http::response_parser<http::buffer_body>> parser_;
  std::string wire_;
  std::atomic<bool> ended_{false};
  uint64_t id_ = 0;
};

class FailedStream final : public StreamHandle {
 public:
  void cancel() override {}
  bool active() const override { return false; }
};

}  // namespace

std::shared_ptr<StreamHandle> start_stream(std::shared_ptr<ClientCore> core, const Endpoint& ep,
                                           ClientRequest req, StreamHeadersFn on_headers,
                                           StreamDataFn on_data, StreamEndFn on_end) {
  auto s = std::make_shared<ClientStream>(core, ep, std::move(req), std::move(on_headers),
                                          std::move(on_data), std::move(on_end));
  uint64_t id;
  {
    std::lock_guard lock(core->streams_mu);
    id = core->next_stream++;
    core->streams[id] = s;
  }
  s->start(id);
  return s;
}

std::shared_ptr<StreamHandle> failed_stream(std::shared_ptr<ClientCore> core, ClientError error,
                                            StreamEndFn on_end) {
  asio::post(asio::make_strand(core->ioc),
             [core, error = std::move(error), on_end = std::move(on_end)]() mutable {
               if (on_end) core->gate.call([&] { on_end(std::move(error)); });
             });
  return std::make_shared<FailedStream>();
}

}  // namespace tenure::net::detail
