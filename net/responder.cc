// Responder: a response under construction, shared between the handler
// (any thread) and its connection (one strand). The response is serialized
// here, by hand, in the caller's thread: the wire format of a response is a
// few lines, and keeping Beast's serializer out of this file keeps it cheap
// (only <boost/beast/core/string.hpp> is seen: a declaration of iequals).

#include <boost/asio/post.hpp>
#include <boost/beast/core/string.hpp>

#include "net/detail/server_shared.h"
#include "net/http_server.h"

namespace tenure::net {

namespace {

using boost::beast::iequals;  // declarations only: Beast's one non-template compare

bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

/// Fields the server owns: a handler's copy would corrupt the framing.
bool reserved_field(std::string_view name) {
  return iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
         iequals(name, "connection") || iequals(name, "content-type");
}

void append_status_line(std::string& out, int status) {
  out += "HTTP/1.1 ";
  out += std::to_string(status);
  out += ' ';
  out += reason_phrase(status);
  out += "\r\n";
}

/// Appends the handler's fields; reports whether one asked to close.
bool append_fields(std::string& out, const std::vector<std::pair<std::string, std::string>>& fields) {
  bool close = false;
  for (const auto& [name, value] : fields) {
    if (name.empty() || has_crlf(name) || has_crlf(value)) continue;
    if (iequals(name, "connection") && iequals(value, "close")) close = true;
    if (reserved_field(name)) continue;
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  return close;
}

void append_chunk(std::string& out, std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  char size[20];
  int n = 0;
  for (size_t v = data.size(); v != 0 || n == 0; v >>= 4) size[n++] = kHex[v & 15];
  while (n > 0) out.push_back(size[--n]);
  out += "\r\n";
  out += data;
  out += "\r\n";
}

}  // namespace

Responder::Responder(Init init) : init_(std::move(init)) {}

void Responder::serialize_locked(const HttpResponse& response, bool force_close) {
  const int status = response.status;
  const bool no_body = status == 204 || status == 304 || (status >= 100 && status < 200);
  std::string& out = out_;
  size_t before = out.size();
  out.reserve(before + 160 + response.body.size());
  append_status_line(out, status);
  if (!no_body && !response.content_type.empty() && !has_crlf(response.content_type)) {
    out += "Content-Type: ";
    out += response.content_type;
    out += "\r\n";
  }
  if (status != 204 && !(status >= 100 && status < 200)) {
    out += "Content-Length: ";
    out += std::to_string(no_body ? 0 : response.body.size());
    out += "\r\n";
  }
  bool asked_close = append_fields(out, response.headers);
  close_after_ = force_close || asked_close || !init_.keep_alive;
  if (close_after_) {
    out += "Connection: close\r\n";
  } else if (init_.http10) {
    out += "Connection: keep-alive\r\n";
  }
  out += "\r\n";
  if (!no_body && !init_.head) out += response.body;
  queued_ += out.size() - before;
}

void Responder::reply(HttpResponse response) {
  {
    std::lock_guard lock(mu_);
    if (phase_ != Phase::waiting || over_) return;
    phase_ = Phase::replied;
    serialize_locked(response, false);
  }
  kick();
}

void Responder::reply_internal(std::string raw, bool close_after) {
  std::lock_guard lock(mu_);
  phase_ = Phase::replied;
  close_after_ = close_after;
  queued_ += raw.size();
  out_ += raw;
}

bool Responder::start_stream(int status, std::string content_type,
                             std::vector<std::pair<std::string, std::string>> headers) {
  {
    std::lock_guard lock(mu_);
    if (phase_ != Phase::waiting || over_) return false;
    auto conn = init_.conn.lock();
    if (conn && init_.seq != 0 && !conn->claim_stream(init_.seq)) {
      phase_ = Phase::replied;
      serialize_locked(json_error(400, "bad_request",
                                  "a stream must be the last request pipelined on its connection; "
                                  "open it on a connection of its own"),
                       false);
      kick();
      return false;
    }
    size_t before = out_.size();
    append_status_line(out_, status);
    if (!content_type.empty() && !has_crlf(content_type)) {
      out_ += "Content-Type: " + content_type + "\r\n";
    }
    bool asked_close = append_fields(out_, headers);
    // An HTTP/1.0 client cannot parse chunks: the stream ends with the
    // connection instead (RFC 9112 §6.3, rule 8).
    close_after_ = asked_close || !init_.keep_alive || init_.http10;
    if (!init_.http10) out_ += "Transfer-Encoding: chunked\r\n";
    if (close_after_) out_ += "Connection: close\r\n";
    out_ += "Cache-Control: no-cache\r\n\r\n";
    queued_ += out_.size() - before;
    phase_ = init_.head ? Phase::ended : Phase::streaming;
  }
  kick();
  return true;
}

bool Responder::write_chunk(std::string data) {
  bool overflow = false;
  {
    std::lock_guard lock(mu_);
    if (phase_ != Phase::streaming || over_) return false;
    if (data.empty()) return true;  // an empty chunk would end the stream
    if (queued_ + data.size() > init_.max_queued_bytes) {
      overflow = true;
      over_ = true;
    } else {
      size_t before = out_.size();
      if (init_.http10) {
        out_ += data;
      } else {
        append_chunk(out_, data);
      }
      queued_ += out_.size() - before;
    }
  }
  if (overflow) {
    // Bound everything (house style 6): a consumer this far behind is cut.
    if (auto conn = init_.conn.lock()) conn->abort();
    return false;
  }
  kick();
  return true;
}

void Responder::end_stream() {
  {
    std::lock_guard lock(mu_);
    if (phase_ != Phase::streaming || over_) return;
    phase_ = Phase::ended;
    if (!init_.http10) {
      out_ += "0\r\n\r\n";
      queued_ += 5;
    }
  }
  kick();
}

size_t Responder::queued_bytes() const {
  std::lock_guard lock(mu_);
  return queued_;
}

bool Responder::closed() const {
  std::lock_guard lock(mu_);
  return over_;
}

bool Responder::streaming() const {
  std::lock_guard lock(mu_);
  return phase_ == Phase::streaming && !over_;
}

void Responder::on_close(std::function<void()> callback) {
  {
    std::lock_guard lock(mu_);
    if (!over_) {
      on_close_ = std::move(callback);
      return;
    }
  }
  if (callback) callback();
}

Responder::Taken Responder::take_output(std::string& dst) {
  std::lock_guard lock(mu_);
  Taken t;
  t.bytes = out_.size();
  if (dst.empty()) {
    dst.swap(out_);
  } else {
    dst += out_;
  }
  out_.clear();
  t.finished = phase_ == Phase::replied || phase_ == Phase::ended;
  t.close_after = t.finished && close_after_;
  return t;
}

void Responder::written(size_t bytes) {
  std::lock_guard lock(mu_);
  queued_ -= std::min(queued_, bytes);
}

std::function<void()> Responder::finish() {
  std::lock_guard lock(mu_);
  over_ = true;
  return std::exchange(on_close_, nullptr);
}

void Responder::released_by_handler() {
  {
    std::lock_guard lock(mu_);
    if (phase_ != Phase::waiting || over_) return;
    phase_ = Phase::replied;
    serialize_locked(json_error(500, "internal", "the request was dropped without an answer"),
                     false);
  }
  kick();
}

void Responder::kick() {
  if (auto conn = init_.conn.lock()) conn->kick();
}

namespace detail {

void ConnectionBase::kick() {
  if (strand_.running_in_this_thread()) {
    write_wanted_ = true;  // the strand handler now running writes before it returns
    return;
  }
  if (kick_posted_.exchange(true)) return;
  boost::asio::post(strand_, [self = shared_from_this()] {
    self->kick_posted_.store(false);
    self->try_write();
  });
}

void ConnectionBase::abort() {
  boost::asio::post(strand_, [self = shared_from_this()] { self->close_now(); });
}

bool ConnectionBase::claim_stream(uint64_t seq) {
  std::lock_guard lock(order_mu_);
  if (last_dispatched_ != seq) {
    if (streams_refused_) streams_refused_->fetch_add(1);
    return false;
  }
  stream_seq_ = seq;
  return true;
}

bool ConnectionBase::may_dispatch(uint64_t seq) {
  std::lock_guard lock(order_mu_);
  if (stream_seq_ != 0) return false;
  last_dispatched_ = seq;
  return true;
}

bool ConnectionBase::release_stream(uint64_t seq) {
  std::lock_guard lock(order_mu_);
  if (seq == 0 || stream_seq_ != seq) return false;
  stream_seq_ = 0;
  return true;
}

}  // namespace detail
}  // namespace tenure::net
