#pragma once
// tenure::agent::Agent — the agent beside one data-plane worker, as a
// library. A program can run it in-process and fence its own writes with
// fence() / with_fence() instead of calling POST /v1/fence over HTTP; the
// tenure-agent binary is this class plus a signal handler.
//
//   tenure::agent::Agent agent(config);          // config::AgentConfig
//   if (!agent.start().ok()) ...;                 // opens data_dir, listens, registers
//   agent.wait_ready(std::chrono::seconds(10));   // registered and re-listed
//   if (agent.fence(ShardId("s-1"), Epoch(3)).ok()) { ...write... }
//   agent.shutdown();                             // stop writes, leave, persist
//
// Threads: every method is thread-safe. The agent runs on its own threads
// (an io_context pool and the data store's writer); nothing of the caller's
// is borrowed after start() returns. Boost stays out of this header.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "config/agent_config.h"
#include "dataplane_agent/clock.h"
#include "dataplane_agent/fence.h"
#include "dataplane_agent/messages.h"
#include "dataplane_agent/program_handler.h"

namespace tenure::agent {

/// How the agent runs, beyond its config file.
struct AgentOptions {
  /// Time source; null = the system's clocks. Must outlive the Agent.
  const Clock* clock = nullptr;
  /// Threads running the HTTP server, the client and the control strand.
  int io_threads = 2;
  /// Serve the agent HTTP API on config.listen (an embedding program may
  /// not need it; the fence is then only the C++ call).
  bool serve_http = true;
  /// The embedding program's callbacks (grant, drain, revoke); instead of
  /// the webhooks to config.app.url. May be null.
  std::shared_ptr<ProgramHandler> handler;
  /// Tests only: called on the control strand after every grant-table
  /// install ("install") and lease extension ("extend_lease").
  std::function<void(std::string_view event)> trace;
};

enum class AgentErrc {
  kStorage,  ///< data_dir cannot be created, locked, opened or read
  kListen,   ///< the HTTP API cannot listen on config.listen
  kClient,   ///< the controller client cannot be set up (TLS files)
  kState,    ///< start() called twice, or after shutdown()
};
using AgentError = Error<AgentErrc>;

class Agent {
 public:
  explicit Agent(config::AgentConfig config, AgentOptions options = {});
  /// shutdown() if still running.
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  /// Opens data_dir (loading every epoch it remembers), starts listening
  /// and starts registering with the controllers. Returns once listening;
  /// writes are refused (kLeaseExpired) until ready().
  Result<Ok, AgentErrc> start();

  /// The fence (docs/fencing.md): kOk when this worker holds `shard` at
  /// exactly `epoch` under a valid lease. Lock-shared, no allocation.
  FenceResult fence(const ShardId& shard, Epoch epoch) const;
  FenceResult fence(std::string_view shard, Epoch epoch) const;
  /// Runs `write` only when the fence admits it, while holding the fence:
  /// no revoke can take effect (and no release be sent) until `write`
  /// returns. Keep `write` short: revokes wait for it.
  FenceResult with_fence(std::string_view shard, Epoch epoch, const std::function<void()>& write) const;

  /// Registered, re-listed, and the lease is valid.
  bool ready() const;
  /// Waits until ready() or `timeout` (polling with a deadline).
  bool wait_ready(std::chrono::milliseconds timeout) const;
  /// Grants held now, sorted by shard.
  std::vector<ShardEpoch> grants() const;
  /// The last controller revision applied.
  Revision revision() const;
  /// The HTTP API's bound port (0 when not serving).
  uint16_t port() const;
  /// The Prometheus text exposition of the agent's metrics.
  std::string metrics_text() const;
  /// True once the agent stopped itself (its grant store failed).
  bool failed() const;

  /// Graceful stop (idempotent): every fence check fails from now on;
  /// waits for writes in flight; tells the controllers it leaves (so they
  /// move its shards at once), waiting at most `leave_timeout`; drops its
  /// grants durably if they accepted; closes everything.
  void shutdown(std::chrono::milliseconds leave_timeout = std::chrono::milliseconds(3000));

  /// For the binary: blocks until SIGTERM or SIGINT (or a fatal failure),
  /// then shutdown(). Returns the exit code (0, or 1 after a failure).
  int run_until_signal();

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tenure::agent
