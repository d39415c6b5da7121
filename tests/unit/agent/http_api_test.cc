// The agent HTTP API on a real server: strict JSON with errors naming the
// field, each fence result's status and body, the fenced store, grants and
// metrics.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "dataplane_agent/http_api.h"
#include "net/sync_http_client.h"
#include "tests/unit/agent/agent_test_util.h"
#include "tests/unit/net/net_test_util.h"

namespace tenure::agent {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class HttpApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GrantChanges c(fence.table_for_planning());
    c.grant(ShardId("s-1"), Epoch(3));
    c.advance_revision(Revision(42));
    fence.install(c);
    fence.extend_lease(clock.now() + 10s);
    auto d = DataStore::open(dir.file("data.db"), fence);
    ASSERT_TRUE(d.ok());
    data = std::move(d.value());
    api = std::make_unique<HttpApi>(WorkerId("w1"), fence, *data, metrics, [] { return true; });
    server = std::make_unique<net::HttpServer>(io.ioc(), net::ServerOptions{},
                                               [this](net::HttpRequest req, std::shared_ptr<net::Responder> res) {
                                                 api->handle(std::move(req), std::move(res));
                                               });
    ASSERT_TRUE(server->start().ok());
  }
  void TearDown() override { server->stop(); }
  net::ClientResponse call(const std::string& method, const std::string& target, const std::string& body = "",
                           net::HeaderMap headers = {}) {
    net::ClientRequest req;
    req.method = method;
    req.target = target;
    req.body = body;
    req.headers = std::move(headers);
    auto r = http.call("127.0.0.1:" + std::to_string(server->port()), std::move(req));
    EXPECT_TRUE(r.ok());
    return r.ok() ? r.value() : net::ClientResponse{};
  }
  json fence_call(const std::string& body, int expect_status) {
    auto r = call("POST", "/v1/fence", body);
    EXPECT_EQ(r.status, expect_status) << body << " -> " << r.body;
    return json::parse(r.body, nullptr, false);
  }

  net::testing::IoThreads io{1};
  testing::TempDir dir;
  ManualClock clock;
  FenceState fence{clock};
  AgentMetrics metrics{fence};
  std::unique_ptr<DataStore> data;
  std::unique_ptr<HttpApi> api;
  std::unique_ptr<net::HttpServer> server;
  net::SyncHttpClient http;
};

TEST_F(HttpApiTest, FenceResults) {
  EXPECT_EQ(fence_call(R"({"shard":"s-1","epoch":3})", 200), (json{{"ok", true}}));
  auto stale = fence_call(R"({"shard":"s-1","epoch":2})", 409);
  EXPECT_EQ(stale["error"], "stale_epoch");
  EXPECT_EQ(stale["current_epoch"], 3);
  EXPECT_EQ(fence_call(R"({"shard":"s-2","epoch":1})", 421)["error"], "not_owner");
  EXPECT_EQ(fence_call(R"({"shard":"s-1","epoch":4})", 421)["error"], "not_owner");
  clock.advance(10s);
  auto r = call("POST", "/v1/fence", R"({"shard":"s-1","epoch":3})");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(json::parse(r.body)["error"], "lease_expired");
  EXPECT_EQ(r.header("retry-after"), "1");
}

TEST_F(HttpApiTest, FenceBodyIsStrict) {
  // The controller's texts (net/http_types.h): one client sees the same words from both.
  EXPECT_EQ(fence_call("{", 400), json::parse(net::malformed_json_body().body));
  EXPECT_EQ(fence_call("[]", 400), json::parse(net::non_object_body().body));
  EXPECT_EQ(fence_call(R"({"epoch":3})", 400),
            (json{{"error", "bad_request"}, {"message", "field \"shard\": required"}, {"field", "shard"}}));
  EXPECT_EQ(fence_call(R"({"shard":"s-1"})", 400)["field"], "epoch");
  EXPECT_EQ(fence_call(R"({"shard":1,"epoch":3})", 400)["field"], "shard");
  EXPECT_EQ(fence_call(R"({"shard":"no spaces","epoch":3})", 400)["field"], "shard");
  EXPECT_EQ(fence_call(R"({"shard":"s-1","epoch":"3"})", 400)["field"], "epoch");
  EXPECT_EQ(fence_call(R"({"shard":"s-1","epoch":-3})", 400)["field"], "epoch");
  EXPECT_EQ(fence_call(R"({"shard":"s-1","epoch":3.5})", 400)["field"], "epoch");
  EXPECT_EQ(fence_call(R"({"shard":"s-1","epoch":3,"extra":true})", 400)["field"], "extra");
  auto wrong_method = call("GET", "/v1/fence");
  EXPECT_EQ(wrong_method.status, 405);
  EXPECT_EQ(wrong_method.header("allow"), "POST");
  EXPECT_EQ(json::parse(wrong_method.body)["message"], "method GET not allowed on /v1/fence (allowed: POST)");
  auto unknown = call("GET", "/v2/nothing");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(json::parse(unknown.body)["message"], "no such path: /v2/nothing");
}

TEST_F(HttpApiTest, FencedStore) {
  EXPECT_EQ(call("PUT", "/v1/data/s-1/a/b", "v1", {{"tenure-epoch", "3"}}).status, 200);
  auto got = call("GET", "/v1/data/s-1/a/b");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.body, "v1");
  EXPECT_EQ(got.header("tenure-epoch"), "3");
  auto missing = call("GET", "/v1/data/s-1/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(json::parse(missing.body)["error"], "not_found");
  auto stale = call("PUT", "/v1/data/s-1/a/b", "old", {{"tenure-epoch", "2"}});
  EXPECT_EQ(stale.status, 409);
  EXPECT_EQ(json::parse(stale.body)["current_epoch"], 3);
  EXPECT_EQ(call("PUT", "/v1/data/s-9/k", "x", {{"tenure-epoch", "1"}}).status, 421);
  EXPECT_EQ(json::parse(call("PUT", "/v1/data/s-1/k", "x").body)["field"], "Tenure-Epoch");
  EXPECT_EQ(call("PUT", "/v1/data/s-1/k", "x", {{"tenure-epoch", "-1"}}).status, 400);
  EXPECT_EQ(call("PUT", "/v1/data/s-1/k", "x", {{"tenure-epoch", "99999999999999999999999"}}).status, 400);
  EXPECT_EQ(call("PUT", "/v1/data/bad%20id/k", "x", {{"tenure-epoch", "1"}}).status, 400);
  EXPECT_EQ(call("GET", "/v1/data/s-1/a/b").body, "v1");  // refused writes changed nothing
}

TEST_F(HttpApiTest, GrantsHealthAndMetrics) {
  EXPECT_EQ(json::parse(call("GET", "/v1/grants").body),
            (json{{"worker", "w1"}, {"lease_valid", true}, {"revision", 42},
                  {"grants", json::array({{{"shard", "s-1"}, {"epoch", 3}}})}}));
  EXPECT_EQ(call("GET", "/healthz").status, 200);
  EXPECT_EQ(call("GET", "/readyz").status, 200);
  fence_call(R"({"shard":"s-1","epoch":3})", 200);
  fence_call(R"({"shard":"s-1","epoch":1})", 409);
  auto m = call("GET", "/metrics");
  EXPECT_EQ(m.status, 200);
  for (const char* name : {"tenure_agent_grants 1", "tenure_agent_lease_valid 1",
                           "tenure_agent_fence_checks_total{result=\"ok\"} 1",
                           "tenure_agent_fence_checks_total{result=\"stale_epoch\"} 1",
                           "tenure_agent_fence_checks_total{result=\"not_owner\"} 0",
                           "tenure_agent_fence_checks_total{result=\"lease_expired\"} 0",
                           "tenure_agent_watch_reconnects_total 0", "tenure_agent_grant_delay_seconds_count 0",
                           "tenure_agent_heartbeats_total{result=\"ok\"} 0", "# TYPE tenure_escaped_exceptions_total counter"}) {
    EXPECT_NE(m.body.find(name), std::string::npos) << name << "\n" << m.body;
  }
  EXPECT_EQ(call("GET", "/nope").status, 404);
  clock.advance(10s);
  EXPECT_EQ(call("GET", "/readyz").status, 503);
}

// With a client token, the fence and the store need it (any scheme case);
// nothing else opens them, a refused PUT stores nothing, and the open
// routes stay open.
TEST_F(HttpApiTest, ClientTokenGuardsFenceAndStore) {
  api->require_client_token("client-secret");
  const std::string fence_body = R"({"shard":"s-1","epoch":3})";
  for (const char* bad : {"", "Bearer nope", "Bearer client-secre", "Basic client-secret", "Bearer client-secretX"}) {
    net::HeaderMap h{{"tenure-epoch", "3"}};
    if (*bad) h["authorization"] = bad;
    for (auto [method, target] : {std::pair{"POST", "/v1/fence"}, {"PUT", "/v1/data/s-1/k"}, {"GET", "/v1/data/s-1/k"}}) {
      auto r = call(method, target, std::string(method) == "POST" ? fence_body : "v", h);
      EXPECT_EQ(r.status, 401) << bad << " " << method << " " << target;
      EXPECT_EQ(json::parse(r.body, nullptr, false).value("error", ""), "unauthorized");
      EXPECT_EQ(r.header("www-authenticate").rfind("Bearer", 0), 0u);
      EXPECT_EQ(r.body.find("client-secret"), std::string::npos);
    }
  }
  net::HeaderMap ok{{"authorization", "bearer client-secret"}, {"tenure-epoch", "3"}};
  EXPECT_EQ(call("GET", "/v1/data/s-1/k", "", ok).status, 404);  // the refused PUTs stored nothing
  EXPECT_EQ(call("POST", "/v1/fence", fence_body, ok).status, 200);
  EXPECT_EQ(call("PUT", "/v1/data/s-1/k", "v", ok).status, 200);
  EXPECT_EQ(call("GET", "/v1/data/s-1/k", "", ok).body, "v");
  for (const char* open : {"/v1/grants", "/healthz", "/metrics"}) EXPECT_EQ(call("GET", open).status, 200) << open;
}

TEST_F(HttpApiTest, InvalidUtf8KeyIsRefusedBeforeAnythingChanges) {
  // This request used to commit the write and then kill the agent: the
  // reply's JSON encoding of the key threw on the store's writer thread.
  for (const char* key : {"%FF", "a%C0%AFb", "%ED%A0%80", "%F4%90%80%80", "x%E2%82"}) {
    auto r = call("PUT", std::string("/v1/data/s-1/") + key, "v", {{"tenure-epoch", "3"}});
    EXPECT_EQ(r.status, 400) << key << " -> " << r.body;
    EXPECT_EQ(json::parse(r.body, nullptr, false).value("error", ""), "bad_request") << r.body;
    EXPECT_EQ(call("GET", std::string("/v1/data/s-1/") + key).status, 400) << key;
  }
  auto stored = data->get(ShardId("s-1"), "\xff");
  ASSERT_TRUE(stored.ok());
  EXPECT_FALSE(stored.value().has_value());
  // Valid UTF-8 beyond ASCII is a fine key, echoed back as it was sent.
  auto ok = call("PUT", "/v1/data/s-1/caf%C3%A9-%F0%9F%94%91", "v", {{"tenure-epoch", "3"}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(json::parse(ok.body)["key"], "caf\u00e9-\U0001F511");
  EXPECT_EQ(call("GET", "/healthz").status, 200);
}

TEST_F(HttpApiTest, ValuesRoundTripByteForByte) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  ASSERT_EQ(call("PUT", "/v1/data/s-1/bytes", all, {{"tenure-epoch", "3"}}).status, 200);
  auto got = call("GET", "/v1/data/s-1/bytes");
  EXPECT_EQ(got.status, 200);
  EXPECT_EQ(got.header("content-type"), "application/octet-stream");
  EXPECT_EQ(got.body, all);
}

}  // namespace
}  // namespace tenure::agent
