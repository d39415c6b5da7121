#pragma once
// The agent's Prometheus metrics (CONTRACT.md, "Metrics"; names carry the
// tenure_ prefix and base units). Hot-path counts (fence checks) are kept in
// FenceState's relaxed atomics and copied into the registry at scrape time,
// so a fence check never touches a Prometheus object.
//
// Thread: every method is thread-safe.

#include <array>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "dataplane_agent/fence_state.h"

namespace tenure::net {
class ServerMetrics;
struct ServerStats;
}  // namespace tenure::net

namespace tenure::agent {

class AgentMetrics {
 public:
  explicit AgentMetrics(const FenceState& fence);
  ~AgentMetrics();
  /// Where a scrape reads the listener's counters (set once, before serving).
  void set_server_stats(std::function<net::ServerStats()> stats);

  /// Heartbeat (and register) outcomes: ok, error, not_registered,
  /// worker_dead, bad_answer.
  void heartbeat(const std::string& result);
  void watch_reconnect() { watch_reconnects_.Increment(); }
  /// A lease answer whose extension had to wait for the watch to reach the
  /// answer's worker revision (LeaseLedger): often means a lagging watch.
  void lease_deferred() { lease_deferred_.Increment(); }
  /// Seconds from a grant's proposal (leader's wall clock) to its arrival.
  void grant_delay(double seconds) { grant_delay_.Observe(seconds < 0 ? 0 : seconds); }
  void release(const std::string& result);
  void put(const std::string& result);
  /// A call refused by the client-token check; `route` is a route template.
  void denied(const std::string& route, const std::string& reason);
  void grants_changed(size_t held) { grants_.Set(static_cast<double>(held)); }
  /// One call to the data-plane program (prepare, grant, drain, revoke) by
  /// result: ok, error (retried), timeout (a drain's budget ran out).
  void program_call(const std::string& call, const std::string& result);
  /// Seconds from a call's queueing to the program's answer (or its timeout).
  void program_wait(const std::string& call, double seconds);

  /// The text exposition, with the scrape-time values refreshed.
  std::string serialize();
  prometheus::Registry& registry() { return *registry_; }

 private:
  void refresh();

  const FenceState& fence_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Gauge& grants_;
  prometheus::Gauge& lease_valid_;
  prometheus::Gauge& lease_remaining_;
  prometheus::Gauge& revision_;
  prometheus::Family<prometheus::Counter>& fence_checks_;
  prometheus::Family<prometheus::Counter>& heartbeats_;
  prometheus::Family<prometheus::Counter>& releases_;
  prometheus::Family<prometheus::Counter>& puts_;
  prometheus::Family<prometheus::Counter>& denied_;
  prometheus::Family<prometheus::Counter>& program_calls_;
  prometheus::Family<prometheus::Histogram>& program_wait_;
  prometheus::Counter& watch_reconnects_;
  prometheus::Counter& lease_deferred_;
  prometheus::Histogram& grant_delay_;
  prometheus::Counter& escaped_exceptions_;  ///< net::escaped_exceptions(), synced at scrape time
  std::mutex mu_;  ///< scrape-time refresh
  std::array<uint64_t, kFenceCodeCount> synced_{};
  uint64_t escaped_synced_ = 0;
  std::unique_ptr<net::ServerMetrics> server_metrics_;
  std::function<net::ServerStats()> server_stats_;
};

}  // namespace tenure::agent
