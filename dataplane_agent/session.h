#pragma once
// The agent's conversation with the controllers: register, heartbeat,
// re-list, watch, release, leave. Every decision runs on one strand of the
// agent's io_context (the "control strand"), which is also the only writer
// of the grant table and the lease.
//
// Order rules (docs/fencing.md):
// - a heartbeat or register answer first drops (durably) the shards it
//   lists as revoked, then extends the lease, then sends their release;
// - a revoke from the watch drops the grant (keeping its epoch), then
//   releases it;
// - a grant is made durable before it is served;
// - nothing is served until the agent has registered and re-listed.
//
// Asio stays out of this header (DESIGN.md, house style 12).

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "dataplane_agent/clock.h"
#include "dataplane_agent/fence.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace tenure::net {
class HttpClient;
}  // namespace tenure::net

namespace tenure::agent {

class AgentMetrics;
class ControllerPool;
class FenceState;
class GrantFeed;
class GrantStore;
class ProgramLink;

/// What the session needs to know about this worker.
struct SessionConfig {
  WorkerId worker;
  std::string advertise;  ///< host:port clients dial
  std::string zone;
  double capacity = 1;
  std::chrono::milliseconds heartbeat_interval{500};
  /// The data-plane program told of changes and asked to drain; null or
  /// disabled: none. Must outlive the session.
  ProgramLink* program = nullptr;
  /// GET /v1/grants/watch's changes; null: none. Must outlive the session.
  GrantFeed* feed = nullptr;
};

class Session {
 public:
  /// Everything passed must outlive the session; `client` must be shut down
  /// (so no callback runs) before the session is destroyed.
  Session(boost::asio::io_context& io, net::HttpClient& client, ControllerPool& pool, GrantStore& store,
          FenceState& fence, AgentMetrics& metrics, const Clock& clock, SessionConfig config);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  /// Begins registering; returns at once.
  void start();
  /// Graceful end: stops every loop, sends POST .../leave (each attempt
  /// bounded by `timeout`) and, if the controllers accepted it, drops every
  /// grant durably. `done(left)` runs once on an io thread.
  void leave(std::chrono::milliseconds timeout, std::function<void(bool left)> done);
  /// Called (on an io thread) if the grant store fails: the fence has been
  /// stopped for good. Set before start().
  void on_fatal(std::function<void(const std::string&)> fn);

  /// Registered and re-listed since the last (re-)registration.
  bool synced() const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace tenure::agent
