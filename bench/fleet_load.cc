// A fleet of W workers against one controller group (issue 11 §3), from one
// light process over real HTTP, not W agent processes: every worker
// registers, heartbeats every H ms (phases spread evenly over the interval)
// and holds a watch stream of its own (spread over the three members), over
// N shards created once every watch is open (heartbeat latency during the
// creation, until every grant arrived, is printed too). Then, while all of
// them go on:
//   - an aftermath window (--settle-seconds) right after the creation, and
//     a steady window after it, each: heartbeat latency p50/p99/max as this process sees
//     it (send to answer), heartbeats that failed, leases lost (409
//     worker_dead), each member's CPU (utime+stime from /proc over the
//     window) and memory (VmRSS, VmHWM);
//   - grant delivery: a new shard created at the leader, until its grant
//     event arrives on its worker's stream (creation's commit, placement's
//     next pass, its commit, the fan-out), R rounds;
//   - a dead worker: the worker with the most shards stops heartbeating;
//     from its last answered heartbeat's send until every one of its shards
//     was granted to another worker (events on their streams), against
//     lease + 200 ms.
// The group runs with fsync on, as in production; this process's own CPU is
// printed too (it shares the machine).
//
//   fleet_load --bin build/bin [--dir /tmp/tenure-fleet-load] [--workers 10000] [--shards 1000000]
//              [--heartbeat-ms 500] [--lease-ms 3000] [--settle-seconds 5] [--seconds 30] [--batch 5000]
//              [--grant-rounds 20]
//              [--connections 256] [--register-per-s 2000]
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bench/bench_cluster.h"
#include "net/http_client.h"
#include "net/line_splitter.h"

namespace {

using namespace tenure::bench;
namespace asio = boost::asio;

struct Args {
  std::string bin = "build/bin";
  std::string dir = "/tmp/tenure-fleet-load";
  int workers = 10000;
  long shards = 1000000;
  int heartbeat_ms = 500;
  int lease_ms = 3000;
  int seconds = 30;
  /// The aftermath window between the bulk creation and the steady one.
  int settle_seconds = 5;
  int batch = 5000;
  int grant_rounds = 20;
  /// Connections to the leader that the heartbeats share (one call in
  /// flight on each): a real agent has its own, and a call that waits for
  /// a free one here waits behind others' calls, which no agent does.
  int connections = 256;
  /// Registrations a second at the start: the fleet comes up at this pace
  /// (a whole fleet registering within one heartbeat interval is a
  /// thundering herd of writes, not the steady state measured here).
  int register_per_s = 2000;
};

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())))];
}

/// utime + stime of a process in clock ticks, -1 if unreadable.
long cpu_ticks(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream in(text.substr(close + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int k = 3; k <= 15 && in >> field; ++k) {
    if (k == 14) utime = std::stol(field);
    if (k == 15) stime = std::stol(field);
  }
  return utime + stime;
}


double own_cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

/// Heartbeats slower than 50 ms, counted by the second of the window in
/// which they were sent, with the slowest of each second.
void print_slow_heartbeats(const std::vector<std::pair<double, double>>& slow) {
  std::map<long, std::pair<size_t, double>> by_second;
  for (auto [at_ms, ms] : slow) {
    auto& b = by_second[static_cast<long>(at_ms / 1000)];
    ++b.first;
    b.second = std::max(b.second, ms);
  }
  std::printf("  heartbeats slower than 50 ms: %zu; by second sent (count, slowest):", slow.size());
  for (auto& [second, b] : by_second) std::printf(" s%ld %zu %.0fms", second, b.first, b.second);
  std::printf("\n");
}

/// The simulated fleet: its calls run on one io thread, its watch streams on another.
class Fleet {
 public:
  Fleet(const Args& a, std::vector<std::string> members, std::string leader)
      : a_(a), members_(std::move(members)), leader_(std::move(leader)), client_(io_, client_options(a)),
        stream_client_(stream_io_, client_options(a)), timer_(io_), workers_(static_cast<size_t>(a.workers)) {
    for (int w = 0; w < a.workers; ++w) workers_[static_cast<size_t>(w)].id = "w" + std::to_string(w + 1);
  }
  ~Fleet() {
    client_.shutdown();
    stream_client_.shutdown();
    guard_.reset();
    stream_guard_.reset();
    io_.stop();
    stream_io_.stop();
    if (thread_.joinable()) thread_.join();
    if (stream_thread_.joinable()) stream_thread_.join();
  }

  void start() {
    start_ = Clock::now();
    thread_ = std::thread([this] { io_.run(); });
    stream_thread_ = std::thread([this] { stream_io_.run(); });
    asio::post(io_, [this] { tick(); });
  }

  // ---- read by the main thread (under mu_) ----
  std::mutex mu_;
  std::condition_variable changed_;
  size_t registered_ = 0, streams_open_ = 0, streams_ended_ = 0;
  uint64_t events_ = 0, grants_ = 0;
  uint64_t hb_ok_ = 0, hb_failed_ = 0, hb_dead_ = 0, hb_skipped_ = 0;
  std::vector<double> hb_latency_ms_;  ///< cleared by the main thread per window
  /// Heartbeats slower than 50 ms: (when sent, ms after the window's start; latency).
  /// Tells a stall (all in one moment) from a spread tail.
  std::vector<std::pair<double, double>> hb_slow_;
  Clock::time_point window_start_;
  /// How late this process's own 2 ms tick ran (ms), per window: a tail
  /// that this generator made itself shows here.
  std::vector<double> tick_late_ms_;
  /// The most calls awaiting answers at once, per window: more than
  /// --connections means calls queued here for a free connection.
  size_t max_in_flight_ = 0;
  std::unordered_map<std::string, std::string> owner_;  ///< shard -> worker, from grant events
  std::unordered_map<std::string, Clock::time_point> granted_at_;
  /// probe shards: from the grant's proposal at the leader (its at_ms) to
  /// its arrival here, both wall clocks of this machine, in ms.
  std::unordered_map<std::string, double> proposal_to_arrival_ms_;
  std::unordered_map<std::string, Clock::time_point> last_ok_send_;  ///< worker -> its last answered heartbeat's send
  std::unordered_set<std::string> in_flight_;  ///< workers whose call awaits its answer
  std::atomic<bool> stop_one_{false};
  std::string stopped_worker_;

  void silence(const std::string& worker) {
    std::lock_guard lock(mu_);
    stopped_worker_ = worker;
  }

 private:
  struct Worker {
    std::string id;
    bool registered = false;
    bool in_flight = false;
    std::shared_ptr<net::StreamHandle> stream;
  };

  static net::ClientOptions client_options(const Args& a) {
    net::ClientOptions o;
    o.max_connections_per_host = static_cast<size_t>(a.connections);
    o.max_idle_per_host = static_cast<size_t>(a.connections);
    o.max_queued_per_host = 100000;
    return o;
  }

  /// Every 2 ms: the workers whose phase came up since the last tick send
  /// their call (register first, then heartbeats), each once per interval.
  void tick() {
    auto now = Clock::now();
    if (next_tick_ != Clock::time_point{}) {
      std::lock_guard lock(mu_);
      tick_late_ms_.push_back(ms_between(next_tick_, now));
      max_in_flight_ = std::max(max_in_flight_, in_flight_.size());
    }
    next_tick_ = now + std::chrono::milliseconds(2);
    // Registrations at --register-per-s, in worker order; heartbeats at
    // one per worker per interval, round the fleet, for the workers whose
    // registration was sent (one that lost its lease registers again).
    double elapsed_ms = ms_between(start_, now);
    auto registrations_due = std::min<uint64_t>(
        workers_.size(), static_cast<uint64_t>(elapsed_ms * a_.register_per_s / 1000.0) + 1);
    for (; registrations_sent_ < registrations_due; ++registrations_sent_) call(workers_[registrations_sent_]);
    auto due = static_cast<uint64_t>(elapsed_ms * static_cast<double>(a_.workers) / a_.heartbeat_ms);
    for (; sent_ < due; ++sent_) {
      size_t k = sent_ % workers_.size();
      if (k < registrations_sent_) call(workers_[k]);
    }
    timer_.expires_after(std::chrono::milliseconds(2));
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (!ec) tick();
    });
  }

  void call(Worker& w) {
    if (w.in_flight) {
      std::lock_guard lock(mu_);
      ++hb_skipped_;
      return;
    }
    {
      std::lock_guard lock(mu_);
      if (w.id == stopped_worker_) return;
      in_flight_.insert(w.id);
    }
    w.in_flight = true;
    net::ClientRequest r;
    r.method = "POST";
    r.timeout_ms = 5000;
    if (!w.registered) {
      r.target = "/v1/workers/" + w.id + "/register";
      r.body = R"({"address":"127.0.0.1:9","zone":"z)" + std::to_string(w.id.size() % 3) + R"("})";
    } else {
      r.target = "/v1/workers/" + w.id + "/heartbeat";
      r.body = "{}";
    }
    auto sent = Clock::now();
    bool heartbeat = w.registered;
    client_.request(leader_, std::move(r), [this, &w, sent, heartbeat](net::ClientResult res) {
      // Client callbacks run on the io thread, as tick() does.
      w.in_flight = false;
      auto now = Clock::now();
      int status = res.ok() ? res.value().status : 0;
      std::lock_guard lock(mu_);
      in_flight_.erase(w.id);
      changed_.notify_all();
      if (status == 200) {
        if (!heartbeat) {
          w.registered = true;
          ++registered_;
          open_stream(w);
        } else {
          ++hb_ok_;
          hb_latency_ms_.push_back(ms_between(sent, now));
          if (hb_latency_ms_.back() > 50) hb_slow_.emplace_back(ms_between(window_start_, sent), hb_latency_ms_.back());
        }
        last_ok_send_[w.id] = sent;
      } else if (status == 409) {
        ++hb_dead_;
        w.registered = false;  // registers again at its next turn
      } else {
        ++hb_failed_;
      }
    });
  }

  /// Requires mu_.
  void open_stream(Worker& w) {
    size_t k = static_cast<size_t>(&w - workers_.data()) % members_.size();
    net::ClientRequest r;
    r.target = "/v1/watch?worker=" + w.id;
    r.timeout_ms = 10000;
    r.idle_timeout_ms = 0;  // a worker with nothing to hear hears only progress lines, every 5 s
    auto splitter = std::make_shared<net::LineSplitter>();
    std::string id = w.id;
    w.stream = stream_client_.stream(
        members_[k], std::move(r),
        [this](int status, const net::HeaderMap&) {
          std::lock_guard lock(mu_);
          if (status == 200) ++streams_open_;
        },
        [this, splitter, id](std::string_view chunk) {
          auto now = Clock::now();
          splitter->feed(chunk, [&](std::string_view line) { on_event(id, line, now); });
        },
        [this](std::optional<net::ClientError>) {
          std::lock_guard lock(mu_);
          ++streams_ended_;
        });
  }

  /// The string value after `pattern` (`"key":"`) in one compact event line
  /// (ids and types hold no quotes); empty when absent. No allocation: it
  /// runs for each of a million events.
  static std::string_view string_field(std::string_view line, std::string_view pattern) {
    auto at = line.find(pattern);
    if (at == std::string_view::npos) return {};
    auto from = at + pattern.size();
    auto to = line.find('"', from);
    return to == std::string_view::npos ? std::string_view() : line.substr(from, to - from);
  }

  /// A million grants arrive within seconds of a bulk creation: a full JSON
  /// parse of each, and waking the main thread for each, made this process
  /// fall seconds behind, its heartbeats late and its workers declared dead
  /// (a collapse of the generator, not of the group).
  void on_event(const std::string& worker, std::string_view line, Clock::time_point now) {
    auto type = string_field(line, R"("type":")");
    if (type.empty()) return;
    std::lock_guard lock(mu_);
    ++events_;
    auto shard_view = string_field(line, R"("shard":")");
    if (type != "grant" || shard_view.empty()) return;
    ++grants_;
    std::string shard(shard_view);
    bool probe = shard.rfind("probe-", 0) == 0;
    auto& owner = owner_[shard];
    bool was_stopped = !stopped_worker_.empty() && owner == stopped_worker_;
    owner = worker;
    granted_at_[shard] = now;
    if (probe) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object() && j["at_ms"].is_number_unsigned()) {
        auto wall_us = std::chrono::duration_cast<std::chrono::microseconds>(
                           std::chrono::system_clock::now().time_since_epoch()).count();
        proposal_to_arrival_ms_[shard] =
            static_cast<double>(wall_us) / 1000.0 - static_cast<double>(j["at_ms"].get<uint64_t>());
      }
    }
    // Only what the main thread waits for: a probe, a silenced worker's
    // shard granted elsewhere, every shard placed.
    if (probe || was_stopped || owner_.size() >= static_cast<size_t>(a_.shards)) changed_.notify_all();
  }

  const Args& a_;
  std::vector<std::string> members_;
  std::string leader_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> guard_ = asio::make_work_guard(io_);
  net::HttpClient client_;
  /// The watch streams read on a thread of their own: a burst of events
  /// must not hold back the heartbeats' sends and answers.
  asio::io_context stream_io_;
  asio::executor_work_guard<asio::io_context::executor_type> stream_guard_ = asio::make_work_guard(stream_io_);
  net::HttpClient stream_client_;
  asio::steady_timer timer_;
  std::vector<Worker> workers_;
  std::thread thread_;
  std::thread stream_thread_;
  Clock::time_point start_;
  Clock::time_point next_tick_{};
  uint64_t sent_ = 0;
  uint64_t registrations_sent_ = 0;
};


/// Waits (polling `check` under the fleet's lock whenever an event came) up
/// to `timeout_ms`; false on timeout.
template <typename F>
bool wait_for(Fleet& f, int timeout_ms, F check) {
  std::unique_lock lock(f.mu_);
  return f.changed_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return check(); });
}

/// What the window reads from the leader's /metrics: its heartbeat
/// histogram (tenure_http_request_duration_seconds, from the parsed request
/// to its answer) as cumulative counts by bucket bound in seconds, and the
/// seconds its Raft strand was busy (tenure_raft_strand_busy_seconds, all
/// kinds of work).
struct LeaderReading {
  std::map<double, double> heartbeat_buckets;
  double strand_busy_s = 0;
};

LeaderReading read_leader(const std::string& leader) {
  net::SyncHttpClient http;
  net::ClientRequest r;
  r.target = "/metrics";
  r.timeout_ms = 10000;
  auto res = http.call(leader, r);
  LeaderReading out;
  if (!res.ok() || res.value().status != 200) return out;
  std::istringstream in(res.value().body);
  const std::string bucket = R"(tenure_http_request_duration_seconds_bucket{route="/v1/workers/{id}/heartbeat",le=")";
  const std::string busy = "tenure_raft_strand_busy_seconds_sum{";
  for (std::string line; std::getline(in, line);) {
    double value = line.empty() || line[0] == '#' ? 0 : std::stod(line.substr(line.rfind(' ') + 1));
    if (line.rfind(busy, 0) == 0) out.strand_busy_s += value;
    if (line.rfind(bucket, 0) != 0) continue;
    auto end = line.find('"', bucket.size());
    std::string le = line.substr(bucket.size(), end - bucket.size());
    out.heartbeat_buckets[le == "+Inf" ? 1e9 : std::stod(le)] = value;
  }
  return out;
}

/// The smallest bucket bound (ms) under which fraction q of the window's
/// heartbeats fell, from two readings of heartbeat_buckets.
double bucket_quantile_ms(const std::map<double, double>& before, const std::map<double, double>& after, double q) {
  if (after.empty()) return 0;
  double total = after.rbegin()->second - (before.empty() ? 0 : before.rbegin()->second);
  for (auto& [bound, n] : after) {
    double prior = before.count(bound) ? before.at(bound) : 0;
    if (n - prior >= q * total) return bound * 1000;
  }
  return 0;
}

/// The leader's heartbeat latency and strand load between two readings.
void print_leader_view(const LeaderReading& before, const LeaderReading& after, double seconds) {
  const auto &b0 = before.heartbeat_buckets, &b1 = after.heartbeat_buckets;
  std::printf("  the leader's own view (request parsed to answered, its histogram's buckets): p99 <= %g ms, "
              "max <= %g ms; its Raft strand busy %.1f %% of the time\n",
              bucket_quantile_ms(b0, b1, 0.99), bucket_quantile_ms(b0, b1, 1.0),
              100 * (after.strand_busy_s - before.strand_busy_s) / seconds);
}

/// The generator's heartbeat samples over one window.
struct HeartbeatSamples {
  std::vector<double> latency_ms, tick_late_ms;
  std::vector<std::pair<double, double>> slow;
  uint64_t ok = 0, failed = 0, dead = 0, skipped = 0;
  size_t streams_ended = 0, max_in_flight = 0;
};

/// Starts a window: the samples so far are dropped, the counters noted.
HeartbeatSamples start_samples(Fleet& fleet) {
  std::lock_guard lock(fleet.mu_);
  fleet.hb_latency_ms_.clear();
  fleet.hb_slow_.clear();
  fleet.tick_late_ms_.clear();
  fleet.max_in_flight_ = 0;
  fleet.window_start_ = Clock::now();
  HeartbeatSamples at;
  at.ok = fleet.hb_ok_, at.failed = fleet.hb_failed_, at.dead = fleet.hb_dead_, at.skipped = fleet.hb_skipped_;
  return at;
}

/// Ends a window started at `start`. Only the samples are taken under the
/// lock: the sorting and the leader's /metrics come after it. Done under
/// it, they held this generator's io thread (every answer and tick takes
/// the lock) for up to ~100 ms, and the heartbeats it then sent in a burst
/// were the next window's first-second tail (thousands over 50 ms, while
/// the leader's own histogram stayed under 25 ms).
HeartbeatSamples take_samples(Fleet& fleet, const HeartbeatSamples& start) {
  HeartbeatSamples w;
  std::lock_guard lock(fleet.mu_);
  w.latency_ms.swap(fleet.hb_latency_ms_);
  w.tick_late_ms.swap(fleet.tick_late_ms_);
  w.slow.swap(fleet.hb_slow_);
  w.ok = fleet.hb_ok_ - start.ok, w.failed = fleet.hb_failed_ - start.failed, w.dead = fleet.hb_dead_ - start.dead;
  w.skipped = fleet.hb_skipped_ - start.skipped;
  w.streams_ended = fleet.streams_ended_, w.max_in_flight = fleet.max_in_flight_;
  return w;
}

void print_heartbeats(const char* label, double window_s, const HeartbeatSamples& w) {
  const auto& v = w.latency_ms;
  std::printf("%s %.0f s: heartbeats %.0f/s answered, p50 %.2f ms, p99 %.2f ms, max %.1f ms; failed %lu, "
              "leases lost (409) %lu, skipped (previous one still in flight) %lu; streams ended %zu\n",
              label, window_s, static_cast<double>(w.ok) / window_s, percentile(v, 0.5), percentile(v, 0.99),
              v.empty() ? 0 : *std::max_element(v.begin(), v.end()), static_cast<unsigned long>(w.failed),
              static_cast<unsigned long>(w.dead), static_cast<unsigned long>(w.skipped), w.streams_ended);
  print_slow_heartbeats(w.slow);
  const auto& late = w.tick_late_ms;
  std::printf("  this generator's own 2 ms tick ran late: p99 %.2f ms, max %.1f ms; calls in flight at most %zu\n",
              percentile(late, 0.99), late.empty() ? 0 : *std::max_element(late.begin(), late.end()), w.max_in_flight);
}

/// One measured window of `seconds`: heartbeat latency as this process
/// sees it, the slow ones by second, this process's own lateness, and each
/// member's CPU and memory over the window.
void measure_window(Fleet& fleet, Cluster& c, const std::string& leader, pid_t leader_pid, const char* label,
                    int seconds) {
  if (seconds <= 0) return;
  auto leader0 = read_leader(leader);
  std::vector<long> ticks0;
  for (auto& m : c.members()) ticks0.push_back(cpu_ticks(m.pid));
  double own0 = own_cpu_seconds();
  HeartbeatSamples start = start_samples(fleet);
  auto w0 = Clock::now();
  std::this_thread::sleep_for(std::chrono::seconds(seconds));  // the measured window itself
  double window_s = ms_between(w0, Clock::now()) / 1000;
  double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  HeartbeatSamples w = take_samples(fleet, start);
  print_heartbeats(label, window_s, w);
  print_leader_view(leader0, read_leader(leader), window_s);
  size_t k = 0;
  for (auto& m : c.members()) {
    std::printf("  %s%s: CPU %.2f cores, VmRSS %.0f MiB, VmHWM %.0f MiB\n", m.id.c_str(),
                m.pid == leader_pid ? " (leader)" : "",
                static_cast<double>(cpu_ticks(m.pid) - ticks0[k++]) / hz / window_s,
                static_cast<double>(status_kb(m.pid, "VmRSS")) / 1024, static_cast<double>(status_kb(m.pid, "VmHWM")) / 1024);
  }
  std::printf("  this load generator: CPU %.2f cores\n", (own_cpu_seconds() - own0) / window_s);
  std::fflush(stdout);

}

int run(const Args& a) {
  int watches_per_member = a.workers / 3 + 100;
  Cluster c({a.bin, a.dir,
             "worker_lease_ms: " + std::to_string(a.lease_ms) +
                 "\nlimits: {max_watch_streams: " + std::to_string(watches_per_member) + ", max_connections: " +
                 std::to_string(watches_per_member + a.connections + 2000) + "}\n",
             17400});
  std::string leader = c.leader();
  if (leader.empty()) return std::fprintf(stderr, "no leader\n"), 1;
  if (!c.all_running()) return 1;
  std::vector<std::string> addresses;
  pid_t leader_pid = -1;
  for (auto& m : c.members()) {
    addresses.push_back(m.address);
    if (m.address == leader) leader_pid = m.pid;
  }
  Fleet fleet(a, addresses, leader);
  auto t0 = Clock::now();
  fleet.start();
  // Registration and watches: each worker registers at its first turn.
  auto deadline = Clock::now() + std::chrono::seconds(120);
  while (Clock::now() < deadline) {
    {
      std::lock_guard lock(fleet.mu_);
      if (fleet.streams_open_ >= static_cast<size_t>(a.workers)) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // progress poll of a benchmark, not a test
  }
  {
    std::lock_guard lock(fleet.mu_);
    std::printf("workers=%d registered=%zu watching=%zu after %.1f s\n", a.workers, fleet.registered_,
                fleet.streams_open_, ms_between(t0, Clock::now()) / 1000);
    if (fleet.streams_open_ < static_cast<size_t>(a.workers)) return 1;
  }
  std::fflush(stdout);

  net::SyncHttpClient http;
  auto creation0 = read_leader(leader);
  HeartbeatSamples creation_start = start_samples(fleet);
  auto t1 = Clock::now();
  for (long first = 0; first < a.shards; first += a.batch) {
    std::string body = R"({"ids":[)";
    for (long i = first; i < std::min(a.shards, first + a.batch); ++i) {
      body += (i > first ? ",\"shard-" : "\"shard-") + std::to_string(i) + "\"";
    }
    body += "]}";
    if (!post(http, leader, "/v1/shards", std::move(body), 201)) return 1;
  }
  double created_s = ms_between(t1, Clock::now()) / 1000;
  bool placed = wait_for(fleet, 600000, [&] { return fleet.owner_.size() >= static_cast<size_t>(a.shards); });
  {
    std::lock_guard lock(fleet.mu_);
    std::printf("shards=%ld created in %.1f s; %zu granted and delivered to their workers' streams after %.1f s%s\n",
                a.shards, created_s, fleet.owner_.size(), ms_between(t1, Clock::now()) / 1000,
                placed ? "" : " (NOT ALL)");
  }
  double creation_s = ms_between(t1, Clock::now()) / 1000;
  print_heartbeats("  during it:", creation_s, take_samples(fleet, creation_start));
  print_leader_view(creation0, read_leader(leader), creation_s);
  std::fflush(stdout);

  // Right after the bulk creation, members still apply its tail, snapshot
  // and write its history, and calls queued meanwhile drain: measured on
  // its own, so that the steady window measures the steady state.
  measure_window(fleet, c, leader, leader_pid, "aftermath", a.settle_seconds);
  measure_window(fleet, c, leader, leader_pid, "steady", a.seconds);

  // Grant delivery while everyone watches.
  std::vector<double> delivery, proposal_to_arrival;
  for (int i = 0; i < a.grant_rounds; ++i) {
    std::string shard = "probe-" + std::to_string(i);
    auto sent = Clock::now();
    if (!post(http, leader, "/v1/shards", R"({"ids":[")" + shard + R"("]})", 201)) return 1;
    if (!wait_for(fleet, 10000, [&] { return fleet.granted_at_.count(shard) > 0; })) {
      std::printf("grant of %s not delivered within 10 s\n", shard.c_str());
      continue;
    }
    std::lock_guard lock(fleet.mu_);
    delivery.push_back(ms_between(sent, fleet.granted_at_[shard]));
    if (fleet.proposal_to_arrival_ms_.count(shard)) proposal_to_arrival.push_back(fleet.proposal_to_arrival_ms_[shard]);
  }
  std::printf("grant delivery (create at the leader -> grant on the worker's stream), %zu rounds: p50 %.1f ms, max %.1f ms\n",
              delivery.size(), percentile(delivery, 0.5),
              delivery.empty() ? 0 : *std::max_element(delivery.begin(), delivery.end()));
  std::printf("  of which from the grant's proposal at the leader (its at_ms, whole ms) to its arrival: p50 %.1f ms, "
              "max %.1f ms (the rest waits for placement's next pass)\n",
              percentile(proposal_to_arrival, 0.5),
              proposal_to_arrival.empty() ? 0 : *std::max_element(proposal_to_arrival.begin(), proposal_to_arrival.end()));

  // A dead worker.
  std::string victim;
  std::vector<std::string> its_shards;
  Clock::time_point last_send;
  {
    std::lock_guard lock(fleet.mu_);
    std::unordered_map<std::string, size_t> count;
    for (const auto& [s, w] : fleet.owner_) ++count[w];
    for (const auto& [w, n] : count) {
      if (victim.empty() || n > count[victim]) victim = w;
    }
    for (const auto& [s, w] : fleet.owner_) {
      if (w == victim) its_shards.push_back(s);
    }
    fleet.stopped_worker_ = victim;
  }
  // Its last heartbeat may be in flight: wait for its answer, then the
  // lease runs from that heartbeat's send at the latest.
  wait_for(fleet, 10000, [&] { return fleet.in_flight_.count(victim) == 0; });
  {
    std::lock_guard lock(fleet.mu_);
    last_send = fleet.last_ok_send_[victim];
  }
  bool moved = wait_for(fleet, a.lease_ms * 4, [&] {
    for (const auto& s : its_shards) {
      if (fleet.owner_[s] == victim) return false;
    }
    return true;
  });
  auto done = Clock::now();
  std::printf("dead worker %s (%zu shards): every shard granted elsewhere %.0f ms after its last answered "
              "heartbeat was sent (lease %d ms, target lease + 200 ms)%s\n",
              victim.c_str(), its_shards.size(), ms_between(last_send, done), a.lease_ms, moved ? "" : " NOT ALL");
  {
    std::lock_guard lock(fleet.mu_);
    std::printf("totals: events %lu (grants %lu), heartbeats answered %lu, failed %lu, leases lost %lu\n",
                static_cast<unsigned long>(fleet.events_), static_cast<unsigned long>(fleet.grants_),
                static_cast<unsigned long>(fleet.hb_ok_), static_cast<unsigned long>(fleet.hb_failed_),
                static_cast<unsigned long>(fleet.hb_dead_));
  }
  return placed && moved ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  bool ok = parse_flags("fleet_load", argc, argv, {
      {"--bin", [&](const std::string& v) { a.bin = v; }},
      {"--dir", [&](const std::string& v) { a.dir = v; }},
      {"--workers", [&](const std::string& v) { a.workers = std::stoi(v); }},
      {"--shards", [&](const std::string& v) { a.shards = std::stol(v); }},
      {"--heartbeat-ms", [&](const std::string& v) { a.heartbeat_ms = std::stoi(v); }},
      {"--lease-ms", [&](const std::string& v) { a.lease_ms = std::stoi(v); }},
      {"--seconds", [&](const std::string& v) { a.seconds = std::stoi(v); }},
      {"--settle-seconds", [&](const std::string& v) { a.settle_seconds = std::stoi(v); }},
      {"--batch", [&](const std::string& v) { a.batch = std::stoi(v); }},
      {"--grant-rounds", [&](const std::string& v) { a.grant_rounds = std::stoi(v); }},
      {"--connections", [&](const std::string& v) { a.connections = std::max(1, std::stoi(v)); }},
      {"--register-per-s", [&](const std::string& v) { a.register_per_s = std::max(1, std::stoi(v)); }},
  });
  if (!ok) return 2;
  return run(a);
}
