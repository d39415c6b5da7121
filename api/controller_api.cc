#include "api/controller_api.h"

#include <chrono>
#include <random>

#include <prometheus/text_serializer.h>

#include "api/json_body.h"
#include "api/watch_hub.h"
#include "common/log.h"

namespace tenure::api {

namespace {
uint64_t now_ns() { return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()); }

// Constant-time comparison: a token check must not leak how much matched.
bool token_equals(const std::string& a, const std::string& b) {
  if (a.size() != b.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

std::string random_hex(size_t n) {
  std::random_device rd;
  std::string s;
  const char* hex = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) s.push_back(hex[rd() % 16]);
  return s;
}
}  // namespace

ControllerApi::ControllerApi(controller::RaftNode& node, controller::Supervisor& supervisor,
                             net::HttpClient& client, ApiOptions options,
                             std::shared_ptr<prometheus::Registry> registry)
    : node_(node),
      supervisor_(supervisor),
      client_(client),
      options_(std::move(options)),
      registry_(std::move(registry)),
      requests_(prometheus::BuildCounter()
                    .Name("tenure_http_requests_total")
                    .Help("HTTP requests by route, method and status code")
                    .Register(*registry_)),
      latency_(prometheus::BuildHistogram()
                   .Name("tenure_http_request_duration_seconds")
                   .Help("HTTP request latency by route")
                   .Register(*registry_)),
      list_page_strand_(prometheus::BuildHistogram()
                            .Name("tenure_list_page_strand_seconds")
                            .Help("Time one page of a paged list (GET /v1/shards, /v1/workers, /v1/rebalance) "
                                  "took on the Raft strand")
                            .Register(*registry_)
                            .Add({}, prometheus::Histogram::BucketBoundaries{0.00005, 0.0001, 0.00025, 0.0005,
                                                                              0.001, 0.0025, 0.005, 0.01, 0.025,
                                                                              0.05, 0.1})),
      watches_(std::make_unique<WatchHub>(node, *registry_)),
      request_prefix_(node.id() + "-" + random_hex(8) + "-") {
  add_routes();
}

ControllerApi::~ControllerApi() = default;

void ControllerApi::add_routes() {
  router_.add({"GET", "/healthz", Access::kOpen, false, [this](const CallPtr& c) {
                 reply(c, json_response(200, {{"status", "ok"}}));
               }});
  router_.add({"GET", "/readyz", Access::kOpen, false, [this](const CallPtr& c) {
                 auto s = node_.summary();
                 bool ready = !s.leader.empty() && s.applied >= s.commit;
                 nlohmann::json body{{"ready", ready}, {"leader_id", s.leader.str()},
                                     {"applied_index", s.applied.value()}, {"commit_index", s.commit.value()}};
                 if (ready) return reply(c, json_response(200, body));
                 auto r = net::json_error(503, "not_ready", s.leader.empty() ? "no leader known" : "applying the log");
                 r.headers.push_back({"Retry-After", "1"});
                 reply(c, std::move(r));
               }});
  router_.add({"GET", "/metrics", Access::kOpen, false, [this](const CallPtr& c) { serve_metrics(c); }});
  add_shard_routes();
  add_list_routes();
  add_worker_routes();
  add_cluster_routes();
  add_peer_routes();
  add_agent_routes();
  add_rebalance_routes();
  watches_->add_routes(*this);
}

void ControllerApi::serve_metrics(const CallPtr& call) {
  prometheus::TextSerializer serializer;
  net::HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = serializer.Serialize(registry_->Collect());
  reply(call, std::move(r));
}

bool ControllerApi::authorized(const Route& route, const net::HttpRequest& req) const {
  const std::string* token = nullptr;
  switch (route.access) {
    case Access::kOpen: return true;
    case Access::kAdmin: token = &options_.admin_token; break;
    case Access::kAgent: token = &options_.agent_token; break;
    case Access::kPeer: token = &options_.peer_token; break;
  }
  if (token->empty()) return true;
  std::string auth = req.header("authorization");
  const std::string prefix = "Bearer ";
  if (auth.compare(0, prefix.size(), prefix) != 0) return false;
  std::string presented = auth.substr(prefix.size());
  // The admin token may do anything an agent may.
  if (route.access == Access::kAgent && !options_.admin_token.empty() &&
      token_equals(presented, options_.admin_token)) {
    return true;
  }
  return token_equals(presented, *token);
}

void ControllerApi::handle(net::HttpRequest req, std::shared_ptr<net::Responder> res) {
  auto call = std::make_shared<Call>();
  call->start_ns = now_ns();
  call->req = std::move(req);
  call->res = std::move(res);
  bool path_known = false;
  const Route* route = router_.match(call->req.method, call->req.path, call->params, path_known);
  if (!route) {
    call->route = path_known ? "method_not_allowed" : "not_found";
    if (path_known) {
      return reply(call, net::json_error(405, "method_not_allowed",
                                         "method " + call->req.method + " not allowed on " + call->req.path));
    }
    return reply(call, net::json_error(404, "not_found", "no such path: " + call->req.path));
  }
  call->route = route->pattern;
  if (!authorized(*route, call->req)) {
    return reply(call, net::json_error(401, "unauthorized", "missing or wrong bearer token"));
  }
  if (route->needs_leader && !node_.is_leader()) return forward_to_leader(call);
  route->handler(call);
}

ControllerApi::RouteMetrics ControllerApi::route_metrics(const std::string& route, const std::string& method,
                                                         int status) {
  constexpr size_t kMaxCached = 1024;  // routes x methods x statuses; beyond it (odd methods) no caching
  std::lock_guard<std::mutex> lock(route_metrics_mu_);
  auto key = std::make_tuple(std::string_view(route), std::string_view(method), status);
  auto it = route_metrics_.find(key);
  if (it != route_metrics_.end()) return it->second;
  RouteMetrics m;
  m.requests = &requests_.Add({{"route", route}, {"method", method}, {"code", std::to_string(status)}});
  m.latency = &latency_.Add(
      {{"route", route}},
      prometheus::Histogram::BucketBoundaries{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5});
  if (route_metrics_.size() < kMaxCached) route_metrics_.emplace(std::make_tuple(route, method, status), m);
  return m;
}

void ControllerApi::reply(const CallPtr& call, net::HttpResponse response) {
  double secs = static_cast<double>(now_ns() - call->start_ns) / 1e9;
  RouteMetrics m = route_metrics(call->route, call->req.method, response.status);
  m.requests->Increment();
  m.latency->Observe(secs);
  call->res->reply(std::move(response));
}

void ControllerApi::reply_stream_started(const CallPtr& call) {
  requests_.Add({{"route", call->route}, {"method", call->req.method}, {"code", "200"}}).Increment();
}

void ControllerApi::reply_no_leader(const CallPtr& call, const std::string& why) {
  auto r = net::json_error(503, "no_leader", why);
  r.headers.push_back({"Retry-After", "1"});
  reply(call, std::move(r));
}

void ControllerApi::reply_node_error(const CallPtr& call, const controller::NodeError& err) {
  using controller::NodeErrc;
  switch (err.code) {
    case NodeErrc::kNotLeader:
    case NodeErrc::kDropped:
    case NodeErrc::kStopped: return reply_no_leader(call, err.message);
    case NodeErrc::kTimeout: {
      auto r = net::json_error(503, "timeout", err.message);
      r.headers.push_back({"Retry-After", "1"});
      return reply(call, std::move(r));
    }
    case NodeErrc::kBusy: {
      auto r = net::json_error(503, "busy", err.message);
      r.headers.push_back({"Retry-After", "1"});
      return reply(call, std::move(r));
    }
    case NodeErrc::kInvalid: return reply(call, net::json_error(409, "conflict", err.message));
  }
}

std::string ControllerApi::request_id(const CallPtr& call) {
  std::string key = call->req.header("idempotency-key");
  if (!key.empty()) return "k:" + key.substr(0, 128);
  return request_prefix_ + std::to_string(request_seq_.fetch_add(1));
}

void ControllerApi::forward_to_leader(const CallPtr& call) {
  // One hop only: a forwarded request that lands on a non-leader stops here.
  if (!call->req.header("tenure-forwarded").empty()) {
    return reply_no_leader(call, "forwarded to a member that is not the leader");
  }
  auto s = node_.summary();
  if (s.leader.empty() || s.leader_address.empty()) return reply_no_leader(call, "no leader known");
  net::ClientRequest fwd;
  fwd.method = call->req.method;
  fwd.target = call->req.target;
  fwd.body = call->req.body;
  fwd.timeout_ms = options_.forward_timeout_ms;
  for (const char* h : {"authorization", "content-type", "idempotency-key"}) {
    std::string v = call->req.header(h);
    if (!v.empty()) fwd.headers[h] = v;
  }
  // Retries of the forwarded request must apply once: pin the request id here.
  if (fwd.headers.count("idempotency-key") == 0) fwd.headers["idempotency-key"] = request_id(call);
  fwd.headers["tenure-forwarded"] = node_.id();
  client_.request(s.leader_address, std::move(fwd), [this, call](net::ClientResult result) {
    if (!result.ok()) return reply_no_leader(call, "leader unreachable: " + result.error().message);
    const auto& resp = result.value();
    net::HttpResponse r;
    r.status = resp.status;
    auto ct = resp.headers.find("content-type");
    r.content_type = ct == resp.headers.end() ? "application/json" : ct->second;
    r.body = resp.body;
    auto ra = resp.headers.find("retry-after");
    if (ra != resp.headers.end()) r.headers.push_back({"Retry-After", ra->second});
    reply(call, std::move(r));
  });
}

}  // namespace tenure::api
