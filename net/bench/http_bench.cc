// tenure-http-bench: requests per second and latency of the HTTP layer with
// a trivial handler, over keep-alive connections on 127.0.0.1.
//
//   tenure-http-bench [--conns 1,16,64] [--seconds 3] [--server-threads 1]
//                     [--pipeline 1] [--client raw|pool] [--tls CERT_DIR]
//
// `raw` drives the server with a minimal hand-written HTTP/1.1 generator
// (one io thread, N closed-loop connections, `--pipeline` requests in flight
// on each), so the figure is the server's. `pool` drives it through
// HttpClient (N requests in flight through the pool), so the figure is the
// client and the server together, as a forwarding controller would use them.
// `--tls DIR` serves mutual TLS with DIR/server.{crt,key} and DIR/ca.crt,
// and the pool presents DIR/client.{crt,key} (implies --client pool; e.g.
// the certificates of `scripts/dev-cluster.sh --tls`, copied to those names).

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "net/http_client.h"
#include "net/http_server.h"

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::vector<int> conns = {1, 16, 64};
  double seconds = 3;
  int server_threads = 1;
  int pipeline = 1;
  std::string client = "raw";
  std::string tls_dir;  ///< mutual TLS with the certificates there; empty: plain
};

/// Latencies of completed requests while measuring.
struct Stats {
  std::vector<double> latencies_us;
  uint64_t done = 0;
  bool measuring = false;
  double cpu_seconds = 0;  ///< process CPU (user + system, both sides) while measuring
  void record(Clock::time_point sent) {
    if (!measuring) return;
    ++done;
    latencies_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - sent).count());
  }
};

/// One closed-loop keep-alive connection with `depth` requests in flight.
class RawConn {
 public:
  RawConn(asio::io_context& ioc, Stats& stats, int depth) : sock_(ioc), stats_(stats), depth_(depth) {}
  void start(const tcp::endpoint& ep) {
    sock_.connect(ep);
    sock_.set_option(tcp::no_delay(true));
    for (int i = 0; i < depth_; ++i) send();
    read();
  }
  void stop() { stopping_ = true; }

 private:
  static constexpr const char* kRequest = "GET /bench HTTP/1.1\r\nHost: bench\r\n\r\n";
  void send() {
    sent_.push_back(Clock::now());
    out_ += kRequest;
    if (!writing_) flush();
  }
  void flush() {
    if (out_.empty()) return;
    writing_ = true;
    wbuf_.swap(out_);
    out_.clear();
    asio::async_write(sock_, asio::buffer(wbuf_), [this](boost::system::error_code ec, size_t) {
      writing_ = false;
      wbuf_.clear();
      if (!ec) flush();
    });
  }
  void read() {
    sock_.async_read_some(asio::buffer(rbuf_), [this](boost::system::error_code ec, size_t n) {
      if (ec) return;
      in_.append(rbuf_.data(), n);
      consume();
      read();
    });
  }
  /// Pops complete responses (Content-Length framed) off the input.
  void consume() {
    for (;;) {
      size_t end = in_.find("\r\n\r\n");
      if (end == std::string::npos) return;
      size_t cl = in_.find("Content-Length: ");
      size_t len = cl < end ? std::strtoul(in_.c_str() + cl + 16, nullptr, 10) : 0;
      if (in_.size() < end + 4 + len) return;
      in_.erase(0, end + 4 + len);
      stats_.record(sent_.front());
      sent_.erase(sent_.begin());
      if (!stopping_) send();
    }
  }

  tcp::socket sock_;
  Stats& stats_;
  int depth_;
  bool stopping_ = false;
  bool writing_ = false;
  std::string out_, wbuf_, in_;
  std::vector<Clock::time_point> sent_;
  std::array<char, 65536> rbuf_{};
};

void report(const char* what, int conns, const Stats& s, double seconds) {
  std::vector<double> l = s.latencies_us;
  std::sort(l.begin(), l.end());
  auto pct = [&](double p) { return l.empty() ? 0.0 : l[static_cast<size_t>(p * (l.size() - 1))]; };
  std::printf("%-5s conns=%-3d requests=%-8llu rps=%-9.0f p50_us=%-7.1f p99_us=%-8.1f "
              "cpu_us_per_req=%.2f\n",
              what, conns, static_cast<unsigned long long>(s.done), s.done / seconds, pct(0.50),
              pct(0.99), s.done ? s.cpu_seconds * 1e6 / static_cast<double>(s.done) : 0.0);
  std::fflush(stdout);
}

/// CPU time of the whole process (client and server threads), in seconds.
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

/// Runs the load for warm-up + `seconds` on the calling thread's io_context.
/// CPU per request is the figure that survives a busy machine: throughput
/// there depends on what else runs, CPU spent per request much less.
void measure(asio::io_context& ioc, Stats& stats, double seconds) {
  ioc.run_for(std::chrono::milliseconds(300));  // warm-up
  stats.measuring = true;
  double cpu0 = cpu_seconds();
  ioc.run_for(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds)));
  stats.cpu_seconds = cpu_seconds() - cpu0;
  stats.measuring = false;
}

void run_raw(uint16_t port, int conns, const Options& o) {
  asio::io_context ioc;
  Stats stats;
  std::vector<std::unique_ptr<RawConn>> cs;
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
  for (int i = 0; i < conns; ++i) {
    cs.push_back(std::make_unique<RawConn>(ioc, stats, o.pipeline));
    cs.back()->start(ep);
  }
  measure(ioc, stats, o.seconds);
  report("raw", conns, stats, o.seconds);
  for (auto& c : cs) c->stop();
}

void run_pool(uint16_t port, int conns, const Options& o) {
  asio::io_context ioc;
  Stats stats;
  tenure::net::ClientOptions co;
  co.max_connections_per_host = static_cast<size_t>(conns);
  co.max_idle_per_host = static_cast<size_t>(conns);
  if (!o.tls_dir.empty()) {
    co.tls = true;
    co.tls_ca_file = o.tls_dir + "/ca.crt";
    co.tls_cert_file = o.tls_dir + "/client.crt";
    co.tls_key_file = o.tls_dir + "/client.key";
  }
  tenure::net::HttpClient client(ioc, co);
  std::string addr = "127.0.0.1:" + std::to_string(port);
  bool stopping = false;
  std::function<void()> one = [&] {
    auto sent = Clock::now();
    client.request(addr, tenure::net::ClientRequest{"GET", "/bench"},
                   [&, sent](tenure::net::ClientResult r) {
                     if (r.ok()) stats.record(sent);
                     if (!stopping) one();
                   });
  };
  for (int i = 0; i < conns; ++i) one();
  measure(ioc, stats, o.seconds);
  stopping = true;
  report("pool", conns, stats, o.seconds);
  client.shutdown();
  ioc.run_for(std::chrono::milliseconds(100));
}

std::vector<int> parse_list(const char* s) {
  std::vector<int> out;
  for (const char* p = s; *p;) {
    out.push_back(std::atoi(p));
    while (*p && *p != ',') ++p;
    if (*p == ',') ++p;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--conns") o.conns = parse_list(next());
    else if (a == "--seconds") o.seconds = std::atof(next());
    else if (a == "--server-threads") o.server_threads = std::atoi(next());
    else if (a == "--pipeline") o.pipeline = std::max(1, std::atoi(next()));
    else if (a == "--client") o.client = next();
    else if (a == "--tls") o.tls_dir = next(), o.client = "pool";
    else {
      std::printf("usage: %s [--conns 1,16,64] [--seconds 3] [--server-threads 1] "
                  "[--pipeline 1] [--client raw|pool] [--tls CERT_DIR]\n", argv[0]);
      return a == "--help" ? 0 : 2;
    }
  }
  asio::io_context server_ioc;
  auto guard = asio::make_work_guard(server_ioc);
  tenure::net::ServerOptions so;
  so.host = "127.0.0.1";
  if (!o.tls_dir.empty()) {
    so.tls_cert_file = o.tls_dir + "/server.crt";
    so.tls_key_file = o.tls_dir + "/server.key";
    so.tls_ca_file = o.tls_dir + "/ca.crt";
  }
  tenure::net::HttpServer server(server_ioc, so,
                                 [](tenure::net::HttpRequest, std::shared_ptr<tenure::net::Responder> res) {
                                   res->reply(tenure::net::HttpResponse{200, "application/json", "{\"ok\":true}", {}});
                                 });
  if (auto r = server.start(); !r.ok()) {
    std::fprintf(stderr, "cannot start server: %s\n", r.error().message.c_str());
    return 1;
  }
  std::vector<std::thread> threads;
  for (int i = 0; i < o.server_threads; ++i) threads.emplace_back([&] { server_ioc.run(); });
  std::printf("server_threads=%d pipeline=%d seconds=%.1f client=%s tls=%s\n", o.server_threads, o.pipeline,
              o.seconds, o.client.c_str(), o.tls_dir.empty() ? "off" : "mutual");
  for (int n : o.conns) {
    if (o.client == "pool") {
      run_pool(server.port(), n, o);
    } else {
      run_raw(server.port(), n, o);
    }
  }
  server.stop();
  guard.reset();
  server_ioc.stop();
  for (auto& t : threads) t.join();
  return 0;
}
