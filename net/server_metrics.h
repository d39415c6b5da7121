#pragma once
// The HTTP listener's counters (ServerStats) as Prometheus metrics, copied
// in at scrape time so the request path never touches a Prometheus object.
// Used by the controller and the agent (docs/architecture.md, "Limits").
// Also: raising RLIMIT_NOFILE at start and the connection cap below it.

#include <cstdint>
#include <mutex>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "net/http_server.h"

namespace tenure::net {

class ServerMetrics {
 public:
  /// Registers tenure_http_connections{,_max}, tenure_http_connection_buffer_bytes,
  /// tenure_http_connections_refused_total,
  /// tenure_http_rejected_total{reason}, tenure_http_timeouts_total and
  /// tenure_http_tls_handshakes_total{session="new"|"resumed"}.
  explicit ServerMetrics(prometheus::Registry& registry);
  /// Copies `stats` in. Thread-safe.
  void update(const ServerStats& stats);

 private:
  prometheus::Gauge& open_;
  prometheus::Gauge& max_;
  prometheus::Gauge& buffers_;
  prometheus::Counter& refused_;
  prometheus::Family<prometheus::Counter>& rejected_;
  prometheus::Counter& timeouts_;
  prometheus::Counter& held_;
  prometheus::Family<prometheus::Counter>& handshakes_;
  std::mutex mu_;
  ServerStats last_;
};

/// Raises this process's soft RLIMIT_NOFILE to its hard limit (a server
/// needs a descriptor per connection) and returns the soft limit now in
/// force (0 if it cannot be read).
uint64_t raise_fd_limit();

/// The connection cap to use under a descriptor limit of `fd_limit`: at most
/// `wanted`, and low enough that the program's own files, peer and client
/// connections still get descriptors (a reserve of 256, or half of a tiny
/// limit), so that accept() never fails for want of one.
size_t connection_cap(size_t wanted, uint64_t fd_limit);

}  // namespace tenure::net
