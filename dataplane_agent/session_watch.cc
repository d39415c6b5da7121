// The watch half of Session: GET /v1/watch?worker=W&since=R, applied line
// by line; reconnects with jittered backoff; a 410 or an error line means a
// full re-list (the events in between may be gone).
#include <boost/asio/post.hpp>

#include "common/log.h"
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

void Session::Impl::start_watch(Revision from) {
  stop_watch();
  if (stopping || !synced) return;
  uint64_t gen = ++watch_gen;
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
      [this, gen](int status, const net::HeaderMap&) {
        asio::post(strand, [this, gen, status] { on_watch_headers(gen, status); });
      },
      [this, gen](std::string_view chunk) {
        std::lock_guard<std::mutex> lock(watch_mu);
        if (watch_pending_gen != gen) {
          watch_pending.clear();
          watch_pending_gen = gen;
        }
        watch_pending.append(chunk);
        if (watch_drain_posted) return;
        watch_drain_posted = true;
        asio::post(strand, [this] { drain_watch(); });
      },
      [this, gen](std::optional<net::ClientError> err) {
        bool transport_error = err.has_value() && err->code != net::ClientErrc::cancelled;
        asio::post(strand, [this, gen, transport_error] { on_watch_end(gen, transport_error); });
      });
}

void Session::Impl::stop_watch() {
  ++watch_gen;
  watch_timer.cancel();
  if (watch) {
    watch->cancel();
    watch.reset();
  }
}

void Session::Impl::on_watch_headers(uint64_t gen, int status) {
  if (gen != watch_gen) return;
  watch_status = status;
  if (status == 200) watch_backoff.reset();
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
  std::vector<std::string> lines;
  bool ok = splitter.feed(chunk, [&](std::string_view line) { lines.emplace_back(line); });
  if (!lines.empty()) process_lines(lines);
  if (!ok && gen == watch_gen) {
    log_warn("agent", "event=watch_line_too_long action=relist");
    start_relist();
  }
}

void Session::Impl::process_lines(const std::vector<std::string>& lines) {
  GrantChanges c(fence.table_for_planning());
  std::vector<int64_t> grant_at_ms;
  bool relist = false;
  bool self_dead = false;
  for (const auto& line : lines) {
    auto parsed = parse_watch_line(line);
    if (!parsed.value) {
      log_warn("agent", "event=watch_bad_line problem=\"" + parsed.error + "\" action=relist");
      relist = true;
      break;
    }
    const WatchEvent& e = *parsed.value;
    if (e.kind == WatchEvent::Kind::kError) {
      log_warn("agent", "event=watch_error error=" + e.error + " action=relist");
      relist = true;
      break;
    }
    // Events at or below what we have applied are repeats (a reconnect).
    Revision applied = c.revision().value_or(fence.revision());
    if (e.kind != WatchEvent::Kind::kProgress && e.revision <= applied) continue;
    if (e.kind == WatchEvent::Kind::kGrant && e.worker == config.worker && e.at_ms > 0) grant_at_ms.push_back(e.at_ms);
    if (e.kind == WatchEvent::Kind::kWorker && e.worker == config.worker && (e.state == "dead" || e.state == "removed")) {
      self_dead = true;
    }
    c.apply_event(e, config.worker);
  }
  if (!commit(c)) return;
  int64_t now_ms = clock.wall_ms();
  for (int64_t at : grant_at_ms) metrics.grant_delay(static_cast<double>(now_ms - at) / 1000.0);
  send_release(c.to_release());
  if (self_dead) return lost_registration("declared_dead_in_watch", /*drop_grants=*/true);
  if (relist) start_relist();
}

void Session::Impl::on_watch_end(uint64_t gen, bool transport_error) {
  if (gen != watch_gen || stopping) return;
  watch.reset();
  if (watch_status == 410) {
    log_warn("agent", "event=watch_compacted revision=" + std::to_string(fence.revision().value()) + " action=relist");
    return start_relist();
  }
  // No answer, or "no leader": another member may serve the stream.
  if (transport_error || watch_status == 503 || watch_status == 0) pool.rotate();
  log_warn("agent", "event=watch_ended status=" + std::to_string(watch_status) +
                        (transport_error ? " transport_error=true" : "") + " action=reconnect");
  schedule_watch_reconnect();
}

void Session::Impl::schedule_watch_reconnect() {
  uint64_t gen = watch_gen;
  watch_timer.expires_after(watch_backoff.next());
  watch_timer.async_wait([this, gen](const boost::system::error_code& ec) {
    if (ec || gen != watch_gen || stopping || !synced) return;
    metrics.watch_reconnect();
    start_watch(fence.revision());
  });
}

}  // namespace tenure::agent
