// The client against real servers on 127.0.0.1: errors as values,
// deadlines, the keep-alive pool (reuse, bounds, stale connections).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "net/http_client.h"
#include "net/http_server.h"
#include "net/sync_http_client.h"
#include "tests/unit/net/net_test_util.h"

namespace tenure::net {
namespace {

using namespace testing;

class ClientFixture : public ::testing::Test {
 protected:
  void start(ServerOptions options = {}) {
    options.host = "127.0.0.1";
    options.port = 0;
    server_ = std::make_unique<HttpServer>(io_.ioc(), options,
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
  }

  /// The handler keeps every request's responder, unanswered, in held_.
  void hold_requests() {
    handler_ = [this](HttpRequest, std::shared_ptr<Responder> res) {
      std::lock_guard lock(held_mu_);
      held_.push_back(std::move(res));
    };
  }

  std::mutex held_mu_;
  std::vector<std::shared_ptr<Responder>> held_;
  IoThreads io_{2};
  std::unique_ptr<HttpServer> server_;
  std::string addr_;
  std::atomic<int> calls_{0};
  Handler handler_ = [](HttpRequest req, std::shared_ptr<Responder> res) {
    res->reply(HttpResponse{200, "text/plain", req.method + " " + req.target, {}});
  };
};

TEST_F(ClientFixture, TimeoutOnAServerThatNeverAnswers) {
  std::mutex mu;
  std::vector<std::shared_ptr<Responder>> never;
  handler_ = [&](HttpRequest, std::shared_ptr<Responder> res) {
    std::lock_guard lock(mu);
    never.push_back(std::move(res));
  };
  start();
  SyncHttpClient client;
  ClientRequest req{"GET", "/hang"};
  req.timeout_ms = 200;
  auto t0 = std::chrono::steady_clock::now();
  auto r = client.call(addr_, req);
  auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ClientErrc::timeout) << r.error().message;
  EXPECT_GE(took, 190ms);
  EXPECT_LT(took, 3000ms);
  server_->stop();  // before the locals the handler uses go away
}

TEST_F(ClientFixture, ConnectionRefusedIsAValue) {
  SyncHttpClient client;
  auto r = client.call("127.0.0.1:" + std::to_string(unused_port()), ClientRequest{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ClientErrc::connect_failed) << r.error().message;
  EXPECT_NE(r.error().message.find("refused"), std::string::npos) << r.error().message;
}

TEST_F(ClientFixture, BadAddressIsAValue) {
  SyncHttpClient client;
  for (const char* bad : {"nohost", "127.0.0.1:", "127.0.0.1:99999", ":80", "::1:80"}) {
    auto r = client.call(bad, ClientRequest{});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.code(), ClientErrc::bad_address) << bad;
  }
}

TEST_F(ClientFixture, AsyncRequestsShareABoundedPool) {
  // 40 requests at once with room for 3 connections: the rest wait in the
  // queue and reuse the three.
  std::mutex mu;
  std::vector<std::thread> repliers;
  handler_ = [&](HttpRequest req, std::shared_ptr<Responder> res) {
    std::lock_guard lock(mu);
    repliers.emplace_back([req, res] { res->reply(HttpResponse{200, "text/plain", req.target, {}}); });
  };
  start();
  ClientOptions o;
  o.max_connections_per_host = 3;
  HttpClient client(io_.ioc(), o);
  std::atomic<int> ok{0}, done{0};
  for (int i = 0; i < 40; ++i) {
    std::string target = "/r" + std::to_string(i);
    client.request(addr_, ClientRequest{"GET", target}, [&, target](ClientResult r) {
      if (r.ok() && r.value().status == 200 && r.value().body == target) ok.fetch_add(1);
      done.fetch_add(1);
    });
  }
  ASSERT_TRUE(wait_until([&] { return done.load() == 40; }));
  EXPECT_EQ(ok.load(), 40);
  EXPECT_LE(client.connections_opened(), 3u);
  EXPECT_LE(server_->accepted_count(), 3u);
  server_->stop();  // before the locals the handler uses go away
  std::lock_guard lock(mu);
  for (auto& t : repliers) t.join();
}

TEST_F(ClientFixture, QueueOverflowFailsOverloaded) {
  hold_requests();
  start();
  ClientOptions o;
  o.max_connections_per_host = 1;
  o.max_queued_per_host = 2;
  HttpClient client(io_.ioc(), o);
  std::atomic<int> overloaded{0}, done{0};
  for (int i = 0; i < 5; ++i) {
    ClientRequest req{"GET", "/q"};
    req.timeout_ms = 2000;
    client.request(addr_, req, [&](ClientResult r) {
      if (!r.ok() && r.code() == ClientErrc::overloaded) overloaded.fetch_add(1);
      done.fetch_add(1);
    });
  }
  // One in flight, two queued, two refused at once.
  ASSERT_TRUE(wait_until([&] { return overloaded.load() == 2; }));
  {
    std::lock_guard lock(held_mu_);
    for (auto& r : held_) r->reply(HttpResponse{});
  }
  ASSERT_TRUE(wait_until([&] {
    std::lock_guard lock(held_mu_);
    for (auto& r : held_) r->reply(HttpResponse{});
    return done.load() == 5;
  }));
}

TEST_F(ClientFixture, QueuedRequestTimesOutWhileWaitingForAConnection) {
  hold_requests();  // never answered
  start();
  ClientOptions o;
  o.max_connections_per_host = 1;
  HttpClient client(io_.ioc(), o);
  Slot<ClientResult> first, second;
  ClientRequest slow{"GET", "/first"};
  slow.timeout_ms = 5000;
  client.request(addr_, slow, [&](ClientResult r) { first.set(std::move(r)); });
  ClientRequest queued{"GET", "/second"};
  queued.timeout_ms = 200;
  auto t0 = std::chrono::steady_clock::now();
  client.request(addr_, queued, [&](ClientResult r) { second.set(std::move(r)); });
  auto r = second.wait();
  ASSERT_TRUE(r);
  ASSERT_FALSE(r->ok());
  EXPECT_EQ(r->code(), ClientErrc::timeout) << r->error().message;
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 190ms);
  EXPECT_FALSE(first.wait(0ms).has_value());  // the first is still in flight
  EXPECT_EQ(calls_.load(), 1);
}

TEST_F(ClientFixture, CallbackChainReusesTheSameConnection) {
  start();
  HttpClient client(io_.ioc());
  std::atomic<int> left{50};
  Slot<bool> finished;
  std::function<void()> next = [&] {
    client.request(addr_, ClientRequest{"GET", "/c"}, [&](ClientResult r) {
      if (!r.ok() || --left == 0) return finished.set(r.ok());
      next();  // from the connection's strand: it runs on the same connection
    });
  };
  next();
  auto ok = finished.wait();
  ASSERT_TRUE(ok);
  EXPECT_TRUE(*ok);
  EXPECT_EQ(left.load(), 0);
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(server_->accepted_count(), 1u);
}

TEST_F(ClientFixture, StaleKeepAliveConnectionIsReplaced) {
  ServerOptions so;
  so.idle_timeout_ms = 100;  // the server drops the pooled connection
  start(so);
  SyncHttpClient client;
  ASSERT_TRUE(client.call(addr_, ClientRequest{"GET", "/1"}).ok());
  ASSERT_TRUE(wait_until([&] { return server_->connection_count() == 0; }));
  for (const char* method : {"GET", "POST"}) {
    auto r = client.call(addr_, ClientRequest{method, "/2"});
    ASSERT_TRUE(r.ok()) << method << ": " << r.error().message;
    EXPECT_EQ(r.value().body, std::string(method) + " /2");
    ASSERT_TRUE(wait_until([&] { return server_->connection_count() == 0; }));
  }
  EXPECT_EQ(client.connections_opened(), 3u);
}

/// A server by hand: on its first connection it answers one request
/// (keep-alive), then closes at the next one without answering, as a server
/// that died between two requests leaves a pooled connection; later
/// connections are answered.
class DiesAfterOneAnswer {
 public:
  DiesAfterOneAnswer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 8);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { serve(); });
  }
  ~DiesAfterOneAnswer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  int connections() const { return connections_.load(); }

 private:
  static bool read_request(int c) {
    std::string got;
    char buf[4096];
    while (got.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) return false;
      got.append(buf, static_cast<size_t>(n));
    }
    return true;  // the tests' bodies are tiny: they came with the headers
  }
  static void answer(int c) {
    std::string r = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nok";
    (void)!::write(c, r.data(), r.size());
  }
  void serve() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      int n = connections_.fetch_add(1) + 1;
      if (read_request(c)) answer(c);
      if (n == 1) {
        read_request(c);  // the next request on the reused connection: no answer
        ::close(c);
        continue;
      }
      while (read_request(c)) answer(c);
      ::close(c);
    }
  }
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

ClientResult call_async(HttpClient& client, const std::string& address, ClientRequest req) {
  Slot<ClientResult> slot;
  client.request(address, std::move(req), [&](ClientResult r) { slot.set(std::move(r)); });
  return *slot.wait();
}

TEST(ClientRetry, RetrySafePostIsSentAgainWhenAReusedConnectionDies) {
  IoThreads io{2};
  DiesAfterOneAnswer server;
  HttpClient client(io.ioc());
  auto call = [&](ClientRequest req) { return call_async(client, server.address(), std::move(req)); };
  ASSERT_TRUE(call(ClientRequest{"POST", "/raft/messages", "a"}).ok());
  ClientRequest again{"POST", "/raft/messages", "b"};
  again.retry_safe = true;
  auto r = call(again);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().body, "ok");
  EXPECT_EQ(server.connections(), 2);
}

TEST(ClientRetry, PlainPostIsNotSentTwice) {
  IoThreads io{2};
  DiesAfterOneAnswer server;
  HttpClient client(io.ioc());
  auto call = [&](ClientRequest req) { return call_async(client, server.address(), std::move(req)); };
  ASSERT_TRUE(call(ClientRequest{"POST", "/v1/shards", "a"}).ok());
  EXPECT_FALSE(call(ClientRequest{"POST", "/v1/shards", "b"}).ok());
  EXPECT_EQ(server.connections(), 1);
}

TEST_F(ClientFixture, ResponseOverTheLimitIsTooLarge) {
  handler_ = [](HttpRequest, std::shared_ptr<Responder> res) {
    res->reply(HttpResponse{200, "text/plain", std::string(100000, 'z'), {}});
  };
  start();
  ClientOptions o;
  o.max_response_bytes = 1000;
  SyncHttpClient client(o);
  auto r = client.call(addr_, ClientRequest{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ClientErrc::too_large);
}

TEST_F(ClientFixture, ErrorStatusesAreResponses) {
  handler_ = [](HttpRequest, std::shared_ptr<Responder> res) {
    auto e = json_error(503, "no_leader", "no leader known");
    e.headers.push_back({"Retry-After", "1"});
    res->reply(e);
  };
  start();
  SyncHttpClient client;
  auto r = client.call(addr_, ClientRequest{"POST", "/v1/shards", "{}"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.value().status, 503);
  EXPECT_EQ(r.value().header("retry-after"), "1");
  EXPECT_EQ(r.value().body, R"({"error":"no_leader","message":"no leader known"})");
}

TEST_F(ClientFixture, ShutdownDropsCallbacksAndRefusesNewWork) {
  Slot<std::shared_ptr<Responder>> held;
  handler_ = [&](HttpRequest, std::shared_ptr<Responder> res) { held.set(res); };
  start();
  HttpClient client(io_.ioc());
  std::atomic<int> callbacks{0};
  client.request(addr_, ClientRequest{}, [&](ClientResult) { callbacks.fetch_add(1); });
  ASSERT_TRUE(held.wait());
  client.shutdown();
  (*held.wait())->reply(HttpResponse{});
  client.request(addr_, ClientRequest{}, [&](ClientResult) { callbacks.fetch_add(1); });
  // The server sees the connection go; no callback ever runs.
  ASSERT_TRUE(wait_until([&] { return server_->connection_count() == 0; }));
  EXPECT_EQ(callbacks.load(), 0);
  server_->stop();  // before the locals the handler uses go away
}

TEST_F(ClientFixture, HeadRequestHasNoBody) {
  start();
  SyncHttpClient client;
  auto r = client.call(addr_, ClientRequest{"HEAD", "/h"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().status, 200);
  EXPECT_TRUE(r.value().body.empty());
  auto g = client.call(addr_, ClientRequest{"GET", "/g"});  // the connection stays in sync
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g.value().body, "GET /g");
  EXPECT_EQ(client.connections_opened(), 1u);
}

}  // namespace
}  // namespace tenure::net
