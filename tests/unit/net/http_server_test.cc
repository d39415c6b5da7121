// The server against real sockets on 127.0.0.1: framing, keep-alive,
// pipelining, limits and timeouts. Hand-written requests come from RawConn
// so each test controls exactly which bytes arrive, and when.

#include <atomic>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "net/http_server.h"
#include "net/sync_http_client.h"
#include "tests/unit/net/net_test_util.h"

namespace tenure::net {
namespace {

using namespace testing;
using json = nlohmann::json;

/// A server on an ephemeral port with a handler the test swaps in.
class ServerFixture : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}, int threads = 2) {
    io_ = std::make_unique<IoThreads>(threads);
    options.host = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<HttpServer>(io_->ioc(), options,
                                           [this](HttpRequest req, std::shared_ptr<Responder> res) {
                                             calls_.fetch_add(1);
                                             handler_(std::move(req), std::move(res));
                                           });
    auto started = server_->start();
    ASSERT_TRUE(started.ok()) << started.error().message;
    addr_ = "127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override {
    if (server_) server_->stop();
    server_.reset();
    io_.reset();
  }

  /// Echoes the request as JSON.
  static void echo(HttpRequest req, std::shared_ptr<Responder> res) {
    json q = req.query;
    json body = {{"method", req.method}, {"path", req.path},   {"query", q},
                 {"body", req.body},     {"tls", req.tls},     {"remote", req.remote},
                 {"x_test", req.header("x-test")}};
    res->reply(HttpResponse{200, "application/json", body.dump(), {{"X-Reply", "yes"}}});
  }

  std::unique_ptr<IoThreads> io_;
  std::unique_ptr<HttpServer> server_;
  std::string addr_;
  std::atomic<int> calls_{0};
  Handler handler_ = echo;
};

TEST_F(ServerFixture, RoundTripCarriesMethodPathQueryHeadersAndBody) {
  start();
  SyncHttpClient client;
  ClientRequest req;
  req.method = "POST";
  req.target = "/v1/sh%61rds?worker=w%201&x=a+b";
  req.body = R"({"ids":["a"]})";
  req.headers["X-Test"] = "hello";
  auto r = client.call(addr_, req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().status, 200);
  EXPECT_EQ(r.value().header("content-type"), "application/json");
  EXPECT_EQ(r.value().header("x-reply"), "yes");
  auto body = json::parse(r.value().body);
  EXPECT_EQ(body["method"], "POST");
  EXPECT_EQ(body["path"], "/v1/shards");
  EXPECT_EQ(body["query"]["worker"], "w 1");
  EXPECT_EQ(body["query"]["x"], "a b");
  EXPECT_EQ(body["body"], R"({"ids":["a"]})");
  EXPECT_EQ(body["x_test"], "hello");
  EXPECT_EQ(body["tls"], false);
  EXPECT_TRUE(body["remote"].get<std::string>().starts_with("127.0.0.1:"));
}

TEST_F(ServerFixture, KeepAliveReusesOneConnection) {
  start();
  SyncHttpClient client;
  for (int i = 0; i < 20; ++i) {
    auto r = client.call(addr_, ClientRequest{"GET", "/n/" + std::to_string(i)});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(json::parse(r.value().body)["path"], "/n/" + std::to_string(i));
  }
  EXPECT_EQ(server_->accepted_count(), 1u);
  EXPECT_EQ(client.connections_opened(), 1u);
}

// A controller holds a keep-alive connection per agent, mostly idle: a
// connection between requests holds a few KB of buffers, not the 16 KB read
// chunk, and lets go of what a large request or answer grew.
TEST_F(ServerFixture, IdleConnectionsHoldSmallBuffersAndLetGoOfLargeOnes) {
  start();
  handler_ = [](HttpRequest req, std::shared_ptr<Responder> res) {
    std::string body = req.path == "/large" ? std::string(1 << 20, 'y') + "END" : std::string(10, 'x');
    res->reply(HttpResponse{200, "text/plain", body, {}});
  };
  constexpr size_t kConns = 100;
  std::vector<std::unique_ptr<RawConn>> conns;
  for (size_t i = 0; i < kConns; ++i) {
    conns.push_back(std::make_unique<RawConn>(server_->port()));
    ASSERT_TRUE(conns.back()->send("GET /small HTTP/1.1\r\nHost: x\r\n\r\n"));
    ASSERT_TRUE(conns.back()->read_until("xxxxxxxxxx")) << conns.back()->data();
  }
  ASSERT_TRUE(wait_until([&] { return server_->stats().open_connections == kConns; }));
  // Settled once every connection went back to reading its next request.
  size_t idle = 0;
  ASSERT_TRUE(wait_until([&] {
    idle = server_->stats().buffer_bytes;
    return idle > 0 && idle <= kConns * 4096;
  })) << idle << " bytes of buffers for " << kConns << " idle connections";
  // A 1 MiB answer and a 200 KB request on one of them: its buffers grow,
  // then shrink back once it is idle again.
  RawConn& c = *conns.front();
  ASSERT_TRUE(c.send("GET /large HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(c.read_until("END", 1, 10000ms));
  EXPECT_TRUE(wait_until([&] { return server_->stats().buffer_bytes <= kConns * 4096; }))
      << server_->stats().buffer_bytes << " bytes of buffers after the large answer";
  std::string body(200000, 'b');
  ASSERT_TRUE(c.send("POST /small HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
                     "\r\n\r\n" + body));
  ASSERT_TRUE(wait_until([&] { return calls_.load() == static_cast<int>(kConns) + 2; }));
  EXPECT_TRUE(wait_until([&] { return server_->stats().buffer_bytes <= kConns * 4096; }))
      << server_->stats().buffer_bytes << " bytes of buffers after the large request";
  conns.clear();
  EXPECT_TRUE(wait_until([&] { return server_->stats().buffer_bytes == 0; }))
      << server_->stats().buffer_bytes << " bytes of buffers with no connection open";
}

TEST_F(ServerFixture, PipelinedAnswersKeepRequestOrderWhenRepliedOutOfOrder) {
  // The handler holds the first three answers and sends them in reverse
  // order from another thread; the wire must still carry 0, 1, 2.
  std::mutex mu;
  std::vector<std::pair<std::string, std::shared_ptr<Responder>>> held;
  std::vector<std::thread> repliers;
  handler_ = [&](HttpRequest req, std::shared_ptr<Responder> res) {
    std::lock_guard lock(mu);
    held.emplace_back(req.path, std::move(res));
    if (held.size() == 3) {
      auto batch = held;
      repliers.emplace_back([batch] {
        for (auto it = batch.rbegin(); it != batch.rend(); ++it) {
          it->second->reply(HttpResponse{200, "text/plain", "answer" + it->first, {}});
        }
      });
    }
  };
  start();
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("GET /0 HTTP/1.1\r\nHost: x\r\n\r\nGET /1 HTTP/1.1\r\nHost: x\r\n\r\n"
                     "GET /2 HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(c.read_until("answer/", 3)) << c.data();
  size_t a0 = c.data().find("answer/0"), a1 = c.data().find("answer/1"), a2 = c.data().find("answer/2");
  EXPECT_LT(a0, a1);
  EXPECT_LT(a1, a2);
  server_->stop();  // before the locals the handler uses go away
  for (auto& t : repliers) t.join();
}

TEST_F(ServerFixture, PipelineDeeperThanTheCapIsServedInOrder) {
  ServerOptions o;
  o.max_pipelined_requests = 4;
  start(o);
  std::string burst;
  for (int i = 0; i < 40; ++i) burst += "GET /p" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  RawConn c(server_->port());
  ASSERT_TRUE(c.send(burst));
  ASSERT_TRUE(c.read_until("HTTP/1.1 200", 40)) << c.data().size();
  size_t last = 0;
  for (int i = 0; i < 40; ++i) {
    size_t at = c.data().find("\"/p" + std::to_string(i) + "\"");
    ASSERT_NE(at, std::string::npos) << i;
    EXPECT_GE(at, last);
    last = at;
  }
}

TEST_F(ServerFixture, AsyncReplyFromAnotherThread) {
  std::vector<std::thread> threads;
  std::mutex mu;
  handler_ = [&](HttpRequest req, std::shared_ptr<Responder> res) {
    std::lock_guard lock(mu);
    threads.emplace_back([req = std::move(req), res] {
      res->reply(HttpResponse{201, "text/plain", "later:" + req.path, {}});
    });
  };
  start();
  SyncHttpClient client;
  auto r = client.call(addr_, ClientRequest{"GET", "/x"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().status, 201);
  EXPECT_EQ(r.value().body, "later:/x");
  server_->stop();  // before the locals the handler uses go away
  std::lock_guard lock(mu);
  for (auto& t : threads) t.join();
}

TEST_F(ServerFixture, DroppedResponderAnswers500) {
  handler_ = [](HttpRequest, std::shared_ptr<Responder>) {};
  start();
  SyncHttpClient client;
  auto r = client.call(addr_, ClientRequest{"GET", "/dropped"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().status, 500);
  EXPECT_EQ(json::parse(r.value().body)["error"], "internal");
}

TEST_F(ServerFixture, ThrowingHandlerAnswers500AndKeepsServing) {
  handler_ = [](HttpRequest req, std::shared_ptr<Responder> res) {
    if (req.path == "/throw") throw std::runtime_error("boom");
    echo(std::move(req), std::move(res));
  };
  start();
  SyncHttpClient client;
  auto r = client.call(addr_, ClientRequest{"GET", "/throw"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().status, 500);
  EXPECT_EQ(client.call(addr_, ClientRequest{"GET", "/ok"}).value().status, 200);
}

TEST_F(ServerFixture, OversizedContentLengthGets413WithoutReadingTheBody) {
  start();
  RawConn c(server_->port());
  // Only the header is sent: the answer must come without the 2 MiB body.
  ASSERT_TRUE(c.send("POST /v1/shards HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n"));
  ASSERT_TRUE(c.read_until("}")) << c.data();
  EXPECT_TRUE(c.data().starts_with("HTTP/1.1 413")) << c.data();
  EXPECT_NE(c.data().find("\"error\":\"too_large\""), std::string::npos) << c.data();
  EXPECT_NE(c.data().find("Connection: close"), std::string::npos);
  EXPECT_TRUE(c.wait_closed());
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(ServerFixture, TwoMebibyteBodyFromTheClientGets413) {
  start();
  SyncHttpClient client;
  ClientRequest req{"POST", "/v1/shards", std::string(2 << 20, 'x')};
  auto r = client.call(addr_, req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().status, 413);
  EXPECT_EQ(json::parse(r.value().body)["error"], "too_large");
  EXPECT_EQ(calls_.load(), 0);
  // The next request opens a fresh connection and works.
  EXPECT_EQ(client.call(addr_, ClientRequest{"GET", "/after"}).value().status, 200);
}

TEST_F(ServerFixture, OversizedChunkedBodyGets413) {
  ServerOptions o;
  o.max_body_bytes = 1000;
  start(o);
  RawConn c(server_->port());
  std::string req = "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 5; ++i) req += "190\r\n" + std::string(400, 'y') + "\r\n";
  ASSERT_TRUE(c.send(req));
  ASSERT_TRUE(c.read_until("}")) << c.data();
  EXPECT_TRUE(c.data().starts_with("HTTP/1.1 413")) << c.data();
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(ServerFixture, BodyLimitByPathPrefix) {
  // The controller's peer routes take larger batches than a client may send.
  ServerOptions o;
  o.max_body_bytes = 1000;
  o.body_limits = {BodyLimit{"/raft/", 5000}};
  start(o);
  SyncHttpClient client;
  auto big = client.call(addr_, ClientRequest{"POST", "/raft/messages", std::string(4000, 'x')});
  ASSERT_TRUE(big.ok()) << big.error().message;
  EXPECT_EQ(big.value().status, 200);
  auto too_big = client.call(addr_, ClientRequest{"POST", "/raft/messages", std::string(6000, 'x')});
  ASSERT_TRUE(too_big.ok());
  EXPECT_EQ(too_big.value().status, 413);
  EXPECT_NE(too_big.value().body.find("5000 bytes"), std::string::npos) << too_big.value().body;
  // Other routes keep the general limit, also when the target only looks alike.
  for (const char* target : {"/v1/shards", "/raft", "/v1/raft/messages"}) {
    auto r = client.call(addr_, ClientRequest{"POST", target, std::string(4000, 'x')});
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r.value().status, 413) << target;
    EXPECT_NE(r.value().body.find("1000 bytes"), std::string::npos) << r.value().body;
  }
  // Chunked bodies too (the limit is checked while the body arrives).
  RawConn c(server_->port());
  std::string req = "POST /raft/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 5; ++i) req += "190\r\n" + std::string(400, 'y') + "\r\n";
  req += "0\r\n\r\n";
  ASSERT_TRUE(c.send(req));
  ASSERT_TRUE(c.read_until("}")) << c.data();
  EXPECT_TRUE(c.data().starts_with("HTTP/1.1 200")) << c.data();
}

TEST_F(ServerFixture, ChunkedBodyIsReassembled) {
  start();
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"));
  ASSERT_TRUE(c.read_until("}"));
  EXPECT_NE(c.data().find("\"body\":\"hello world\""), std::string::npos) << c.data();
}

TEST_F(ServerFixture, MalformedRequestGets400AndClose) {
  start();
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("THIS IS NOT HTTP\r\n\r\n"));
  ASSERT_TRUE(c.wait_closed());
  EXPECT_TRUE(c.data().starts_with("HTTP/1.1 400")) << c.data();
  EXPECT_NE(c.data().find("\"error\":\"bad_request\""), std::string::npos);
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(ServerFixture, BadContentLengthGets400) {
  start();
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"));
  ASSERT_TRUE(c.wait_closed());
  EXPECT_TRUE(c.data().starts_with("HTTP/1.1 400")) << c.data();
}

TEST_F(ServerFixture, HugeHeaderGets431) {
  start();
  RawConn c(server_->port());
  std::string req = "GET / HTTP/1.1\r\nHost: x\r\nX-Junk: " + std::string(64 << 10, 'j') + "\r\n\r\n";
  c.send(req);  // the server may close before all of it is sent
  ASSERT_TRUE(c.wait_closed());
  EXPECT_TRUE(c.data().starts_with("HTTP/1.1 431")) << c.data().substr(0, 200);
  EXPECT_NE(c.data().find("header_too_large"), std::string::npos);
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(ServerFixture, IdleConnectionIsClosedAfterIdleTimeout) {
  ServerOptions o;
  o.idle_timeout_ms = 150;
  start(o);
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(c.read_until("}"));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.wait_closed(5000ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 100ms);
  EXPECT_TRUE(wait_until([&] { return server_->connection_count() == 0; }));
}

TEST_F(ServerFixture, SlowClientIsClosedAfterReadTimeout) {
  ServerOptions o;
  o.read_timeout_ms = 200;
  o.idle_timeout_ms = 60000;  // so only the read timeout can close it
  start(o);
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("GET /slow HTTP/1.1\r\nHost: x\r\n"));  // half a request
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.wait_closed(5000ms));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 150ms);
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(ServerFixture, WaitingForTheHandlerIsNotIdle) {
  // While an answer is owed, neither timeout may cut the connection.
  ServerOptions o;
  o.idle_timeout_ms = 100;
  o.read_timeout_ms = 100;
  Slot<std::shared_ptr<Responder>> held;
  handler_ = [&](HttpRequest, std::shared_ptr<Responder> res) { held.set(res); };
  start(o);
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto res = held.wait();
  ASSERT_TRUE(res);
  EXPECT_FALSE(c.wait_closed(400ms));  // 4x both timeouts: still open
  (*res)->reply(HttpResponse{200, "text/plain", "done", {}});
  ASSERT_TRUE(c.read_until("done"));
  server_->stop();  // before the locals the handler uses go away
}

TEST_F(ServerFixture, ExpectContinueGets100ThenTheAnswer) {
  start();
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  ASSERT_TRUE(c.read_until("HTTP/1.1 100 Continue\r\n\r\n"));
  ASSERT_TRUE(c.send("hello"));
  ASSERT_TRUE(c.read_until("}"));
  EXPECT_NE(c.data().find("\"body\":\"hello\""), std::string::npos) << c.data();
}

TEST_F(ServerFixture, Http10GetsAnAnswerAndAClose) {
  start();
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("GET /old HTTP/1.0\r\n\r\n"));
  ASSERT_TRUE(c.wait_closed());
  EXPECT_TRUE(c.data().starts_with("HTTP/1.1 200")) << c.data();
  EXPECT_NE(c.data().find("\"/old\""), std::string::npos);
}

TEST_F(ServerFixture, HeadHasNoBody) {
  start();
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(c.read_until("\"/g\""));
  EXPECT_EQ(c.data().find("\"/h\""), std::string::npos) << c.data();
  EXPECT_EQ(count(c.data(), "HTTP/1.1 200"), 2u);
}

TEST_F(ServerFixture, AbsoluteFormTargetRoutesOnThePath) {
  start();
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("GET http://h:1/v1/x?a=1 HTTP/1.1\r\nHost: h\r\n\r\n"));
  ASSERT_TRUE(c.read_until("}"));
  EXPECT_NE(c.data().find("\"path\":\"/v1/x\""), std::string::npos) << c.data();
  EXPECT_NE(c.data().find("\"a\":\"1\""), std::string::npos) << c.data();
}

TEST_F(ServerFixture, HandlerHeadersCannotInjectFields) {
  handler_ = [](HttpRequest, std::shared_ptr<Responder> res) {
    res->reply(HttpResponse{200, "text/plain", "ok", {{"X-Evil", "a\r\nSet-Cookie: x"}, {"X-Good", "1"}}});
  };
  start();
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(c.read_until("ok"));
  EXPECT_EQ(c.data().find("Set-Cookie"), std::string::npos);
  EXPECT_NE(c.data().find("X-Good: 1"), std::string::npos);
}

TEST_F(ServerFixture, ConnectionsOverTheCapAreClosed) {
  ServerOptions o;
  o.max_connections = 2;
  start(o);
  RawConn a(server_->port()), b(server_->port());
  ASSERT_TRUE(a.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(b.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(a.read_until("}"));
  ASSERT_TRUE(b.read_until("}"));
  RawConn third(server_->port());
  EXPECT_TRUE(third.wait_closed());
  EXPECT_TRUE(third.data().empty());
  a.close_now();
  ASSERT_TRUE(wait_until([&] { return server_->connection_count() < 2; }));
  RawConn fourth(server_->port());
  ASSERT_TRUE(fourth.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(fourth.read_until("}"));
}

TEST_F(ServerFixture, SecondListenerOnTheSamePortFailsClearly) {
  start();
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = server_->port();
  HttpServer other(io_->ioc(), o, echo);
  auto r = other.start();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ServerErrc::bind_failed);
  EXPECT_NE(r.error().message.find("in use"), std::string::npos) << r.error().message;
}

TEST_F(ServerFixture, BadListenAddressFails) {
  io_ = std::make_unique<IoThreads>(1);
  ServerOptions o;
  o.host = "256.1.1.1";
  HttpServer s(io_->ioc(), o, echo);
  auto r = s.start();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ServerErrc::invalid_address);
}

TEST_F(ServerFixture, StopClosesConnectionsAndPendingResponders) {
  Slot<std::shared_ptr<Responder>> held;
  handler_ = [&](HttpRequest, std::shared_ptr<Responder> res) { held.set(res); };
  start();
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto res = held.wait();
  ASSERT_TRUE(res);
  EXPECT_FALSE((*res)->closed());
  server_->stop();
  EXPECT_TRUE(c.wait_closed());
  EXPECT_TRUE(wait_until([&] { return (*res)->closed(); }));
  (*res)->reply(HttpResponse{});  // harmless after the connection is gone
  RawConn after(server_->port());
  EXPECT_TRUE(!after.connected() || after.wait_closed());
}

}  // namespace
}  // namespace tenure::net
