#pragma once
// The controllers as one endpoint: calls go to the member that last
// answered; on a transport error or a 503 the next member is tried, each at
// most once per call (the list in config order, wrapping). Any member
// answers an agent call: followers forward to the leader.
//
// Thread: call() from any thread; `done` runs on an io_context thread.

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "dataplane_agent/clock.h"
#include "net/http_client.h"

namespace tenure::agent {

/// The outcome of one call: the last attempt's result and when that
/// attempt was sent (the lease counts from there).
struct PoolReply {
  net::ClientResult result = net::ClientError{net::ClientErrc::shut_down, "not sent"};
  SteadyTime sent;
  std::string endpoint;
  /// True for a response with a 2xx status.
  bool ok() const { return result.ok() && result.value().status / 100 == 2; }
  int status() const { return result.ok() ? result.value().status : 0; }
};

class ControllerPool {
 public:
  /// `client` and `clock` must outlive the pool. `endpoints` is non-empty.
  ControllerPool(net::HttpClient& client, std::vector<std::string> endpoints, std::string agent_token,
                 const Clock& clock);

  /// Sends `method target` with `body` (JSON) to the current member; moves
  /// on as described above. `timeout_ms` bounds each attempt.
  void call(const std::string& method, const std::string& target, std::string body, uint32_t timeout_ms,
            std::function<void(PoolReply)> done);

  /// The member calls go to now.
  std::string current() const;
  /// Moves to the next member (e.g. after its watch stream failed).
  void rotate();
  /// The Authorization header (empty when no token is configured).
  net::HeaderMap auth_headers() const;

 private:
  struct Attempt;
  void attempt(std::shared_ptr<Attempt> a);

  net::HttpClient& client_;
  const std::vector<std::string> endpoints_;
  const std::string token_;
  const Clock& clock_;
  std::atomic<size_t> current_{0};
};

}  // namespace tenure::agent
