#pragma once
// The agent's link to the data-plane program (CONTRACT.md, "Agent and
// program"): the session core's changes and drains become calls, either
// POST {app.url}/tenure/v1/{prepare|grant|drain|revoke} or the C++ handler.
//
// Order and retries: calls for one shard go one at a time, in the order
// they were queued; a grant or revoke the program did not acknowledge (no
// 2xx, no answer) is sent again with backoff (100 ms doubling to 5 s) until
// it is, so a grant is never lost while the agent runs. A prepare or a
// drain is tried until its budget runs out, then counted as a timeout and
// finished (the move goes on anyway). At most kMaxInflight calls are out at once.
//
// Threads: every method is thread-safe; `done` of a drain runs on an io
// thread. Asio stays out of this header.

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dataplane_agent/messages.h"
#include "dataplane_agent/program_change.h"
#include "dataplane_agent/program_handler.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace tenure::net {
class HttpClient;
}  // namespace tenure::net

namespace tenure::agent {

class AgentMetrics;

struct ProgramLinkOptions {
  /// "http://host:port[/prefix]"; empty: no webhooks.
  std::string url;
  std::chrono::milliseconds drain_timeout{5000};
  std::chrono::milliseconds prepare_timeout{5000};
  /// Sent as a bearer token with every webhook; empty: none.
  std::string token;
  /// The embedding program's handler (takes precedence over url); may be null.
  std::shared_ptr<ProgramHandler> handler;
};

class ProgramLink {
 public:
  ProgramLink(boost::asio::io_context& io, net::HttpClient& client, AgentMetrics& metrics, ProgramLinkOptions o);
  ~ProgramLink();
  ProgramLink(const ProgramLink&) = delete;
  ProgramLink& operator=(const ProgramLink&) = delete;

  /// A program is configured (url or handler).
  bool enabled() const;
  /// Queues a grant or revoke for each change, in order.
  void changes(const std::vector<ProgramChange>& changes);
  /// Asks the program to drain `s` within min(budget, drain_timeout);
  /// `done` runs once, when it answered or the time ran out.
  void drain(const ShardEpoch& s, std::chrono::nanoseconds budget, std::function<void()> done);
  /// Asks the program to prepare `s` (to be granted here at s.epoch) within
  /// prepare_timeout; `done` runs once, when it answered or the time ran out.
  void prepare(const ShardEpoch& s, std::function<void()> done);
  /// Tells the handler (if any) that the lease is lost; webhooks have no
  /// such call (CONTRACT.md's table): their program sees refused writes.
  void lease_lost();
  /// Calls not yet acknowledged (queued or out).
  size_t pending() const;
  /// Stops sending; pending calls are dropped (drains finish at once).
  void shutdown();

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tenure::agent
