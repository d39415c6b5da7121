#include "net/server_metrics.h"

#include <sys/resource.h>

#include <algorithm>

namespace tenure::net {

namespace {
prometheus::Gauge& gauge(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}
prometheus::Counter& counter(prometheus::Registry& r, const char* name, const char* help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}
void add(prometheus::Counter& c, uint64_t now, uint64_t before) {
  if (now > before) c.Increment(static_cast<double>(now - before));
}
}  // namespace

ServerMetrics::ServerMetrics(prometheus::Registry& registry)
    : open_(gauge(registry, "tenure_http_connections", "Open client connections")),
      max_(gauge(registry, "tenure_http_connections_max", "The connection cap (kept below RLIMIT_NOFILE)")),
      buffers_(gauge(registry, "tenure_http_connection_buffer_bytes",
                     "What the open connections' read and write buffers hold")),
      refused_(counter(registry, "tenure_http_connections_refused_total",
                       "Connections closed at accept because the cap was reached")),
      rejected_(prometheus::BuildCounter()
                    .Name("tenure_http_rejected_total")
                    .Help("Requests refused by the server before any handler, by reason")
                    .Register(registry)),
      timeouts_(counter(registry, "tenure_http_timeouts_total",
                        "Connections closed by the request, idle or write timeout")),
      held_(counter(registry, "tenure_http_held_behind_stream_total",
                    "Requests that waited for a stream on their connection to end")),
      handshakes_(prometheus::BuildCounter()
                      .Name("tenure_http_tls_handshakes_total")
                      .Help("TLS handshakes completed: a new session, or one resumed (no certificate checked)")
                      .Register(registry)) {
  for (const char* reason : {"malformed", "too_large", "non_utf8", "stream_pipelined"}) rejected_.Add({{"reason", reason}});
  for (const char* session : {"new", "resumed"}) handshakes_.Add({{"session", session}});
}

void ServerMetrics::update(const ServerStats& s) {
  std::lock_guard lock(mu_);
  open_.Set(static_cast<double>(s.open_connections));
  max_.Set(static_cast<double>(s.max_connections));
  buffers_.Set(static_cast<double>(s.buffer_bytes));
  add(refused_, s.refused_at_cap, last_.refused_at_cap);
  add(rejected_.Add({{"reason", "malformed"}}), s.malformed, last_.malformed);
  add(rejected_.Add({{"reason", "too_large"}}), s.too_large, last_.too_large);
  add(rejected_.Add({{"reason", "non_utf8"}}), s.non_utf8, last_.non_utf8);
  add(rejected_.Add({{"reason", "stream_pipelined"}}), s.streams_refused, last_.streams_refused);
  add(timeouts_, s.timeouts, last_.timeouts);
  add(held_, s.held_behind_stream, last_.held_behind_stream);
  add(handshakes_.Add({{"session", "new"}}), s.tls_new_sessions, last_.tls_new_sessions);
  add(handshakes_.Add({{"session", "resumed"}}), s.tls_resumed, last_.tls_resumed);
  last_ = s;
}

uint64_t raise_fd_limit() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
  if (lim.rlim_cur < lim.rlim_max) {
    rlimit want = lim;
    want.rlim_cur = lim.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) lim = want;
  }
  return lim.rlim_cur == RLIM_INFINITY ? UINT64_MAX : static_cast<uint64_t>(lim.rlim_cur);
}

size_t connection_cap(size_t wanted, uint64_t fd_limit) {
  if (fd_limit == 0) return wanted;  // unknown: keep the configured cap
  uint64_t reserve = std::min<uint64_t>(256, fd_limit / 2);
  uint64_t room = std::max<uint64_t>(1, fd_limit - reserve);
  return static_cast<size_t>(std::min<uint64_t>(wanted, room));
}

}  // namespace tenure::net
