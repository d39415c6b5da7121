#include "dataplane_agent/http_api.h"

#include <set>

#include <nlohmann/json.hpp>

namespace tenure::agent {

using nlohmann::json;

// Errors come from net/http_types.h, shared with the controller: the same
// shape and the same texts (an echoed key may hold bytes a plain dump()
// throws on; json_text there replaces them).
using net::bad_field;
using net::json_error;
using net::json_response;

namespace {

/// A strict decimal epoch ("0".."18446744073709551615", no sign, no spaces).
std::optional<Epoch> parse_epoch_text(const std::string& s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char ch : s) {
    if (ch < '0' || ch > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(ch - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return Epoch(v);
}

/// Parses {"shard": S, "epoch": E}; the error names the field.
std::optional<net::HttpResponse> parse_fence_body(const std::string& body, std::string& shard, Epoch& epoch) {
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return net::malformed_json_body();
  if (!j.is_object()) return net::non_object_body();
  for (const auto& [key, value] : j.items()) {
    if (key != "shard" && key != "epoch") return bad_field(key, "unknown field");
  }
  if (!j.contains("shard")) return bad_field("shard", "required");
  if (!j["shard"].is_string()) return bad_field("shard", "must be a string");
  shard = j["shard"].get<std::string>();
  if (!controlplane::valid_shard_id(shard)) return bad_field("shard", "must match [A-Za-z0-9._-]{1,128}");
  if (!j.contains("epoch")) return bad_field("epoch", "required");
  if (!j["epoch"].is_number_unsigned()) return bad_field("epoch", "must be an unsigned integer");
  epoch = Epoch(j["epoch"].get<uint64_t>());
  return std::nullopt;
}


}  // namespace

net::HttpResponse fence_error(const FenceResult& r) {
  switch (r.code) {
    case FenceCode::kLeaseExpired: {
      auto resp = json_error(503, "lease_expired", "this agent's lease is not valid; it accepts no writes until renewed");
      resp.headers.emplace_back("Retry-After", "1");
      return resp;
    }
    case FenceCode::kStaleEpoch:
      return json_error(409, "stale_epoch", "the epoch is older than the newest one seen for the shard",
                        {{"current_epoch", r.current_epoch.value()}});
    case FenceCode::kNotOwner:
      return json_error(421, "not_owner", "this worker does not hold the shard at that epoch");
    case FenceCode::kOk: break;
  }
  return json_response(200, {{"ok", true}});
}

HttpApi::HttpApi(WorkerId worker, FenceState& fence, DataStore& data, AgentMetrics& metrics,
                 std::function<bool()> ready)
    : worker_(std::move(worker)), fence_(fence), data_(data), metrics_(metrics), ready_(std::move(ready)) {}

std::optional<net::HttpResponse> HttpApi::check_client_token(const net::HttpRequest& req, const char* route) {
  if (!client_token_.set()) return std::nullopt;
  auto token = net::bearer_token(req);
  if (token && client_token_.matches(net::sha256(*token))) return std::nullopt;
  metrics_.denied(route, token ? "unknown_token" : "missing_token");
  auto r = json_error(401, "unauthorized",
                           token ? "the bearer token is not valid" : "this call needs Authorization: Bearer <client_token>");
  r.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"tenure-agent\"");
  return r;
}

void HttpApi::handle(net::HttpRequest req, std::shared_ptr<net::Responder> res) {
  const std::string& p = req.path;
  const std::string& m = req.method;
  if (p == "/v1/fence") {
    if (auto denied = check_client_token(req, "/v1/fence")) return res->reply(std::move(*denied));
    return res->reply(m == "POST" ? fence(req) : net::method_not_allowed(m, p, "POST"));
  }
  if (p.rfind("/v1/data/", 0) == 0) {
    if (auto denied = check_client_token(req, "/v1/data/{shard}/{key}")) return res->reply(std::move(*denied));
    std::string rest = p.substr(9);
    size_t slash = rest.find('/');
    if (slash == std::string::npos || slash + 1 >= rest.size()) {
      return res->reply(json_error(404, "not_found", "use /v1/data/{shard}/{key}"));
    }
    std::string shard = rest.substr(0, slash), key = rest.substr(slash + 1);
    if (!controlplane::valid_shard_id(shard)) return res->reply(bad_field("shard", "must match [A-Za-z0-9._-]{1,128}"));
    if (key.size() > kMaxKeyBytes) return res->reply(bad_field("key", "longer than 1024 bytes"));
    if (m == "PUT") return put_data(req, shard, std::move(key), std::move(res));
    if (m == "GET" || m == "HEAD") return res->reply(get_data(shard, key));
    return res->reply(net::method_not_allowed(m, p, "GET, HEAD, PUT"));
  }
  bool get = m == "GET" || m == "HEAD";
  if (p == "/healthz") {
    return res->reply(get ? json_response(200, {{"status", "ok"}}) : net::method_not_allowed(m, p, "GET, HEAD"));
  }
  if (p == "/readyz") {
    if (!get) return res->reply(net::method_not_allowed(m, p, "GET, HEAD"));
    if (ready_() && fence_.lease_valid()) return res->reply(json_response(200, {{"status", "ready"}}));
    return res->reply(json_error(503, "not_ready", "not registered, not re-listed, or the lease is not valid"));
  }
  if (p == "/metrics") {
    if (!get) return res->reply(net::method_not_allowed(m, p, "GET, HEAD"));
    net::HttpResponse r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    r.body = metrics_.serialize();
    return res->reply(std::move(r));
  }
  if (p == "/v1/grants") return res->reply(get ? grants() : net::method_not_allowed(m, p, "GET, HEAD"));
  if (p == "/v1/grants/watch" && feed_) {
    if (m != "GET") return res->reply(net::method_not_allowed(m, p, "GET"));
    for (const auto& [key, value] : req.query) {
      if (key != "resume") return res->reply(bad_field(key, "unknown query parameter (only resume)"));
    }
    return feed_->watch(req.query_param("resume").value_or(""), std::move(res));
  }
  res->reply(net::no_such_path(p));
}

net::HttpResponse HttpApi::grants() const {
  // A shard being drained for a planned move is still held (and admitted
  // until its drain ends): a program restarted meanwhile sees it marked, so
  // it does not take it up again for writes.
  std::set<std::pair<std::string, uint64_t>> draining;
  for (const auto& d : fence_.draining_shards()) draining.emplace(d.shard.str(), d.epoch.value());
  json list = json::array();
  for (const auto& g : fence_.held()) {
    json item{{"shard", g.shard.str()}, {"epoch", g.epoch.value()}};
    if (draining.count({g.shard.str(), g.epoch.value()})) item["draining"] = true;
    list.push_back(std::move(item));
  }
  return json_response(200, {{"worker", worker_.str()},
                             {"lease_valid", fence_.lease_valid()},
                             {"revision", fence_.revision().value()},
                             {"grants", std::move(list)}});
}

net::HttpResponse HttpApi::fence(const net::HttpRequest& req) const {
  std::string shard;
  Epoch epoch;
  if (auto err = parse_fence_body(req.body, shard, epoch)) return std::move(*err);
  FenceResult r = fence_.check(shard, epoch);
  return fence_error(r);
}

void HttpApi::put_data(const net::HttpRequest& req, const std::string& shard, std::string key,
                       std::shared_ptr<net::Responder> res) {
  auto header = req.headers.find("tenure-epoch");
  if (header == req.headers.end()) return res->reply(bad_field("Tenure-Epoch", "header required"));
  auto epoch = parse_epoch_text(header->second);
  if (!epoch) return res->reply(bad_field("Tenure-Epoch", "must be an unsigned decimal integer"));
  std::string shard_copy = shard, key_copy = key;
  data_.put(ShardId(shard), std::move(key), *epoch, req.body,
            [this, res, shard_copy, key_copy, e = *epoch](PutOutcome o) {
              switch (o.kind) {
                case PutOutcome::Kind::kOk:
                  metrics_.put("ok");
                  return res->reply(json_response(
                      200, {{"ok", true}, {"shard", shard_copy}, {"key", key_copy}, {"epoch", e.value()}}));
                case PutOutcome::Kind::kFenced:
                  metrics_.put(std::string(to_string(o.fence.code)));
                  return res->reply(fence_error(o.fence));
                case PutOutcome::Kind::kValueStale:
                  metrics_.put("stale_value");
                  return res->reply(json_error(409, "stale_epoch", "a value with a newer epoch is stored",
                                               {{"current_epoch", o.stored_epoch.value()}}));
                case PutOutcome::Kind::kOverloaded: {
                  metrics_.put("overloaded");
                  auto r = json_error(503, "overloaded", o.message);
                  r.headers.emplace_back("Retry-After", "1");
                  return res->reply(std::move(r));
                }
                case PutOutcome::Kind::kStorage:
                  metrics_.put("storage_error");
                  return res->reply(json_error(500, "internal", o.message));
              }
            });
}

net::HttpResponse HttpApi::get_data(const std::string& shard, const std::string& key) {
  auto v = data_.get(ShardId(shard), key);
  if (!v.ok()) return json_error(500, "internal", v.error().message);
  if (!v.value()) return json_error(404, "not_found", "no value for that shard and key");
  net::HttpResponse r;
  r.content_type = "application/octet-stream";
  r.body = std::move(v.value()->value);
  r.headers.emplace_back("Tenure-Epoch", std::to_string(v.value()->epoch.value()));
  return r;
}

}  // namespace tenure::agent
