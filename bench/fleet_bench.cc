// The ownership lifecycle at scale (issue 4's figures), on real processes:
// 3 controllers and 10 agents on 127.0.0.1, 10,000 shards.
//   - grant propagation: from a grant's proposal at the leader (at_ms, just
//     before its commit) to its arrival at the agent, p50 and p99, read from
//     the agents' tenure_agent_grant_delay_seconds histograms;
//   - failover: SIGKILL of the agent holding the most shards, then the time
//     from the leader declaring its lease expired (its log line) until every
//     one of its shards is granted to and received by a live agent (the
//     agents' log lines of installed grants; polled only every 500 ms, so
//     the benchmark does not compete with what it measures).
//
//   fleet_bench --bin build/bin [--dir /tmp/tenure-fleet] [--agents 10] [--shards 10000] [--rounds 3]
#include <algorithm>
#include <cmath>
#include <ctime>
#include <map>
#include <set>

#include "bench/bench_cluster.h"

namespace {

using namespace tenure::bench;

struct Agent {
  std::string id;
  std::string address;
  std::string config;
  pid_t pid = -1;
};

net::SyncHttpClient& http() {
  static net::SyncHttpClient client;
  return client;
}

nlohmann::json get_json(const std::string& address, const std::string& target, int timeout_ms = 2000) {
  net::ClientRequest r;
  r.target = target;
  r.timeout_ms = static_cast<uint32_t>(timeout_ms);
  auto res = http().call(address, r);
  if (!res.ok() || res.value().status != 200) return nullptr;
  auto j = nlohmann::json::parse(res.value().body, nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

/// (shard -> epoch) held by an agent, per its own /v1/grants.
std::map<std::string, uint64_t> grants_of(const Agent& a) {
  std::map<std::string, uint64_t> out;
  auto j = get_json(a.address, "/v1/grants", 1000);
  if (!j.is_object() || !j["grants"].is_array()) return out;
  for (const auto& g : j["grants"]) out[g["shard"].get<std::string>()] = g["epoch"].get<uint64_t>();
  return out;
}

/// Cumulative bucket counts of the grant delay histogram, summed over agents.
std::map<double, double> delay_buckets(const std::vector<Agent>& agents) {
  std::map<double, double> b;
  for (const auto& a : agents) {
    if (a.pid <= 0) continue;
    net::ClientRequest r;
    r.target = "/metrics";
    auto res = http().call(a.address, r);
    if (!res.ok()) continue;
    std::istringstream in(res.value().body);
    std::string line;
    const std::string prefix = "tenure_agent_grant_delay_seconds_bucket{le=\"";
    while (std::getline(in, line)) {
      if (line.rfind(prefix, 0) != 0) continue;
      std::string le = line.substr(prefix.size(), line.find('"', prefix.size()) - prefix.size());
      double bound = le == "+Inf" ? INFINITY : std::stod(le);
      b[bound] += std::stod(line.substr(line.rfind(' ') + 1));
    }
  }
  return b;
}

/// Quantile from cumulative buckets (linear within a bucket, as Prometheus).
double quantile(const std::map<double, double>& after, const std::map<double, double>& before, double q) {
  std::vector<std::pair<double, double>> cum;
  for (const auto& [le, n] : after) cum.push_back({le, n - (before.count(le) ? before.at(le) : 0)});
  if (cum.empty() || cum.back().second <= 0) return 0;
  double rank = q * cum.back().second, lower = 0, prev = 0;
  for (const auto& [le, n] : cum) {
    if (n >= rank) {
      if (std::isinf(le)) return lower;
      return lower + (le - lower) * (n - prev == 0 ? 0 : (rank - prev) / (n - prev));
    }
    lower = le;
    prev = n;
  }
  return lower;
}

/// Wall-clock ms of a log line ("2026-...T12:34:56.789Z ..."), -1 if none.
int64_t line_ms(const std::string& line) {
  std::tm tm{};
  int ms = 0;
  if (sscanf(line.c_str(), "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
             &tm.tm_sec, &ms) != 7) {
    return -1;
  }
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  return static_cast<int64_t>(timegm(&tm)) * 1000 + ms;
}

/// Wall-clock ms of the last "event=lease_expired worker=W" line in a log.
int64_t lease_expired_at(const std::string& log, const std::string& worker) {
  std::ifstream f(log);
  std::string line;
  int64_t at = -1;
  while (std::getline(f, line)) {
    if (line.find("event=lease_expired worker=" + worker + " ") == std::string::npos) continue;
    if (int64_t ms = line_ms(line); ms >= 0) at = ms;
  }
  return at;
}

/// From an agent's log: the wall-clock ms at which the grants it installed
/// from `since_ms` on (its " granted=N" lines: watch batches, re-lists)
/// first add up to `need`; -1 if they never do.
int64_t received_at(const std::string& log, int64_t since_ms, size_t need) {
  std::ifstream f(log);
  std::string line;
  size_t got = 0;
  while (std::getline(f, line)) {
    int64_t ms = line_ms(line);
    size_t pos = line.find(" granted=");
    if (ms < since_ms || pos == std::string::npos) continue;
    got += std::stoul(line.substr(pos + 9));
    if (got >= need) return ms;
  }
  return need == 0 ? since_ms : -1;
}

bool wait_for(const std::function<bool()>& pred, int timeout_ms, int interval_ms = 10) {
  auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(interval_ms));
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::string bin = "build/bin", dir = "/tmp/tenure-fleet";
  int agents_n = 10, shards = 10000, rounds = 3;
  for (int i = 1; i < argc; ++i) {
    std::string f = argv[i];
    std::string v = i + 1 < argc ? argv[i + 1] : "";
    if (f == "--bin") bin = v;
    else if (f == "--dir") dir = v;
    else if (f == "--agents") agents_n = std::stoi(v);
    else if (f == "--shards") shards = std::stoi(v);
    else if (f == "--rounds") rounds = std::stoi(v);
    else {
      std::fprintf(stderr, "fleet_bench: unknown flag %s\n", f.c_str());
      return 2;
    }
    ++i;
  }
  signal(SIGPIPE, SIG_IGN);
  Cluster cluster(Cluster::Args{bin, dir, "", 18000});
  std::string leader = cluster.leader();
  if (leader.empty()) return std::fprintf(stderr, "no leader\n"), 1;
  std::vector<Agent> agents;
  for (int i = 1; i <= agents_n; ++i) {
    Agent a;
    a.id = "w" + std::to_string(i);
    a.address = "127.0.0.1:" + std::to_string(18100 + i);
    a.config = dir + "/" + a.id + ".yaml";
    std::ofstream(a.config) << "worker_id: " << a.id << "\nlisten: " << a.address
                            << "\ncontrollers: [127.0.0.1:18001, 127.0.0.1:18002, 127.0.0.1:18003]\ndata_dir: " << dir
                            << "/" << a.id << "\nzone: z" << (i % 3) << "\n";
    a.pid = spawn(bin + "/tenure-agent", a.config, dir + "/" + a.id + ".log");
    agents.push_back(a);
  }
  auto held_total = [&] {
    size_t n = 0;
    for (const auto& a : agents) n += a.pid > 0 ? grants_of(a).size() : 0;
    return n;
  };
  // Let every agent register before the shards exist, so placement is one burst.
  wait_for([&] { auto j = get_json(leader, "/v1/workers"); return j.is_object() && j["workers"].size() == agents.size(); }, 30000);
  auto before = delay_buckets(agents);
  net::ClientRequest create;
  create.method = "POST";
  create.target = "/v1/shards";
  create.body = "{\"count\": " + std::to_string(shards) + ", \"prefix\": \"s-\"}";
  create.timeout_ms = 30000;
  auto t0 = Clock::now();
  http().call(leader, create);
  if (!wait_for([&] { return held_total() == static_cast<size_t>(shards); }, 60000)) {
    return std::fprintf(stderr, "shards never all held; see %s\n", dir.c_str()), 1;
  }
  double placed_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  auto after = delay_buckets(agents);
  std::printf("placement: %d shards on %d agents held %.0f ms after the create call\n", shards, agents_n, placed_ms);
  std::printf("grant propagation (proposal -> agent), %d grants: p50=%.2f ms p99=%.2f ms\n", shards,
              1000 * quantile(after, before, 0.5), 1000 * quantile(after, before, 0.99));
  std::fflush(stdout);

  // Steady state: single grants, one manual move at a time.
  {
    auto before_mv = delay_buckets(agents);
    int moved = 0;
    for (int i = 0; i < 200; ++i) {
      std::string shard = "s-" + std::to_string(i);
      auto j = get_json(leader, "/v1/shards/" + shard);
      if (!j.is_object() || !j["worker"].is_string()) continue;
      std::string to = agents[(std::stoi(j["worker"].get<std::string>().substr(1)) % agents_n)].id;
      net::ClientRequest mv;
      mv.method = "POST";
      mv.target = "/v1/shards/" + shard + "/move";
      mv.body = "{\"to\": \"" + to + "\"}";
      auto r = http().call(leader, mv);
      if (!r.ok() || r.value().status != 202) continue;
      wait_for([&] {
        auto s2 = get_json(leader, "/v1/shards/" + shard);
        return s2.is_object() && s2["state"] == "active" && s2["worker"] == to;
      }, 10000);
      ++moved;
    }
    auto after_mv = delay_buckets(agents);
    std::printf("grant propagation (proposal -> agent), %d single manual moves: p50=%.2f ms p99=%.2f ms\n", moved,
                1000 * quantile(after_mv, before_mv, 0.5), 1000 * quantile(after_mv, before_mv, 0.99));
    std::fflush(stdout);
  }

  for (int round = 0; round < rounds; ++round) {
    std::map<std::string, std::map<std::string, uint64_t>> held;
    for (const auto& a : agents) {
      if (a.pid > 0) held[a.id] = grants_of(a);
    }
    Agent* victim = nullptr;
    for (auto& a : agents) {
      if (a.pid > 0 && (!victim || held[a.id].size() > held[victim->id].size())) victim = &a;
    }
    auto lost = held[victim->id];
    pid_t victim_pid = victim->pid;
    victim->pid = -1;  // leave it out of the histograms on both sides
    auto before_fo = delay_buckets(agents);
    stop(victim_pid, SIGKILL);
    auto all_moved = [&] {
      std::map<std::string, uint64_t> now;
      for (const auto& a : agents) {
        if (a.pid <= 0) continue;
        for (const auto& [s, e] : grants_of(a)) now[s] = e;
      }
      for (const auto& [s, e] : lost) {
        auto it = now.find(s);
        if (it == now.end() || it->second <= e) return false;
      }
      return true;
    };
    if (!wait_for(all_moved, 30000, 500)) return std::fprintf(stderr, "failover incomplete\n"), 1;
    int64_t expired = -1;
    for (auto& m : cluster.members()) {
      expired = std::max(expired, lease_expired_at(dir + "/" + m.id + ".log", victim->id));
    }
    // When each new owner had installed its share, from its own log: the
    // polling above only says that it happened (it is slow on purpose, so as
    // not to compete with the failover for the two cores).
    int64_t done = expired;
    for (const auto& a : agents) {
      if (a.pid <= 0) continue;
      size_t share = 0;
      for (const auto& [s, e] : grants_of(a)) share += lost.count(s) && lost.at(s) < e;
      done = std::max(done, received_at(dir + "/" + a.id + ".log", expired, share));
    }
    auto after_fo = delay_buckets(agents);
    std::printf("failover round %d: %s held %zu shards; lease expiry declared -> all received by new owners: %lld ms "
                "(grant p50=%.2f ms p99=%.2f ms)\n",
                round + 1, victim->id.c_str(), lost.size(), static_cast<long long>(done - expired),
                1000 * quantile(after_fo, before_fo, 0.5), 1000 * quantile(after_fo, before_fo, 0.99));
    std::fflush(stdout);
    // Bring it back (it re-registers; placement rebalances) and wait for calm.
    victim->pid = spawn(bin + "/tenure-agent", victim->config, dir + "/" + victim->id + ".log");
    wait_for([&] { return held_total() == static_cast<size_t>(shards) && !grants_of(*victim).empty(); }, 60000);
    wait_for([&] { auto j = get_json(leader, "/v1/rebalance"); return j.is_object() && j["moves"].empty(); }, 60000);
  }
  for (auto& a : agents) stop(a.pid, SIGKILL);
  return 0;
}
