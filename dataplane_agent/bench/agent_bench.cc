// tenure-agent-bench: how fast the fence is.
//
//   tenure-agent-bench [--shards 10000] [--seconds 2] [--threads 1,2]
//                      [--conns 1,16,64] [--server-threads 1] [--mode all|inproc|http]
//
// inproc: FenceState::check (what Agent::fence and the HTTP API call) on the
//   system clock, T threads each checking random held shards; ns per check.
// http:   POST /v1/fence and PUT /v1/data through the real HttpApi on a real
//   HttpServer, N closed-loop keep-alive connections from one client thread
//   with a minimal hand-written HTTP/1.1 generator; requests/s and latency.
// The machine is shared (2 cores): client and server compete for them.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>

#include "dataplane_agent/data_store.h"
#include "dataplane_agent/fence_state.h"
#include "dataplane_agent/http_api.h"
#include "dataplane_agent/metrics.h"
#include "net/http_server.h"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Steady = std::chrono::steady_clock;
using namespace tenure::agent;

namespace {

struct Options {
  size_t shards = 10000;
  double seconds = 2;
  std::vector<int> threads = {1, 2};
  std::vector<int> conns = {1, 16, 64};
  int server_threads = 1;
  std::string mode = "all";
};

std::vector<int> parse_list(const char* s) {
  std::vector<int> out;
  std::string text(s);
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t comma = text.find(',', pos);
    out.push_back(std::atoi(text.substr(pos, comma - pos).c_str()));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

std::string shard_name(size_t i) { return "s-" + std::to_string(i); }

/// A FenceState holding `n` shards at epoch 7 with a lease valid for an hour.
void fill(FenceState& fence, size_t n) {
  GrantChanges c(fence.table_for_planning());
  for (size_t i = 0; i < n; ++i) c.grant(ShardId(shard_name(i)), Epoch(7));
  fence.install(c);
  fence.extend_lease(Steady::now() + std::chrono::hours(1));
}

void bench_inproc(const Options& o, FenceState& fence) {
  std::vector<std::string> names;
  for (size_t i = 0; i < o.shards; ++i) names.push_back(shard_name(i));
  for (int t : o.threads) {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> total{0}, ok{0};
    std::vector<std::thread> workers;
    auto start = Steady::now();
    for (int k = 0; k < t; ++k) {
      workers.emplace_back([&, k] {
        std::mt19937 rng(static_cast<unsigned>(k + 1));
        uint64_t n = 0, good = 0;
        while (!stop.load(std::memory_order_relaxed)) {
          for (int j = 0; j < 1024; ++j) {
            const std::string& s = names[rng() % names.size()];
            good += fence.check(s, Epoch(7)).ok() ? 1 : 0;
          }
          n += 1024;
        }
        total += n;
        ok += good;
      });
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
    stop = true;
    for (auto& w : workers) w.join();
    double secs = std::chrono::duration<double>(Steady::now() - start).count();
    double per_sec = static_cast<double>(total.load()) / secs;
    std::printf("inproc threads=%d shards=%zu checks=%llu ok=%llu checks_per_s=%.0f ns_per_check_per_thread=%.1f\n", t,
                o.shards, static_cast<unsigned long long>(total.load()), static_cast<unsigned long long>(ok.load()),
                per_sec, 1e9 * t / per_sec);
  }
}

/// One closed-loop keep-alive connection sending the same request shape.
struct Conn {
  tcp::socket socket;
  asio::streambuf in;
  std::string request;
  Steady::time_point sent;
  std::vector<double>* latencies_us = nullptr;
  uint64_t* done = nullptr;
  int* bad = nullptr;
  const std::atomic<bool>* measuring = nullptr;
  const std::atomic<bool>* stop = nullptr;
  explicit Conn(asio::io_context& io) : socket(io) {}

  void send() {
    if (stop->load()) return;
    sent = Steady::now();
    asio::async_write(socket, asio::buffer(request), [this](boost::system::error_code ec, size_t) {
      if (!ec) read_head();
    });
  }
  void read_head() {
    asio::async_read_until(socket, in, "\r\n\r\n", [this](boost::system::error_code ec, size_t head) {
      if (ec) return;
      std::string h(asio::buffers_begin(in.data()), asio::buffers_begin(in.data()) + static_cast<long>(head));
      in.consume(head);
      if (h.compare(0, 12, "HTTP/1.1 200") != 0) ++*bad;
      size_t cl = 0;
      auto p = h.find("Content-Length: ");
      if (p == std::string::npos) p = h.find("content-length: ");
      if (p != std::string::npos) cl = std::strtoul(h.c_str() + p + 16, nullptr, 10);
      size_t have = in.size();
      size_t need = cl > have ? cl - have : 0;
      asio::async_read(socket, in, asio::transfer_exactly(need), [this, cl](boost::system::error_code ec2, size_t) {
        if (ec2) return;
        in.consume(cl);
        if (measuring->load()) {
          ++*done;
          latencies_us->push_back(std::chrono::duration<double, std::micro>(Steady::now() - sent).count());
        }
        send();
      });
    });
  }
};

using RequestFn = std::string (*)(size_t i, size_t shards);

std::string fence_request(size_t i, size_t shards) {
  std::string body = "{\"shard\":\"" + shard_name(i % shards) + "\",\"epoch\":7}";
  return "POST /v1/fence HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string put_request(size_t i, size_t shards) {
  std::string body(100, 'v');
  return "PUT /v1/data/" + shard_name(i % shards) + "/k" + std::to_string(i) +
         " HTTP/1.1\r\nHost: b\r\nTenure-Epoch: 7\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

void bench_http_one(const Options& o, uint16_t port, int conns, const char* what, RequestFn make) {
  asio::io_context io;
  std::atomic<bool> measuring{false}, stop{false};
  std::vector<double> lat;
  uint64_t done = 0;
  int bad = 0;
  std::vector<std::unique_ptr<Conn>> cs;
  for (int i = 0; i < conns; ++i) {
    auto c = std::make_unique<Conn>(io);
    c->socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    c->socket.set_option(tcp::no_delay(true));
    c->request = make(static_cast<size_t>(i) * 7919, o.shards);
    c->latencies_us = &lat;
    c->done = &done;
    c->bad = &bad;
    c->measuring = &measuring;
    c->stop = &stop;
    cs.push_back(std::move(c));
  }
  for (auto& c : cs) c->send();
  std::thread timer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // warm-up
    measuring = true;
    std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
    measuring = false;
    stop = true;
  });
  auto start = Steady::now();
  while (!stop.load()) io.run_for(std::chrono::milliseconds(50));
  timer.join();
  double secs = std::chrono::duration<double>(Steady::now() - start).count() - 0.3;
  for (auto& c : cs) c->socket.close();
  io.run_for(std::chrono::milliseconds(100));
  std::sort(lat.begin(), lat.end());
  auto pct = [&](double q) { return lat.empty() ? 0.0 : lat[std::min(lat.size() - 1, static_cast<size_t>(q * lat.size()))]; };
  std::printf("http %s conns=%d server_threads=%d requests=%llu requests_per_s=%.0f p50_us=%.0f p99_us=%.0f non_200=%d\n",
              what, conns, o.server_threads, static_cast<unsigned long long>(done), static_cast<double>(done) / secs,
              pct(0.5), pct(0.99), bad);
}

void bench_http(const Options& o, FenceState& fence) {
  auto dir = std::filesystem::temp_directory_path() / ("tenure-agent-bench-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto data = DataStore::open((dir / "data.db").string(), fence);
  if (!data.ok()) {
    std::fprintf(stderr, "cannot open data store: %s\n", data.error().message.c_str());
    return;
  }
  AgentMetrics metrics(fence);
  HttpApi api(WorkerId("bench"), fence, *data.value(), metrics, [] { return true; });
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  tenure::net::ServerOptions so;
  so.max_pipelined_requests = 16;
  tenure::net::HttpServer server(io, so, [&](tenure::net::HttpRequest req, std::shared_ptr<tenure::net::Responder> res) {
    api.handle(std::move(req), std::move(res));
  });
  if (!server.start().ok()) return;
  std::vector<std::thread> threads;
  for (int i = 0; i < o.server_threads; ++i) threads.emplace_back([&] { io.run(); });
  for (int c : o.conns) bench_http_one(o, server.port(), c, "fence", fence_request);
  for (int c : o.conns) bench_http_one(o, server.port(), c, "put", put_request);
  server.stop();
  guard.reset();
  io.stop();
  for (auto& t : threads) t.join();
  data.value()->stop();
  std::filesystem::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string f = argv[i];
    if (f == "--shards") o.shards = std::strtoul(argv[i + 1], nullptr, 10);
    else if (f == "--seconds") o.seconds = std::atof(argv[i + 1]);
    else if (f == "--threads") o.threads = parse_list(argv[i + 1]);
    else if (f == "--conns") o.conns = parse_list(argv[i + 1]);
    else if (f == "--server-threads") o.server_threads = std::atoi(argv[i + 1]);
    else if (f == "--mode") o.mode = argv[i + 1];
    else {
      std::fprintf(stderr, "unknown flag %s\n", f.c_str());
      return 2;
    }
  }
  SystemClock clock;
  FenceState fence(clock);
  fill(fence, o.shards);
  if (o.mode == "all" || o.mode == "inproc") bench_inproc(o, fence);
  if (o.mode == "all" || o.mode == "http") bench_http(o, fence);
  return 0;
}
