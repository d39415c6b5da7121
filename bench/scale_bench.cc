// Controller memory at scale (issue 4's figure), on real processes: a
// 3-member group on 127.0.0.1 with fsync on, W workers registered, N shards
// created (batches of ids per request) and placed, then each controller's
// resident memory (VmRSS) and its peak (VmHWM) read from /proc. Snapshots are
// taken as configured (every 10,000 entries by default), so the peak covers
// serializing the whole state too.
//
//   scale_bench --bin build/bin [--dir /tmp/tenure-scale] [--shards 1000000] [--workers 1000] [--batch 5000]
//               [--snapshot-every 10000] [--settle-s 0]
//
// --settle-s N reads the figures again after N idle seconds: the allocator
// (jemalloc) returns freed pages only after its decay time (10 s), so the
// first reading right after placement still holds the placement passes'
// temporary memory.
//
// Workers are registered through the agents' endpoint and never heartbeat:
// the group runs with a one-hour worker lease so that none is declared dead
// while the figure is taken.
#include <cstdio>
#include <fstream>
#include <sstream>

#include "bench/bench_cluster.h"

namespace {

using namespace tenure::bench;

struct Args {
  std::string bin = "build/bin";
  std::string dir = "/tmp/tenure-scale";
  long shards = 1000000;
  int workers = 1000;
  int batch = 5000;
  long snapshot_every = 10000;  ///< raft.snapshot_threshold_entries
  int settle_s = 0;             ///< read again after this many idle seconds
};

void print_memory(Cluster& c, const std::string& leader, const char* when) {
  for (auto& m : c.members()) {
    std::printf("%s%s %s VmRSS=%.0f MiB  VmHWM (peak)=%.0f MiB\n", m.id.c_str(), m.address == leader ? " (leader)" : "",
                when, static_cast<double>(status_kb(m.pid, "VmRSS")) / 1024.0,
                static_cast<double>(status_kb(m.pid, "VmHWM")) / 1024.0);
  }
}


/// tenure_shards{state="active"} from a member's /metrics, -1 if unreadable.
long active_shards(net::SyncHttpClient& http, const std::string& address) {
  net::ClientRequest r;
  r.target = "/metrics";
  auto res = http.call(address, r);
  if (!res.ok() || res.value().status != 200) return -1;
  std::istringstream in(res.value().body);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("tenure_shards{state=\"active\"}", 0) == 0) return std::stol(line.substr(line.rfind(' ') + 1));
  }
  return -1;
}


double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

int run(const Args& a) {
  Cluster c({a.bin, a.dir,
             "worker_lease_ms: 3600000\nraft: {snapshot_threshold_entries: " + std::to_string(a.snapshot_every) + "}\n",
             17300});
  std::string leader = c.leader();
  if (leader.empty()) return std::fprintf(stderr, "no leader\n"), 1;
  if (!c.all_running()) return 1;
  net::SyncHttpClient http;
  for (int w = 1; w <= a.workers; ++w) {
    std::string body = R"({"address":"127.0.0.1:)" + std::to_string(20000 + w) + R"(","zone":"z)" +
                       std::to_string(w % 3) + R"("})";
    if (!post(http, leader, "/v1/workers/w" + std::to_string(w) + "/register", body, 200)) return 1;
  }
  auto t0 = Clock::now();
  for (long first = 0; first < a.shards; first += a.batch) {
    std::string body = R"({"ids":[)";
    for (long i = first; i < std::min(a.shards, first + a.batch); ++i) {
      body += (i > first ? ",\"shard-" : "\"shard-") + std::to_string(i) + "\"";
    }
    body += "]}";
    if (!post(http, leader, "/v1/shards", std::move(body), 201)) return 1;
  }
  double created_s = seconds_since(t0);
  auto deadline = Clock::now() + std::chrono::minutes(10);
  long active = 0;
  while (Clock::now() < deadline && (active = active_shards(http, leader)) < a.shards) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  double placed_s = seconds_since(t0);
  std::printf("shards=%ld workers=%d created in %.1f s (%.0f shards/s), all placed (%ld active) after %.1f s\n",
              a.shards, a.workers, created_s, static_cast<double>(a.shards) / created_s, active, placed_s);
  print_memory(c, leader, "");
  if (a.settle_s > 0) {
    std::this_thread::sleep_for(std::chrono::seconds(a.settle_s));  // idle on purpose: what stays resident
    print_memory(c, leader, ("after " + std::to_string(a.settle_s) + " s idle").c_str());
  }
  return active >= a.shards ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  bool ok = parse_flags("scale_bench", argc, argv, {
      {"--bin", [&](const std::string& v) { a.bin = v; }},
      {"--dir", [&](const std::string& v) { a.dir = v; }},
      {"--shards", [&](const std::string& v) { a.shards = std::stol(v); }},
      {"--workers", [&](const std::string& v) { a.workers = std::stoi(v); }},
      {"--batch", [&](const std::string& v) { a.batch = std::stoi(v); }},
      {"--snapshot-every", [&](const std::string& v) { a.snapshot_every = std::stol(v); }},
      {"--settle-s", [&](const std::string& v) { a.settle_s = std::stoi(v); }},
  });
  return ok ? run(a) : 2;
}
