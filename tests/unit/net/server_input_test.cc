// Hostile input at the server's edge (issue 8): text that is not UTF-8 is
// refused before any handler runs, JSON text is written without throwing,
// and an exception escaping a completion handler ends neither the io thread
// nor the process.
#include <atomic>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "net/http_server.h"
#include "net/io_runner.h"
#include "net/sync_http_client.h"
#include "tests/unit/net/net_test_util.h"

namespace tenure::net {
namespace {

using namespace testing;
using json = nlohmann::json;

TEST(Utf8Test, AcceptsWellFormedText) {
  for (const char* s : {"", "plain ascii", "caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x94\x91", "\xEF\xBF\xBF",
                        "\xF4\x8F\xBF\xBF", "\xED\x9F\xBF"}) {
    EXPECT_TRUE(valid_utf8(s)) << s;
  }
  EXPECT_TRUE(valid_utf8(std::string("a\0b", 3)));
}

TEST(Utf8Test, RefusesMalformedText) {
  for (const char* s : {"\xFF", "\xFE", "\x80", "a\xBF", "\xC0\xAF", "\xC1\xBF",  // lone, overlong
                        "\xE0\x80\xAF", "\xF0\x80\x80\xAF",                      // overlong 3 and 4 bytes
                        "\xED\xA0\x80", "\xED\xBF\xBF",                          // surrogates
                        "\xF4\x90\x80\x80", "\xF5\x80\x80\x80",                  // above U+10FFFF
                        "\xC3", "\xE2\x82", "\xF0\x9F\x94", "\xC3(", "\xE2(\xA1"}) {
    EXPECT_FALSE(valid_utf8(s)) << ::testing::PrintToString(std::string(s));
  }
}

TEST(JsonTextTest, InvalidUtf8IsReplacedNotThrown) {
  json j = {{"key", std::string("a\xFF" "b")}, {"n", 1}};
  std::string text;
  ASSERT_NO_THROW(text = json_text(j));
  EXPECT_EQ(text, "{\"key\":\"a\xEF\xBF\xBD" "b\",\"n\":1}");
  EXPECT_EQ(json_text(json{{"k", "v"}}, 1), "{\n \"k\": \"v\"\n}");
}

class ServerInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<HttpServer>(io_.ioc(), ServerOptions{},
                                           [this](HttpRequest req, std::shared_ptr<Responder> res) {
                                             calls_.fetch_add(1);
                                             res->reply(HttpResponse{200, "text/plain", req.path, {}});
                                           });
    ASSERT_TRUE(server_->start().ok());
    addr_ = "127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override { server_->stop(); }

  IoThreads io_{1};
  std::unique_ptr<HttpServer> server_;
  std::string addr_;
  std::atomic<int> calls_{0};
};

TEST_F(ServerInputTest, NonUtf8PathQueryOrHeaderGets400BeforeTheHandler) {
  RawConn c(server_->port());
  // Three refused requests and a good one, pipelined on one connection: the
  // refusals keep the connection (the requests were whole), in order.
  ASSERT_TRUE(c.send("GET /v1/data/s/%FF HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /ok?worker=%C0%AF HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /ok HTTP/1.1\r\nHost: x\r\nX-Id: \xFF\xFE\r\n\r\n"
                     "GET /fine HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(c.read_until("HTTP/1.1 ", 4)) << c.data();
  ASSERT_TRUE(c.read_until("/fine")) << c.data();
  EXPECT_EQ(count(c.data(), "HTTP/1.1 400"), 3u) << c.data();
  EXPECT_NE(c.data().find("the path is not valid UTF-8"), std::string::npos) << c.data();
  EXPECT_NE(c.data().find("the query is not valid UTF-8"), std::string::npos) << c.data();
  EXPECT_NE(c.data().find("header x-id is not valid UTF-8"), std::string::npos) << c.data();
  EXPECT_EQ(calls_.load(), 1);
}

TEST_F(ServerInputTest, Utf8BeyondAsciiReachesTheHandler) {
  SyncHttpClient client;
  auto r = client.call(addr_, ClientRequest{"GET", "/caf%C3%A9"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().status, 200);
  EXPECT_EQ(r.value().body, "/caf\xC3\xA9");
}

/// A stream holds its connection: what is pipelined behind it waits unread
/// (not dispatched, so never an answer queued forever) until it ends.
class StreamPipelineTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<HttpServer>(io_.ioc(), ServerOptions{},
                                           [this](HttpRequest req, std::shared_ptr<Responder> res) {
                                             calls_.fetch_add(1);
                                             if (req.path == "/stream") {
                                               res->start_stream(200, "application/x-ndjson");
                                               res->write_chunk("{\"first\":1}\n");
                                               stream_.set(res);
                                             } else if (req.path == "/stream-later") {
                                               stream_.set(res);
                                             } else {
                                               res->reply(HttpResponse{200, "text/plain", "answer" + req.path, {}});
                                             }
                                           });
    ASSERT_TRUE(server_->start().ok());
  }
  void TearDown() override { server_->stop(); }

  IoThreads io_{2};
  std::unique_ptr<HttpServer> server_;
  std::atomic<int> calls_{0};
  Slot<std::shared_ptr<Responder>> stream_;
};

TEST_F(StreamPipelineTest, RequestBehindAStreamWaitsForItsEnd) {
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto res = stream_.wait();
  ASSERT_TRUE(res.has_value());
  ASSERT_TRUE(c.read_until("first")) << c.data();
  ASSERT_TRUE(c.send("GET /next HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(wait_until([&] { return server_->stats().held_behind_stream == 1; })) << c.data();
  EXPECT_EQ(calls_.load(), 1);  // parsed, held, not handed to the handler
  (*res)->end_stream();
  ASSERT_TRUE(c.read_until("answer/next")) << c.data();
  EXPECT_EQ(calls_.load(), 2);
  EXPECT_NE(c.data().find("0\r\n\r\n"), std::string::npos);  // the stream ended first, in order
  EXPECT_LT(c.data().find("0\r\n\r\n"), c.data().find("answer/next"));
}

TEST_F(StreamPipelineTest, StreamWithARequestAlreadyDispatchedBehindIsRefused) {
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("GET /stream-later HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto res = stream_.wait();
  ASSERT_TRUE(res.has_value());
  ASSERT_TRUE(wait_until([&] { return calls_.load() == 2; }));
  EXPECT_FALSE((*res)->start_stream(200, "application/x-ndjson"));
  ASSERT_TRUE(c.read_until("answer/next")) << c.data();
  EXPECT_TRUE(c.data().starts_with("HTTP/1.1 400")) << c.data();
  EXPECT_NE(c.data().find("last request pipelined"), std::string::npos) << c.data();
  EXPECT_EQ(server_->stats().streams_refused, 1u);
  // The connection is still usable.
  ASSERT_TRUE(c.send("GET /again HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(c.read_until("answer/again")) << c.data();
}

TEST(IoRunnerTest, AThrowingHandlerIsLoggedAndTheThreadGoesOn) {
  boost::asio::io_context ioc;
  uint64_t before = escaped_exceptions();
  std::atomic<int> ran{0};
  boost::asio::post(ioc, [] { throw std::runtime_error("unforeseen"); });
  boost::asio::post(ioc, [&] { ran.fetch_add(1); });
  boost::asio::post(ioc, [] { throw 42; });
  boost::asio::post(ioc, [&] { ran.fetch_add(1); });
  std::thread t([&] { run_guarded(ioc, "test"); });  // returns once the queue is empty
  t.join();
  EXPECT_EQ(ran.load(), 2);
  EXPECT_EQ(escaped_exceptions() - before, 2u);
}

}  // namespace
}  // namespace tenure::net
