#include "api/controller_api.h"

#include "api/history_backfill.h"

#include <chrono>
#include <random>

#include <prometheus/text_serializer.h>

#include "api/json_body.h"
#include "api/watch_hub.h"
#include "common/log.h"
#include "net/auth.h"
#include "net/io_runner.h"

namespace tenure::api {

namespace {
uint64_t now_ns() { return static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()); }

/// The method as a metric label: a closed set, so that a client inventing
/// methods cannot grow /metrics (issue 8: 300 random methods added 329 series).
std::string_view method_label(std::string_view method) {
  for (std::string_view known : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"}) {
    if (method == known) return known;
  }
  return "other";
}

std::string random_hex(size_t n) {
  std::random_device rd;
  std::string s;
  const char* hex = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) s.push_back(hex[rd() % 16]);
  return s;
}
}  // namespace

ControllerApi::ControllerApi(member::RaftNode& node, member::Supervisor& supervisor,
                             net::HttpClient& client, ApiOptions options,
                             std::shared_ptr<prometheus::Registry> registry)
    : node_(node),
      supervisor_(supervisor),
      client_(client),
      options_(std::move(options)),
      tokens_(options_.admin_token, options_.agent_token, options_.peer_token, options_.read_token),
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
      denied_(prometheus::BuildCounter()
                  .Name("tenure_auth_denied_total")
                  .Help("Calls refused by authentication or authorization, by route and reason")
                  .Register(*registry_)),
      escaped_exceptions_(prometheus::BuildCounter()
                              .Name("tenure_escaped_exceptions_total")
                              .Help("Exceptions caught at a thread or handler boundary (logged); should stay 0")
                              .Register(*registry_)
                              .Add({})),
      server_metrics_(std::make_unique<net::ServerMetrics>(*registry_)),
      watches_(std::make_unique<WatchHub>(node, *registry_)),
      request_prefix_(node.id() + "-" + random_hex(8) + "-") {
  if (node.history()) {
    backfill_ = std::make_unique<HistoryBackfill>(node, *node.history(), client_, options_.peer_token);
  }
  // Only digests are kept (and the backfill's copy of the peer token, which
  // it sends as the transport does): the tokens leave memory with options_.
  options_.admin_token.clear();
  options_.agent_token.clear();
  options_.peer_token.clear();
  options_.read_token.clear();
  add_routes();
}

ControllerApi::~ControllerApi() = default;

void ControllerApi::add_routes() {
  router_.add({"GET", "/healthz", Access::kPublic, false, [this](const CallPtr& c) {
                 reply(c, json_response(200, {{"status", "ok"}}));
               }});
  router_.add({"GET", "/readyz", Access::kPublic, false, [this](const CallPtr& c) {
                 auto s = node_.summary();
                 bool ready = !s.leader.empty() && s.applied >= s.commit;
                 nlohmann::json body{{"ready", ready}, {"leader_id", s.leader.str()},
                                     {"applied_index", s.applied.value()}, {"commit_index", s.commit.value()}};
                 if (ready) return reply(c, json_response(200, body));
                 auto r = net::json_error(503, "not_ready", s.leader.empty() ? "no leader known" : "applying the log");
                 r.headers.push_back({"Retry-After", "1"});
                 reply(c, std::move(r));
               }});
  router_.add({"GET", "/metrics", Access::kPublic, false, [this](const CallPtr& c) { serve_metrics(c); }});
  add_shard_routes();
  add_list_routes();
  add_worker_routes();
  add_cluster_routes();
  add_peer_routes();
  add_agent_routes();
  add_rebalance_routes();
  add_ui_routes();
  watches_->add_routes(*this);
}

void ControllerApi::serve_metrics(const CallPtr& call) {
  {
    std::lock_guard lock(scrape_mu_);
    uint64_t escaped = net::escaped_exceptions();
    escaped_exceptions_.Increment(static_cast<double>(escaped - escaped_synced_));
    escaped_synced_ = escaped;
  }
  if (server_stats_) server_metrics_->update(server_stats_());
  prometheus::TextSerializer serializer;
  net::HttpResponse r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = serializer.Serialize(registry_->Collect());
  reply(call, std::move(r));
}

std::optional<net::HttpResponse> ControllerApi::check_access(const Route& route, Call& call) {
  std::optional<Denial> denial = check_token(route.access, tokens_, net::bearer_token(call.req), call.role);
  if (!denial && options_.client_certs) {
    call.identity = cert_identity(call.req.client_cert.get());
    // A follower forwarding a call presents its own (controller) certificate
    // and names the original client's identity, which it has checked; that
    // header is believed from a controller's certificate only.
    // Only calls a follower forwards (never peer traffic: a member must not
    // be able to speak as another through it).
    if (route.needs_leader && route.access != Access::kPeer && call.identity.kind == CertKind::kController &&
        !call.req.header("tenure-forwarded").empty()) {
      call.identity = CertIdentity::parse(call.req.header("tenure-forwarded-identity"));
    }
    std::string worker = route.access == Access::kAgent && call.params.count("id") ? call.params.at("id") : "";
    denial = check_certificate(route.access, call.identity, worker);
  }
  if (!denial) return std::nullopt;
  return deny(call, *denial);
}

net::HttpResponse ControllerApi::deny(const Call& call, const Denial& denial) {
  denied_.Add({{"route", call.route}, {"reason", denial.reason}}).Increment();
  auto r = net::json_error(denial.status, denial.code, denial.message);
  if (denial.status == 401) r.headers.push_back({"WWW-Authenticate", "Bearer realm=\"tenure\""});
  return r;
}

bool ControllerApi::sender_matches(const CallPtr& call, std::string_view from) {
  if (!options_.client_certs || call->identity.name == from) return true;
  reply(call, deny(*call, Denial{403, "forbidden", "raft_sender",
                                 "the certificate names \"" + call->identity.str() + "\" but the message is from \"" +
                                     std::string(from) + "\""}));
  return false;
}

void ControllerApi::handle(net::HttpRequest req, std::shared_ptr<net::Responder> res) {
  auto call = std::make_shared<Call>();
  call->start_ns = now_ns();
  call->req = std::move(req);
  call->res = std::move(res);
  std::string allowed;
  const Route* route = router_.match(call->req.method, call->req.raw_path, call->params, allowed);
  if (!route) {
    call->route = allowed.empty() ? "not_found" : "method_not_allowed";
    if (allowed.empty()) return reply(call, net::no_such_path(call->req.path));
    return reply(call, net::method_not_allowed(call->req.method, call->req.path, allowed));
  }
  call->route = route->pattern;
  if (auto denied = check_access(*route, *call)) return reply(call, std::move(*denied));
  if (route->needs_leader && !node_.is_leader()) return forward_to_leader(call);
  route->handler(call);
}

ControllerApi::RouteMetrics ControllerApi::route_metrics(const std::string& route, const std::string& method,
                                                         int status) {
  // Labels come from closed sets (route templates, method_label, statuses),
  // so this stays small; the cap only guards against a mistake.
  constexpr size_t kMaxCached = 1024;
  std::lock_guard<std::mutex> lock(route_metrics_mu_);
  auto it = route_metrics_.find(RouteMetricsView(route, method, status));
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
  RouteMetrics m = route_metrics(call->route, std::string(method_label(call->req.method)), response.status);
  m.requests->Increment();
  m.latency->Observe(secs);
  call->res->reply(std::move(response));
}

void ControllerApi::reply_stream_started(const CallPtr& call) {
  route_metrics(call->route, std::string(method_label(call->req.method)), 200).requests->Increment();
}

void ControllerApi::reply_no_leader(const CallPtr& call, const std::string& why) {
  auto r = net::json_error(503, "no_leader", why);
  r.headers.push_back({"Retry-After", "1"});
  reply(call, std::move(r));
}

void ControllerApi::reply_node_error(const CallPtr& call, const member::NodeError& err) {
  using member::NodeErrc;
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
    case NodeErrc::kTooLarge: return reply(call, net::json_error(413, "too_large", err.message));
  }
}

std::string ControllerApi::request_id(const CallPtr& call) {
  std::string key = call->req.header("idempotency-key");
  if (key.empty()) return request_prefix_ + std::to_string(request_seq_.fetch_add(1));
  // The key names one request: its route, path and body. The state machine
  // answers a reuse of the key for anything else with idempotency_mismatch
  // instead of the earlier call's result (controlplane::kRequestScopeSeparator).
  std::string fingerprint = net::sha256_hex(call->req.method + "\n" + call->route + "\n" + call->req.path + "\n" +
                                                call->req.body,
                                            16);
  return "k:" + net::sha256_hex(std::string(to_string(call->role)) + "\n" + key, 16) +
         controlplane::kRequestScopeSeparator + fingerprint;
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
  if (call->identity.kind != CertKind::kNone) fwd.headers["tenure-forwarded-identity"] = call->identity.str();
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
