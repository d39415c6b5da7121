// Load generator for a controller group (issue 3's figures): shards created
// (one per request) per second at several connection counts with p50/p99
// latency, linearizable GET /v1/shards/{id} per second, and leader failover
// time (SIGKILL of the leader to the first write acknowledged by a survivor).
//
//   cluster_bench --bin build/bin [--dir /tmp/tenure-bench] [--seconds 5]
//                 [--connections 1,16,64] [--read-connections 64] [--failover-rounds 5]
//
// It starts its own 3-member group on 127.0.0.1 (fsync on, default timeouts)
// and drives it with keep-alive HTTP/1.1 clients on one thread.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "bench/bench_cluster.h"
#include "net/http_client.h"
#include "net/sync_http_client.h"

namespace {

using namespace tenure::bench;

struct Args {
  std::string bin = "build/bin";
  std::string dir = "/tmp/tenure-bench";
  int seconds = 5;
  std::vector<int> connections = {1, 16, 64};
  int read_connections = 64;
  int failover_rounds = 5;
};

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t end = s.find(',', pos);
    out.push_back(std::stoi(s.substr(pos, end - pos)));
    if (end == std::string::npos) break;
    pos = end + 1;
  }
  return out;
}


double percentile(std::vector<double>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

struct LoadResult {
  uint64_t ok = 0, failed = 0;
  double seconds = 0;
  std::vector<double> latency_ms;
};

/// Keeps `connections` requests in flight against `address` for `seconds`.
LoadResult run_load(const std::string& address, int connections, int seconds,
                    const std::function<net::ClientRequest(uint64_t)>& make, int expect_status) {
  boost::asio::io_context io;
  net::ClientOptions opt;
  opt.max_connections_per_host = static_cast<size_t>(connections);
  net::HttpClient client(io, opt);
  LoadResult res;
  auto start = Clock::now();
  auto end = start + std::chrono::seconds(seconds);
  uint64_t seq = 0;
  std::function<void()> issue = [&] {
    if (Clock::now() >= end) return;
    auto t0 = Clock::now();
    client.request(address, make(seq++), [&, t0](net::ClientResult r) {
      if (r.ok() && r.value().status == expect_status) {
        ++res.ok;
        res.latency_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      } else {
        ++res.failed;
      }
      issue();
    });
  };
  for (int i = 0; i < connections; ++i) issue();
  io.run();
  res.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return res;
}

net::ClientRequest create_request(const std::string& prefix, uint64_t seq) {
  net::ClientRequest r;
  r.method = "POST";
  r.target = "/v1/shards";
  r.body = "{\"ids\":[\"" + prefix + std::to_string(seq) + "\"]}";
  r.timeout_ms = 10000;
  return r;
}

/// CPU seconds (user + system) the controllers have used so far.
double controllers_cpu(Cluster& c) {
  double total = 0;
  long ticks = sysconf(_SC_CLK_TCK);
  for (auto& m : c.members()) {
    if (m.pid <= 0) continue;
    std::ifstream f("/proc/" + std::to_string(m.pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    // Fields after the ")" of the command name: utime and stime are the 12th and 13th.
    std::istringstream in(stat.substr(stat.rfind(')') + 2));
    std::string field;
    double utime = 0, stime = 0;
    for (int i = 1; i <= 13 && in >> field; ++i) {
      if (i == 12) utime = std::stod(field);
      if (i == 13) stime = std::stod(field);
    }
    total += (utime + stime) / static_cast<double>(ticks);
  }
  return total;
}

void bench_writes(Cluster& c, const Args& a) {
  std::string leader = c.leader();
  for (int conns : a.connections) {
    std::string prefix = "w" + std::to_string(conns) + "-";
    double cpu0 = controllers_cpu(c);
    auto r = run_load(leader, conns, a.seconds, [&](uint64_t s) { return create_request(prefix, s); }, 201);
    double cpu = controllers_cpu(c) - cpu0;
    std::printf("writes  connections=%-3d  %8.0f req/s  p50=%.2f ms  p99=%.2f ms  ok=%llu failed=%llu  "
                "controllers' CPU per write=%.0f us\n",
                conns, static_cast<double>(r.ok) / r.seconds, percentile(r.latency_ms, 0.5),
                percentile(r.latency_ms, 0.99), static_cast<unsigned long long>(r.ok),
                static_cast<unsigned long long>(r.failed), r.ok ? 1e6 * cpu / static_cast<double>(r.ok) : 0);
    std::fflush(stdout);
  }
}

void bench_reads(Cluster& c, const Args& a) {
  std::string leader = c.leader();
  net::SyncHttpClient sync;
  for (int i = 0; i < 100; ++i) sync.call(leader, create_request("r-", static_cast<uint64_t>(i)));
  auto r = run_load(leader, a.read_connections, a.seconds,
                    [](uint64_t s) {
                      net::ClientRequest q;
                      q.target = "/v1/shards/r-" + std::to_string(s % 100);
                      return q;
                    },
                    200);
  std::printf("reads   connections=%-3d  %8.0f req/s  p50=%.2f ms  p99=%.2f ms  (linearizable GET /v1/shards/{id})\n",
              a.read_connections, static_cast<double>(r.ok) / r.seconds, percentile(r.latency_ms, 0.5),
              percentile(r.latency_ms, 0.99));
  std::fflush(stdout);
}

void bench_failover(Cluster& c, const Args& a) {
  net::SyncHttpClient sync;
  std::vector<double> times;
  for (int round = 0; round < a.failover_rounds; ++round) {
    std::string leader = c.leader();
    Member* victim = nullptr;
    for (auto& m : c.members()) victim = m.address == leader ? &m : victim;
    if (!victim) break;
    auto t0 = Clock::now();
    c.kill_member(*victim, SIGKILL);
    // Write through survivors until one acknowledges (any member forwards to the leader).
    double ms = -1;
    for (uint64_t attempt = 0; ms < 0 && Clock::now() - t0 < std::chrono::seconds(30); ++attempt) {
      for (auto& m : c.members()) {
        if (m.pid <= 0) continue;
        auto req = create_request("f" + std::to_string(round) + "-", attempt);
        req.timeout_ms = 300;
        auto r = sync.call(m.address, req);
        if (r.ok() && r.value().status == 201) {
          ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
          break;
        }
      }
    }
    times.push_back(ms);
    std::printf("failover round %d: %.0f ms\n", round + 1, ms);
    std::fflush(stdout);
    c.start(*victim);
    // Let it catch up before the next round.
    std::this_thread::sleep_for(std::chrono::seconds(2));
  }
  double sum = 0;
  for (double t : times) sum += t;
  std::printf("failover mean=%.0f ms max=%.0f ms over %zu rounds\n", times.empty() ? 0 : sum / static_cast<double>(times.size()),
              times.empty() ? 0 : *std::max_element(times.begin(), times.end()), times.size());
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    auto val = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (f == "--bin") a.bin = val();
    else if (f == "--dir") a.dir = val();
    else if (f == "--seconds") a.seconds = std::stoi(val());
    else if (f == "--connections") a.connections = parse_list(val());
    else if (f == "--read-connections") a.read_connections = std::stoi(val());
    else if (f == "--failover-rounds") a.failover_rounds = std::stoi(val());
    else {
      std::fprintf(stderr, "cluster_bench: unknown flag %s\n", f.c_str());
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  Cluster c(Cluster::Args{a.bin, a.dir, "", 17000});
  if (c.leader().empty()) {
    std::fprintf(stderr, "cluster_bench: no leader; see %s/*.log\n", a.dir.c_str());
    return 1;
  }
  bench_writes(c, a);
  if (a.read_connections > 0) bench_reads(c, a);
  if (a.failover_rounds > 0) bench_failover(c, a);
  return 0;
}
