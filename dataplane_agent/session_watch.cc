// The watch stream of Session's shell: GET /v1/watch?worker=W&since=R,
// split into lines, decoded and handed to the core in one batch per drain
// of what the stream delivered; its end reported with why it ended.
#include <boost/asio/post.hpp>

#include "dataplane_agent/messages.h"
#include "dataplane_agent/session_impl.h"

namespace tenure::agent {

namespace asio = boost::asio;

namespace {
/// Up to the response headers; the body then has its own idle limit.
constexpr uint32_t kWatchConnectTimeoutMs = 5000;
/// The controllers send a progress line every ~5 s: three missed is a dead stream.
constexpr uint32_t kWatchIdleTimeoutMs = 15000;
}  // namespace

void Session::Impl::open_watch(uint64_t gen, Revision from) {
  close_watch();
  watch_gen = gen;
  watch_status = 0;
  splitter = net::LineSplitter();
  net::ClientRequest req;
  req.method = "GET";
  req.target = "/v1/watch?worker=" + net::percent_encode(config.worker.str()) + "&since=" + std::to_string(from.value());
  req.headers = pool.auth_headers();
  req.timeout_ms = kWatchConnectTimeoutMs;
  req.idle_timeout_ms = kWatchIdleTimeoutMs;
  watch = client.stream(
      pool.current(), std::move(req),
      [this, gen](int status, const net::HeaderMap&) { post([this, gen, status] { on_watch_headers(gen, status); }); },
      [this, gen](std::string_view chunk) {
        std::lock_guard<std::mutex> lock(watch_mu);
        if (watch_pending_gen != gen) {
          watch_pending.clear();
          watch_pending_gen = gen;
        }
        watch_pending.append(chunk);
        if (watch_drain_posted) return;
        watch_drain_posted = true;
        post([this] { drain_watch(); });
      },
      [this, gen](std::optional<net::ClientError> err) {
        bool transport_error = err.has_value() && err->code != net::ClientErrc::cancelled;
        post([this, gen, transport_error] { on_watch_end(gen, transport_error); });
      });
}

void Session::Impl::close_watch() {
  watch_gen = 0;
  if (watch) {
    watch->cancel();
    watch.reset();
  }
}

void Session::Impl::on_watch_headers(uint64_t gen, int status) {
  if (gen != watch_gen) return;
  watch_status = status;
  if (status == 200) core.on_watch_open(gen);
}

void Session::Impl::drain_watch() {
  std::string data;
  uint64_t gen = 0;
  {
    std::lock_guard<std::mutex> lock(watch_mu);
    watch_drain_posted = false;
    gen = watch_pending_gen;  // an older stream's data was dropped when a newer one began
    data.swap(watch_pending);
  }
  if (!data.empty()) on_watch_data(gen, std::move(data));
}

void Session::Impl::on_watch_data(uint64_t gen, std::string chunk) {
  if (gen != watch_gen || watch_status != 200) return;  // an error body is judged by its status
  WatchBatch batch;
  batch.overflow = !splitter.feed(chunk, [&](std::string_view line) {
    if (!batch.undecodable.empty()) return;  // the core re-lists: what follows is not applied
    auto parsed = parse_watch_line(line);
    if (!parsed.value) {
      batch.undecodable = parsed.error;
      return;
    }
    batch.events.push_back(std::move(*parsed.value));
  });
  if (batch.events.empty() && batch.undecodable.empty() && !batch.overflow) return;
  core.on_watch_batch(gen, std::move(batch));
}

void Session::Impl::on_watch_end(uint64_t gen, bool transport_error) {
  if (gen != watch_gen) return;
  watch.reset();
  watch_gen = 0;
  WatchEnd why = WatchEnd::kOther;
  if (watch_status == 410) {
    why = WatchEnd::kCompacted;
  } else if (transport_error || watch_status == 503 || watch_status == 0) {
    why = WatchEnd::kUnavailable;
  }
  core.on_watch_end(gen, why, watch_status);
}

}  // namespace tenure::agent
