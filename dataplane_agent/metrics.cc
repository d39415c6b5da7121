#include "dataplane_agent/metrics.h"

#include <chrono>

#include <prometheus/text_serializer.h>

#include "net/io_runner.h"
#include "net/server_metrics.h"

namespace tenure::agent {

namespace {
prometheus::Gauge& gauge(prometheus::Registry& r, const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}
}  // namespace

AgentMetrics::AgentMetrics(const FenceState& fence)
    : fence_(fence),
      registry_(std::make_shared<prometheus::Registry>()),
      grants_(gauge(*registry_, "tenure_agent_grants", "Shards this agent holds a grant for")),
      lease_valid_(gauge(*registry_, "tenure_agent_lease_valid", "1 while the lease is valid, else 0")),
      lease_remaining_(gauge(*registry_, "tenure_agent_lease_remaining_seconds", "Time left on the lease")),
      revision_(gauge(*registry_, "tenure_agent_revision", "Last controller revision applied")),
      fence_checks_(prometheus::BuildCounter()
                        .Name("tenure_agent_fence_checks_total")
                        .Help("Fence checks by result (HTTP and in-process)")
                        .Register(*registry_)),
      heartbeats_(prometheus::BuildCounter()
                      .Name("tenure_agent_heartbeats_total")
                      .Help("Heartbeats and registrations by result")
                      .Register(*registry_)),
      releases_(prometheus::BuildCounter()
                    .Name("tenure_agent_releases_total")
                    .Help("Release confirmations sent, by result")
                    .Register(*registry_)),
      puts_(prometheus::BuildCounter()
                .Name("tenure_agent_data_puts_total")
                .Help("PUT /v1/data by result")
                .Register(*registry_)),
      denied_(prometheus::BuildCounter()
                  .Name("tenure_auth_denied_total")
                  .Help("Calls refused for a missing or wrong client token, by route and reason")
                  .Register(*registry_)),
      program_calls_(prometheus::BuildCounter()
                         .Name("tenure_agent_program_calls_total")
                         .Help("Calls to the data-plane program (app.url or the C++ handler) by call and result")
                         .Register(*registry_)),
      program_wait_(prometheus::BuildHistogram()
                        .Name("tenure_agent_program_wait_seconds")
                        .Help("From a program call's queueing to its answer (or a drain's timeout), by call")
                        .Register(*registry_)),
      watch_reconnects_(prometheus::BuildCounter()
                            .Name("tenure_agent_watch_reconnects_total")
                            .Help("Watch streams re-opened")
                            .Register(*registry_)
                            .Add({})),
      lease_deferred_(prometheus::BuildCounter()
                          .Name("tenure_agent_lease_extensions_deferred_total")
                          .Help("Lease answers whose extension waited for the watch to reach their worker revision")
                          .Register(*registry_)
                          .Add({})),
      grant_delay_(prometheus::BuildHistogram()
                       .Name("tenure_agent_grant_delay_seconds")
                       .Help("From a grant's proposal at the leader (its at_ms) to its arrival here")
                       .Register(*registry_)
                       .Add({}, prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.002, 0.005, 0.01, 0.025,
                                                                        0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
      escaped_exceptions_(prometheus::BuildCounter()
                              .Name("tenure_escaped_exceptions_total")
                              .Help("Exceptions caught at a thread or handler boundary (logged); should stay 0")
                              .Register(*registry_)
                              .Add({})) {
  // Every label value exists from the start, so dashboards see zeros.
  for (int i = 0; i < kFenceCodeCount; ++i) {
    fence_checks_.Add({{"result", std::string(to_string(static_cast<FenceCode>(i)))}});
  }
  for (const char* r : {"ok", "error", "not_registered", "worker_dead", "bad_answer"}) heartbeats_.Add({{"result", r}});
  for (const char* c : {"grant", "drain", "revoke"}) {
    for (const char* r : {"ok", "error", "timeout"}) program_calls_.Add({{"call", c}, {"result", r}});
  }
  server_metrics_ = std::make_unique<net::ServerMetrics>(*registry_);
}

AgentMetrics::~AgentMetrics() = default;

void AgentMetrics::set_server_stats(std::function<net::ServerStats()> stats) { server_stats_ = std::move(stats); }

void AgentMetrics::heartbeat(const std::string& result) { heartbeats_.Add({{"result", result}}).Increment(); }
void AgentMetrics::release(const std::string& result) { releases_.Add({{"result", result}}).Increment(); }
void AgentMetrics::denied(const std::string& route, const std::string& reason) {
  denied_.Add({{"route", route}, {"reason", reason}}).Increment();
}

void AgentMetrics::program_call(const std::string& call, const std::string& result) {
  program_calls_.Add({{"call", call}, {"result", result}}).Increment();
}

void AgentMetrics::program_wait(const std::string& call, double seconds) {
  program_wait_
      .Add({{"call", call}},
           prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})
      .Observe(seconds < 0 ? 0 : seconds);
}

void AgentMetrics::put(const std::string& result) { puts_.Add({{"result", result}}).Increment(); }

void AgentMetrics::refresh() {
  std::lock_guard lock(mu_);
  auto counts = fence_.counts();
  for (int i = 0; i < kFenceCodeCount; ++i) {
    auto& c = fence_checks_.Add({{"result", std::string(to_string(static_cast<FenceCode>(i)))}});
    c.Increment(static_cast<double>(counts[i] - synced_[i]));
    synced_[i] = counts[i];
  }
  lease_valid_.Set(fence_.lease_valid() ? 1 : 0);
  lease_remaining_.Set(std::chrono::duration<double>(fence_.lease_remaining()).count());
  revision_.Set(static_cast<double>(fence_.revision().value()));
  grants_.Set(static_cast<double>(fence_.held_count()));
  uint64_t escaped = net::escaped_exceptions();
  escaped_exceptions_.Increment(static_cast<double>(escaped - escaped_synced_));
  escaped_synced_ = escaped;
  if (server_stats_) server_metrics_->update(server_stats_());
}

std::string AgentMetrics::serialize() {
  refresh();
  prometheus::TextSerializer serializer;
  return serializer.Serialize(registry_->Collect());
}

}  // namespace tenure::agent
