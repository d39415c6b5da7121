#pragma once
// The agent's HTTP API (CONTRACT.md, "Agent HTTP API"): /healthz, /readyz,
// /metrics, /v1/grants, /v1/fence, and the reference fenced store
// /v1/data/{shard}/{key}. Handlers never block on the network; a PUT is
// answered from the data store's writer thread.

#include <functional>
#include <memory>
#include <string>

#include "dataplane_agent/data_store.h"
#include "dataplane_agent/fence_state.h"
#include "dataplane_agent/grant_feed.h"
#include "dataplane_agent/metrics.h"
#include "net/auth.h"
#include "net/http_server.h"

namespace tenure::agent {

class HttpApi {
 public:
  /// Everything passed must outlive the API. `ready` says whether the agent
  /// has registered and re-listed (for /readyz).
  HttpApi(WorkerId worker, FenceState& fence, DataStore& data, AgentMetrics& metrics, std::function<bool()> ready);

  /// Requires `Authorization: Bearer <token>` on /v1/fence and /v1/data
  /// from now on (config auth.client_token). Call before serving.
  void require_client_token(std::string_view token) { client_token_ = net::SecretDigest(token); }
  /// Serves GET /v1/grants/watch from `feed` (must outlive the API).
  void serve_grant_feed(GrantFeed& feed) { feed_ = &feed; }

  /// The net::Handler: dispatches one request.
  void handle(net::HttpRequest req, std::shared_ptr<net::Responder> res);

  /// Values the API accepts, exposed for tests.
  static constexpr size_t kMaxKeyBytes = 1024;

 private:
  /// The 401 to send when the client token is required and not presented.
  std::optional<net::HttpResponse> check_client_token(const net::HttpRequest& req, const char* route);
  net::HttpResponse grants() const;
  net::HttpResponse fence(const net::HttpRequest& req) const;
  void put_data(const net::HttpRequest& req, const std::string& shard, std::string key,
                std::shared_ptr<net::Responder> res);
  net::HttpResponse get_data(const std::string& shard, const std::string& key);

  const WorkerId worker_;
  FenceState& fence_;
  DataStore& data_;
  AgentMetrics& metrics_;
  std::function<bool()> ready_;
  net::SecretDigest client_token_;  ///< not set: the data API is open
  GrantFeed* feed_ = nullptr;
};

/// The response for a refused fence check (409, 421 or 503, JSON).
net::HttpResponse fence_error(const FenceResult& r);

}  // namespace tenure::agent
