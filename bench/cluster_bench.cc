// Load generator for a controller group (issue 3's figures): shards created
// (one per request) per second at several connection counts with p50/p99
// latency, linearizable GET /v1/shards/{id} per second, and leader failover
// time (SIGKILL of the leader to the first write acknowledged by a survivor).
//
//   cluster_bench --bin build/bin [--dir /tmp/tenure-bench] [--seconds 5]
//                 [--connections 1,16,64] [--read-connections 64] [--failover-rounds 5]
//                 [--client-threads 1]
//
// It starts its own 3-member group on 127.0.0.1 (fsync on, default timeouts)
// and drives it with keep-alive HTTP/1.1 clients (one request per connection
// at a time, one shard per POST) on --client-threads threads, each with its
// own connection pool. Besides the controllers' CPU per operation it prints
// the load generator's own, so a saturated client shows.
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
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
  int client_threads = 1;
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

/// Keeps `connections` requests in flight against `address` for `seconds`,
/// on one io_context thread. The run's length is counted to the last
/// completion: the client's idle pooled connections keep io.run() going for
/// seconds after the last request, and that time must not dilute the rate.
LoadResult run_load_thread(const std::string& address, int connections, int seconds,
                           const std::function<net::ClientRequest(uint64_t)>& make, int expect_status,
                           uint64_t seq_base, Clock::time_point start) {
  boost::asio::io_context io;
  net::ClientOptions opt;
  opt.max_connections_per_host = static_cast<size_t>(connections);
  opt.max_idle_per_host = static_cast<size_t>(connections);
  net::HttpClient client(io, opt);
  LoadResult res;
  res.latency_ms.reserve(static_cast<size_t>(seconds) * 20000);
  auto end = start + std::chrono::seconds(seconds);
  uint64_t seq = seq_base;
  int outstanding = 0;
  Clock::time_point last_done = start;
  std::function<void()> issue = [&] {
    if (Clock::now() >= end) {
      if (outstanding == 0) io.stop();
      return;
    }
    auto t0 = Clock::now();
    ++outstanding;
    client.request(address, make(seq++), [&, t0](net::ClientResult r) {
      --outstanding;
      last_done = Clock::now();
      if (r.ok() && r.value().status == expect_status) {
        ++res.ok;
        res.latency_ms.push_back(std::chrono::duration<double, std::milli>(last_done - t0).count());
      } else {
        ++res.failed;
      }
      issue();
    });
  };
  for (int i = 0; i < connections; ++i) issue();
  io.run();
  res.seconds = std::chrono::duration<double>(last_done - start).count();
  return res;
}

/// Splits `connections` over `threads` client threads (each its own
/// io_context and connection pool) and merges their results.
LoadResult run_load(const std::string& address, int connections, int seconds, int threads,
                    const std::function<net::ClientRequest(uint64_t)>& make, int expect_status) {
  threads = std::max(1, std::min(threads, connections));
  std::vector<LoadResult> parts(static_cast<size_t>(threads));
  std::vector<std::thread> workers;
  auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    int conns = connections / threads + (t < connections % threads ? 1 : 0);
    workers.emplace_back([&, t, conns] {
      parts[static_cast<size_t>(t)] = run_load_thread(address, conns, seconds, make, expect_status,
                                                      static_cast<uint64_t>(t) << 40, start);
    });
  }
  for (auto& w : workers) w.join();
  LoadResult res;
  for (auto& p : parts) {
    res.ok += p.ok;
    res.failed += p.failed;
    res.seconds = std::max(res.seconds, p.seconds);
    res.latency_ms.insert(res.latency_ms.end(), p.latency_ms.begin(), p.latency_ms.end());
  }
  return res;
}

/// CPU seconds (user + system) this process (the load generator) has used so far.
double self_cpu() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
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
    double cpu0 = controllers_cpu(c), self0 = self_cpu();
    auto r = run_load(leader, conns, a.seconds, a.client_threads,
                      [&](uint64_t s) { return create_request(prefix, s); }, 201);
    double cpu = controllers_cpu(c) - cpu0, self = self_cpu() - self0;
    double n = r.ok ? static_cast<double>(r.ok) : 1;
    std::printf("writes  connections=%-3d  %8.0f req/s  p50=%.2f ms  p99=%.2f ms  ok=%llu failed=%llu  "
                "controllers' CPU per write=%.0f us  load generator's=%.0f us\n",
                conns, static_cast<double>(r.ok) / r.seconds, percentile(r.latency_ms, 0.5),
                percentile(r.latency_ms, 0.99), static_cast<unsigned long long>(r.ok),
                static_cast<unsigned long long>(r.failed), 1e6 * cpu / n, 1e6 * self / n);
    std::fflush(stdout);
  }
}

void bench_reads(Cluster& c, const Args& a) {
  std::string leader = c.leader();
  net::SyncHttpClient sync;
  for (int i = 0; i < 100; ++i) sync.call(leader, create_request("r-", static_cast<uint64_t>(i)));
  double cpu0 = controllers_cpu(c), self0 = self_cpu();
  auto r = run_load(leader, a.read_connections, a.seconds, a.client_threads,
                    [](uint64_t s) {
                      net::ClientRequest q;
                      q.target = "/v1/shards/r-" + std::to_string(s % 100);
                      return q;
                    },
                    200);
  double cpu = controllers_cpu(c) - cpu0, self = self_cpu() - self0;
  double n = r.ok ? static_cast<double>(r.ok) : 1;
  std::printf("reads   connections=%-3d  %8.0f req/s  p50=%.2f ms  p99=%.2f ms  failed=%llu  "
              "controllers' CPU per read=%.0f us  load generator's=%.0f us  (linearizable GET /v1/shards/{id})\n",
              a.read_connections, static_cast<double>(r.ok) / r.seconds, percentile(r.latency_ms, 0.5),
              percentile(r.latency_ms, 0.99), static_cast<unsigned long long>(r.failed), 1e6 * cpu / n,
              1e6 * self / n);
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
    // The next round starts once it has caught up.
    if (!c.wait_caught_up(*victim)) std::fprintf(stderr, "%s did not catch up within 30 s\n", victim->id.c_str());
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
    else if (f == "--client-threads") a.client_threads = std::max(1, std::stoi(val()));
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
