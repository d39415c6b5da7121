#include "net/http_types.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace tenure::net {
namespace {

TEST(HttpTypesTest, JsonErrorHasTheContractShape) {
  auto r = json_error(404, "not_found", "no shard \"x\"");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.content_type, "application/json");
  EXPECT_EQ(r.body, R"({"error":"not_found","message":"no shard \"x\""})");
}

TEST(HttpTypesTest, JsonErrorWithExtraFields) {
  auto r = json_error(409, "stale_epoch", "older", {{"current_epoch", 7}, {"error", "ignored"}});
  EXPECT_EQ(r.status, 409);
  EXPECT_EQ(r.body, R"({"current_epoch":7,"error":"stale_epoch","message":"older"})");
}

TEST(HttpTypesTest, SharedRefusalTexts) {
  auto f = bad_field("epoch", "must be an unsigned integer");
  EXPECT_EQ(f.status, 400);
  EXPECT_EQ(f.body, R"({"error":"bad_request","field":"epoch","message":"field \"epoch\": must be an unsigned integer"})");
  EXPECT_EQ(malformed_json_body().body, R"({"error":"bad_request","message":"body is not valid JSON"})");
  EXPECT_EQ(non_object_body().body, R"({"error":"bad_request","message":"body must be a JSON object"})");
  auto nf = no_such_path("/v9");
  EXPECT_EQ(nf.status, 404);
  EXPECT_EQ(nf.body, R"({"error":"not_found","message":"no such path: /v9"})");
  auto na = method_not_allowed("PUT", "/v1/x", "GET, HEAD");
  EXPECT_EQ(na.status, 405);
  EXPECT_EQ(na.body, R"j({"error":"method_not_allowed","message":"method PUT not allowed on /v1/x (allowed: GET, HEAD)"})j");
  ASSERT_EQ(na.headers.size(), 1u);
  EXPECT_EQ(na.headers[0], (std::pair<std::string, std::string>("Allow", "GET, HEAD")));
  EXPECT_EQ(json_response(201, {{"a", 1}}).body, "{\"a\":1}\n");
}

TEST(HttpTypesTest, JsonErrorSurvivesInvalidUtf8) {
  auto r = json_error(400, "bad_request", std::string("bad id \xff"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("bad_request"), std::string::npos);
}

TEST(HttpTypesTest, QueryParsingDecodes) {
  auto q = parse_query("worker=w%201&since=5&flag&a=1&a=2&x=a+b&bad=%zz");
  EXPECT_EQ(q["worker"], "w 1");
  EXPECT_EQ(q["since"], "5");
  EXPECT_EQ(q["flag"], "");
  EXPECT_EQ(q["a"], "2");
  EXPECT_EQ(q["x"], "a b");
  EXPECT_EQ(q["bad"], "%zz");
}

TEST(HttpTypesTest, PercentEncodingRoundTrips) {
  std::string raw = "a b/c?d=e&f%";
  EXPECT_EQ(percent_decode(percent_encode(raw), false), raw);
  EXPECT_EQ(percent_encode("s-1.x_~"), "s-1.x_~");
}

TEST(HttpTypesTest, HostPortParsing) {
  auto a = parse_host_port("127.0.0.1:7001");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.value().host, "127.0.0.1");
  EXPECT_EQ(a.value().port, 7001);
  auto b = parse_host_port("[::1]:80");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b.value().host, "::1");
  EXPECT_TRUE(parse_host_port("localhost:0", true).ok());
  for (const char* bad : {"", "x", "x:", ":1", "x:0", "x:65536", "x:1a", "::1:80", "[::1]80"}) {
    EXPECT_FALSE(parse_host_port(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace tenure::net
