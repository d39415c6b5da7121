// Chunked streaming (the ndjson watch): server-side Responder streams and
// the client's stream(), end to end, including a consumer that goes away
// and one that stops reading.

#include <atomic>
#include <deque>
#include <thread>

#include <gtest/gtest.h>

#include "net/http_client.h"
#include "net/http_server.h"
#include "net/line_splitter.h"
#include "tests/unit/net/net_test_util.h"

namespace tenure::net {
namespace {

using namespace testing;

/// Collects what a client stream delivers, for waiting with deadlines.
struct Collector {
  std::mutex mu;
  std::condition_variable cv;
  int status = 0;
  HeaderMap headers;
  std::string data;
  std::vector<std::string> lines;
  LineSplitter splitter;
  bool ended = false;
  std::optional<ClientError> end_error;

  StreamHeadersFn on_headers() {
    return [this](int s, const HeaderMap& h) {
      std::lock_guard lock(mu);
      status = s;
      headers = h;
      cv.notify_all();
    };
  }
  StreamDataFn on_data() {
    return [this](std::string_view piece) {
      std::lock_guard lock(mu);
      data.append(piece);
      splitter.feed(piece, [&](std::string_view line) { lines.emplace_back(line); });
      cv.notify_all();
    };
  }
  StreamEndFn on_end() {
    return [this](std::optional<ClientError> e) {
      std::lock_guard lock(mu);
      ended = true;
      end_error = std::move(e);
      cv.notify_all();
    };
  }
  bool wait(const std::function<bool()>& pred, std::chrono::milliseconds t = 5000ms) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, t, pred);
  }
};

class StreamFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions o;
    o.host = "127.0.0.1";
    o.max_stream_queued_bytes = 1 << 20;
    server_ = std::make_unique<HttpServer>(io_.ioc(), o,
                                           [this](HttpRequest, std::shared_ptr<Responder> res) {
                                             responders_.set(res);
                                           });
    ASSERT_TRUE(server_->start().ok());
    addr_ = "127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override { server_->stop(); }

  IoThreads io_{2};
  std::unique_ptr<HttpServer> server_;
  std::string addr_;
  Slot<std::shared_ptr<Responder>> responders_;
};

TEST_F(StreamFixture, ChunksArriveOneByOneAndTheEndIsClean) {
  HttpClient client(io_.ioc());
  Collector got;
  auto handle = client.stream(addr_, ClientRequest{"GET", "/v1/watch?since=0"}, got.on_headers(),
                              got.on_data(), got.on_end());
  auto res = responders_.wait();
  ASSERT_TRUE(res);
  ASSERT_TRUE((*res)->start_stream(200, "application/x-ndjson"));
  ASSERT_TRUE(got.wait([&] { return got.status == 200; }));
  EXPECT_EQ(got.headers["content-type"], "application/x-ndjson");
  for (int i = 0; i < 5; ++i) {
    // Each event is seen by the client before the next is written: data
    // flows as it is produced, not when the response ends.
    ASSERT_TRUE((*res)->write_chunk("{\"revision\":" + std::to_string(i) + "}\n"));
    ASSERT_TRUE(got.wait([&] { return got.lines.size() == static_cast<size_t>(i + 1); })) << i;
  }
  EXPECT_FALSE(got.ended);
  (*res)->end_stream();
  ASSERT_TRUE(got.wait([&] { return got.ended; }));
  EXPECT_FALSE(got.end_error.has_value());
  EXPECT_EQ(got.lines.back(), "{\"revision\":4}");
  EXPECT_FALSE(handle->active());
  EXPECT_TRUE(wait_until([&] { return (*res)->closed(); }));
}

TEST_F(StreamFixture, ClientCancelClosesTheServerSide) {
  HttpClient client(io_.ioc());
  Collector got;
  auto handle = client.stream(addr_, ClientRequest{"GET", "/v1/watch"}, got.on_headers(),
                              got.on_data(), got.on_end());
  auto res = responders_.wait();
  ASSERT_TRUE(res);
  std::atomic<bool> closed_hook{false};
  (*res)->on_close([&] { closed_hook = true; });
  ASSERT_TRUE((*res)->start_stream(200, "application/x-ndjson"));
  ASSERT_TRUE((*res)->write_chunk("{}\n"));
  ASSERT_TRUE(got.wait([&] { return got.lines.size() == 1; }));
  handle->cancel();
  ASSERT_TRUE(got.wait([&] { return got.ended; }));
  ASSERT_TRUE(got.end_error.has_value());
  EXPECT_EQ(got.end_error->code, ClientErrc::cancelled);
  // The server notices without writing (it reads EOF), runs the hook,
  // and refuses further chunks.
  ASSERT_TRUE(wait_until([&] { return (*res)->closed(); }));
  EXPECT_TRUE(closed_hook.load());
  EXPECT_FALSE((*res)->write_chunk("{}\n"));
}

TEST_F(StreamFixture, SlowConsumerShowsInQueuedBytesAndIsCutAtTheCap) {
  // A raw client that asks for a stream and never reads.
  RawConn c(server_->port());
  ASSERT_TRUE(c.send("GET /v1/watch HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto res = responders_.wait();
  ASSERT_TRUE(res);
  ASSERT_TRUE((*res)->start_stream(200, "application/x-ndjson"));
  const std::string event(64 << 10, 'e');
  size_t max_seen = 0;
  bool refused = false;
  // Kernel buffers take a few MiB, then queued_bytes climbs to the 1 MiB cap.
  for (int i = 0; i < 2000 && !refused; ++i) {
    refused = !(*res)->write_chunk(event);
    max_seen = std::max(max_seen, (*res)->queued_bytes());
  }
  EXPECT_TRUE(refused);
  EXPECT_GT(max_seen, 256u << 10);
  EXPECT_LE(max_seen, 1u << 20);
  EXPECT_TRUE(wait_until([&] { return (*res)->closed(); }));
  EXPECT_TRUE(wait_until([&] { return server_->connection_count() == 0; }));
}

TEST_F(StreamFixture, StreamToAServerThatSendsNothingTimesOut) {
  HttpClient client(io_.ioc());
  Collector got;
  ClientRequest req{"GET", "/v1/watch"};
  req.timeout_ms = 5000;
  req.idle_timeout_ms = 150;
  auto handle = client.stream(addr_, req, got.on_headers(), got.on_data(), got.on_end());
  auto res = responders_.wait();
  ASSERT_TRUE(res);
  ASSERT_TRUE((*res)->start_stream(200, "application/x-ndjson"));
  ASSERT_TRUE(got.wait([&] { return got.ended; }));
  ASSERT_TRUE(got.end_error.has_value());
  EXPECT_EQ(got.end_error->code, ClientErrc::timeout);
  EXPECT_TRUE(wait_until([&] { return (*res)->closed(); }));
}

TEST_F(StreamFixture, StreamToNowhereEndsWithAnError) {
  HttpClient client(io_.ioc());
  Collector got;
  client.stream("127.0.0.1:" + std::to_string(unused_port()), ClientRequest{}, got.on_headers(),
                got.on_data(), got.on_end());
  ASSERT_TRUE(got.wait([&] { return got.ended; }));
  ASSERT_TRUE(got.end_error.has_value());
  EXPECT_EQ(got.end_error->code, ClientErrc::connect_failed);
  EXPECT_EQ(got.status, 0);
}

TEST_F(StreamFixture, NonStreamingAnswerIsDeliveredToo) {
  HttpClient client(io_.ioc());
  Collector got;
  client.stream(addr_, ClientRequest{"GET", "/v1/watch?since=1"}, got.on_headers(), got.on_data(),
                got.on_end());
  auto res = responders_.wait();
  ASSERT_TRUE(res);
  (*res)->reply(json_error(410, "compacted", "revision 1 was compacted"));
  ASSERT_TRUE(got.wait([&] { return got.ended; }));
  EXPECT_FALSE(got.end_error.has_value()) << got.end_error->message;
  EXPECT_EQ(got.status, 410);
  EXPECT_NE(got.data.find("compacted"), std::string::npos);
}

TEST(LineSplitterTest, SplitsAcrossPiecesAndSkipsKeepAlives) {
  LineSplitter s(16);
  std::vector<std::string> lines;
  auto add = [&](std::string_view l) { lines.emplace_back(l); };
  EXPECT_TRUE(s.feed("ab", add));
  EXPECT_TRUE(s.feed("c\nde\r\n\n\nf", add));
  EXPECT_EQ(lines, (std::vector<std::string>{"abc", "de"}));
  EXPECT_EQ(s.pending_bytes(), 1u);
  EXPECT_TRUE(s.feed("g\n", add));
  EXPECT_EQ(lines.back(), "fg");
  EXPECT_FALSE(s.feed(std::string(20, 'x'), add));  // over the limit
  EXPECT_TRUE(s.failed());
  EXPECT_FALSE(s.feed("ok\n", add));
}

}  // namespace
}  // namespace tenure::net
