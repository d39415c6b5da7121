// Controller memory as shards move (issue 11 §3: it "must stay there after
// every shard has moved 32 times"), on real processes: a 3-member group on
// 127.0.0.1 with fsync on, two halves of W workers and N shards. Each round
// one half stops heartbeating; once its leases run out every shard it held
// is failed over to the other half (one history record each), and the half
// registers again. So every round moves every shard once. After each round
// it prints each member's VmRSS and the size of its history.db.
//
//   history_bench --bin build/bin [--dir /tmp/tenure-history] [--shards 200000] [--workers 100]
//                 [--rounds 32] [--lease-ms 2000]
//
// A worker that registers again is alive and empty; placement may start a
// handoff towards it (one at a time: placement.max_concurrent_moves 1),
// which completes when its source's drain times out: a few extra moves.
#include <atomic>
#include <cstdio>
#include <set>

#include "bench/bench_cluster.h"

namespace {

using namespace tenure::bench;

struct Args {
  std::string bin = "build/bin";
  std::string dir = "/tmp/tenure-history";
  long shards = 200000;
  int workers = 100;
  int rounds = 32;
  int lease_ms = 2000;
};

std::string worker_id(int w) { return "w" + std::to_string(w); }

/// {worker: shards it owns} and {worker: state}, from GET /v1/workers (paged).
bool fleet(net::SyncHttpClient& http, const std::string& leader, std::map<std::string, long>& shards,
           std::map<std::string, std::string>& state) {
  std::string token;
  do {
    net::ClientRequest r;
    r.target = "/v1/workers?limit=1000" + (token.empty() ? std::string() : "&continue=" + token);
    auto res = http.call(leader, r);
    if (!res.ok() || res.value().status != 200) return false;
    auto j = nlohmann::json::parse(res.value().body, nullptr, false);
    if (!j.is_object()) return false;
    for (const auto& w : j["workers"]) {
      shards[w["id"].get<std::string>()] = w["shards"].get<long>();
      state[w["id"].get<std::string>()] = w["state"].get<std::string>();
    }
    token = j["continue"].is_string() ? j["continue"].get<std::string>() : "";
  } while (!token.empty());
  return true;
}

long file_kib(const std::string& path) {
  std::error_code ec;
  auto n = fs::file_size(path, ec);
  auto wal = fs::file_size(path + "-wal", ec);
  return static_cast<long>(((ec ? 0 : wal) + n) / 1024);
}

int run(const Args& a) {
  Cluster c({a.bin, a.dir,
             "worker_lease_ms: " + std::to_string(a.lease_ms) + "\nplacement: {max_concurrent_moves: 1}\n", 17500});
  std::string leader = c.leader();
  if (leader.empty()) return std::fprintf(stderr, "no leader\n"), 1;
  if (!c.all_running()) return 1;
  net::SyncHttpClient http;
  auto register_worker = [&](int w) {
    std::string body = R"({"address":"127.0.0.1:)" + std::to_string(20000 + w) + R"("})";
    return post(http, leader, "/v1/workers/" + worker_id(w) + "/register", body, 200);
  };
  for (int w = 1; w <= a.workers; ++w) {
    if (!register_worker(w)) return 1;
  }
  // The half that heartbeats: 0 (workers 1..W/2) or 1 (the rest).
  std::atomic<int> alive_half{-1};
  std::atomic<bool> done{false};
  std::thread beats([&] {
    net::SyncHttpClient hb;
    while (!done) {
      auto next = Clock::now() + std::chrono::milliseconds(a.lease_ms / 4);
      for (int w = 1; w <= a.workers; ++w) {
        int half = w <= a.workers / 2 ? 0 : 1;
        if (alive_half >= 0 && half != alive_half) continue;
        net::ClientRequest r;
        r.method = "POST";
        r.target = "/v1/workers/" + worker_id(w) + "/heartbeat";
        r.body = "{}";
        (void)hb.call(leader, r);
      }
      std::this_thread::sleep_until(next);  // the heartbeat period, not a wait for a state
    }
  });
  for (long first = 0; first < a.shards; first += 5000) {
    std::string body = R"({"ids":[)";
    for (long i = first; i < std::min(a.shards, first + 5000); ++i) {
      body += (i > first ? ",\"shard-" : "\"shard-") + std::to_string(i) + "\"";
    }
    body += "]}";
    if (!post(http, leader, "/v1/shards", std::move(body), 201)) return done = true, beats.join(), 1;
  }
  auto report = [&](const char* what, double secs) {
    std::printf("%-10s %6.1f s ", what, secs);
    for (auto& m : c.members()) {
      std::printf(" %s%s %4.0f MiB (history.db %5.1f MiB)", m.id.c_str(), m.address == leader ? "*" : "",
                  static_cast<double>(status_kb(m.pid, "VmRSS")) / 1024.0,
                  static_cast<double>(file_kib(a.dir + "/" + m.id + "/history.db")) / 1024.0);
    }
    std::printf("\n");
    std::fflush(stdout);
  };
  // Every shard owned by a worker of `half` (-1: by anyone): a round is over.
  auto settled = [&](int half) {
    std::map<std::string, long> shards;
    std::map<std::string, std::string> state;
    if (!fleet(http, leader, shards, state)) return false;
    long held = 0;
    for (int w = 1; w <= a.workers; ++w) {
      if (half < 0 || (w <= a.workers / 2 ? 0 : 1) == half) held += shards[worker_id(w)];
    }
    return held == a.shards;
  };
  auto t0 = Clock::now();
  for (auto placed_by = Clock::now() + std::chrono::minutes(5); !settled(-1);) {
    if (Clock::now() > placed_by) return std::fprintf(stderr, "not placed within 5 minutes\n"), done = true, beats.join(), 1;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // poll interval, under the deadline above
  }
  report("placed", std::chrono::duration<double>(Clock::now() - t0).count());
  int rc = 0;
  for (int round = 1; round <= a.rounds && rc == 0; ++round) {
    int survivors = round % 2;  // round 1: half 0 dies, half 1 takes everything
    alive_half = survivors;
    auto start = Clock::now();
    auto deadline = start + std::chrono::minutes(5);
    while (!settled(survivors)) {
      if (Clock::now() > deadline) {
        std::fprintf(stderr, "round %d: not every shard moved within 5 minutes\n", round);
        rc = 1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    // The dead half comes back (empty), so that it can take everything next round.
    for (int w = 1; w <= a.workers && rc == 0; ++w) {
      if ((w <= a.workers / 2 ? 0 : 1) == survivors) continue;
      while (!register_worker(w)) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    alive_half = -1;
    char label[32];
    std::snprintf(label, sizeof label, "round %d", round);
    report(label, std::chrono::duration<double>(Clock::now() - start).count());
  }
  done = true;
  beats.join();
  // How often each shard really moved: its epoch rose by one per change of owner.
  uint64_t epochs = 0, shards = 0;
  std::string token;
  do {
    net::ClientRequest r;
    r.target = "/v1/shards?limit=10000" + (token.empty() ? std::string() : "&continue=" + token);
    auto res = http.call(leader, r);
    if (!res.ok() || res.value().status != 200) break;
    auto j = nlohmann::json::parse(res.value().body, nullptr, false);
    if (!j.is_object()) break;
    for (const auto& sh : j["shards"]) {
      epochs += sh["epoch"].get<uint64_t>();
      ++shards;
    }
    token = j["continue"].is_string() ? j["continue"].get<std::string>() : "";
  } while (!token.empty());
  std::printf("%lu shards, mean epoch %.1f (changes of owner per shard)\n", static_cast<unsigned long>(shards),
              shards ? static_cast<double>(epochs) / static_cast<double>(shards) : 0.0);
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  bool ok = parse_flags("history_bench", argc, argv, {
      {"--bin", [&](const std::string& v) { a.bin = v; }},
      {"--dir", [&](const std::string& v) { a.dir = v; }},
      {"--shards", [&](const std::string& v) { a.shards = std::stol(v); }},
      {"--workers", [&](const std::string& v) { a.workers = std::stoi(v); }},
      {"--rounds", [&](const std::string& v) { a.rounds = std::stoi(v); }},
      {"--lease-ms", [&](const std::string& v) { a.lease_ms = std::stoi(v); }},
  });
  return ok ? run(a) : 2;
}
