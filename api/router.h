#pragma once
// Route matching for the REST API: "/v1/shards/{id}/move" style patterns,
// with 404 for unknown paths and 405 for a known path with another method.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "api/access.h"
#include "net/http_server.h"

namespace tenure::api {

/// One request being answered: the request, its captured path parameters
/// and the responder, plus what the metrics need.
struct Call {
  net::HttpRequest req;
  std::shared_ptr<net::Responder> res;
  std::map<std::string, std::string> params;
  std::string route;  ///< the matched pattern: the metrics label
  uint64_t start_ns = 0;
  Role role = Role::kNone;  ///< what the bearer token proved (kNone: none, or not checked)
  /// Who the client certificate names (kNone without mTLS); for a request a
  /// follower forwarded, the original client's identity.
  CertIdentity identity;
  const std::string& param(const std::string& name) const { return params.at(name); }
};
using CallPtr = std::shared_ptr<Call>;

using RouteHandler = std::function<void(const CallPtr&)>;

struct Route {
  std::string method;
  std::string pattern;
  Access access = Access::kOpen;
  bool needs_leader = false;  ///< followers forward it to the leader
  RouteHandler handler;
};

class Router {
 public:
  void add(Route route);
  /// The route for `method` and `raw_path` (not percent-decoded: its
  /// segments are decoded one by one), filling `params` with decoded
  /// values; nullptr if none. Then `allowed` lists the methods some route
  /// has for this path ("GET, HEAD, POST"; empty when none: a 404, not a 405).
  const Route* match(const std::string& method, const std::string& raw_path,
                     std::map<std::string, std::string>& params, std::string& allowed) const;

 private:
  struct Compiled {
    Route route;
    std::vector<std::string> segments;
  };
  std::vector<Compiled> routes_;
};

std::vector<std::string> split_path(const std::string& path);

}  // namespace tenure::api
