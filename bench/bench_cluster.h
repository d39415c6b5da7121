#pragma once
// Real processes for the benchmarks: a controller group (and agents) on
// 127.0.0.1, started with fork/exec, stopped with signals.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/sync_http_client.h"

namespace tenure::bench {

namespace net = tenure::net;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

/// Starts `program --config config` with stderr to `log`; returns its pid.
inline pid_t spawn(const std::string& program, const std::string& config, const std::string& log) {
  pid_t pid = fork();
  if (pid == 0) {
    FILE* f = std::freopen(log.c_str(), "a", stderr);
    (void)f;
    execl(program.c_str(), program.c_str(), "--config", config.c_str(), nullptr);
    _exit(127);
  }
  return pid;
}

/// Sends `sig` and reaps the process.
inline void stop(pid_t& pid, int sig) {
  if (pid <= 0) return;
  ::kill(pid, sig);
  waitpid(pid, nullptr, 0);
  pid = -1;
}

struct Member {
  std::string id;
  std::string address;
  std::string config;
  pid_t pid = -1;
};

/// A 3-member controller group of real processes on 127.0.0.1, fsync on.
class Cluster {
 public:
  struct Args {
    std::string bin;
    std::string dir;
    std::string extra_config;  ///< appended to every member's YAML
    int base_port = 17000;
  };
  explicit Cluster(Args a) : args_(std::move(a)) {
    fs::remove_all(args_.dir);
    fs::create_directories(args_.dir);
    for (int i = 1; i <= 3; ++i) {
      Member m;
      m.id = "c" + std::to_string(i);
      m.address = "127.0.0.1:" + std::to_string(args_.base_port + i);
      m.config = args_.dir + "/" + m.id + ".yaml";
      members_.push_back(m);
    }
    for (auto& m : members_) {
      std::ofstream f(m.config);
      f << "node_id: " << m.id << "\ndata_dir: " << args_.dir << "/" << m.id << "\nlisten: " << m.address
        << "\npeers:\n";
      for (auto& p : members_) f << "  - {id: " << p.id << ", address: " << p.address << "}\n";
      f << args_.extra_config;
    }
    for (auto& m : members_) start(m);
  }
  ~Cluster() {
    for (auto& m : members_) kill_member(m, SIGKILL);
  }
  void start(Member& m) { m.pid = spawn(args_.bin + "/tenure-controller", m.config, args_.dir + "/" + m.id + ".log"); }
  void kill_member(Member& m, int sig) { stop(m.pid, sig); }
  /// The leader's address, polling every member until one names it.
  std::string leader(int timeout_ms = 20000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (Clock::now() < deadline) {
      for (auto& m : members_) {
        if (m.pid <= 0) continue;
        auto j = cluster_view(m.address);
        if (!j.is_object() || !j["leader_id"].is_string()) continue;
        for (auto& p : members_) {
          if (p.id == j["leader_id"].get<std::string>() && p.pid > 0) return p.address;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return "";
  }
  std::vector<Member>& members() { return members_; }
  /// Whether every started member is still running; names on stderr those
  /// that exited (one that could not bind its port, say: a group of two
  /// still elects a leader, and a bench would measure the wrong thing).
  bool all_running() {
    bool ok = true;
    for (auto& m : members_) {
      if (m.pid <= 0) continue;
      int status = 0;
      if (::waitpid(m.pid, &status, WNOHANG) == m.pid) {
        std::fprintf(stderr, "member %s exited (status %d): see %s/%s.log\n", m.id.c_str(), status,
                     args_.dir.c_str(), m.id.c_str());
        m.pid = -1;
        ok = false;
      }
    }
    return ok;
  }

  /// Polls until `m` has applied everything the leader had committed when
  /// this was called (a restarted member caught up); false on timeout.
  bool wait_caught_up(const Member& m, int timeout_ms = 30000) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    uint64_t target = 0;
    while (Clock::now() < deadline) {
      if (target == 0) {
        auto view = cluster_view(leader(timeout_ms));
        if (view.is_object()) target = view["commit_index"].get<uint64_t>();
      } else if (auto view = cluster_view(m.address);
                 view.is_object() && view["applied_index"].get<uint64_t>() >= target) {
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling interval
    }
    return false;
  }

 private:
  /// GET /v1/cluster at `address`, null when it does not answer 200.
  nlohmann::json cluster_view(const std::string& address) {
    if (address.empty()) return nullptr;
    net::ClientRequest r;
    r.target = "/v1/cluster";
    r.timeout_ms = 500;
    auto res = sync_.call(address, r);
    if (!res.ok() || res.value().status != 200) return nullptr;
    auto j = nlohmann::json::parse(res.value().body, nullptr, false);
    return j.is_discarded() ? nlohmann::json(nullptr) : j;
  }

  Args args_;
  std::vector<Member> members_;
  net::SyncHttpClient sync_;
};

/// A field of /proc/PID/status in KiB ("VmRSS", "VmHWM"), -1 if unreadable.
inline long status_kb(pid_t pid, const std::string& field) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

/// POSTs `body` and reports (on stderr) any answer but `expect`.
inline bool post(net::SyncHttpClient& http, const std::string& address, const std::string& target, std::string body,
                 int expect) {
  net::ClientRequest r;
  r.method = "POST";
  r.target = target;
  r.body = std::move(body);
  r.timeout_ms = 60000;
  auto res = http.call(address, r);
  if (res.ok() && res.value().status == expect) return true;
  std::fprintf(stderr, "POST %s: %s\n", target.c_str(), res.ok() ? res.value().body.c_str() : "transport error");
  return false;
}

/// Reads "--flag value" pairs with one setter per flag; false (and a line
/// on stderr) on an unknown flag, a flag without its value or a value its
/// setter refuses. --help lists the flags and exits: these programs start
/// clusters, so nothing may run on a mistyped or bare flag.
using FlagSetters = std::map<std::string, std::function<void(const std::string&)>>;
inline bool parse_flags(const char* program, int argc, char** argv, const FlagSetters& setters) {
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::printf("usage: %s [FLAG VALUE]...\nflags:", program);
      for (const auto& [name, setter] : setters) std::printf(" %s", name.c_str());
      std::printf("\n(the defaults and what each does: the Args struct at the top of its source)\n");
      std::exit(0);
    }
    auto it = setters.find(flag);
    if (it == setters.end()) return std::fprintf(stderr, "%s: unknown flag %s\n", program, argv[i]), false;
    if (i + 1 == argc) return std::fprintf(stderr, "%s: %s needs a value\n", program, argv[i]), false;
    try {
      it->second(argv[i + 1]);
    } catch (const std::exception&) {
      return std::fprintf(stderr, "%s: bad value for %s: %s\n", program, argv[i], argv[i + 1]), false;
    }
  }
  return true;
}

}  // namespace tenure::bench
