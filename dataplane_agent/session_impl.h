#pragma once
// Internal: the state of Session, shared by session.cc (register,
// heartbeat, re-list, release, leave) and session_watch.cc (the watch).
// Every member is touched only on `strand`, except `synced` (atomic).

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "dataplane_agent/controller_pool.h"
#include "dataplane_agent/fence_state.h"
#include "dataplane_agent/grant_store.h"
#include "dataplane_agent/lease.h"
#include "dataplane_agent/metrics.h"
#include "dataplane_agent/session.h"
#include "net/http_client.h"
#include "net/line_splitter.h"

namespace tenure::agent {

/// Jittered exponential backoff: the n-th wait is uniform in [d/2, d] with
/// d = min(max, base * 2^n) ("full jitter" halved, so waits never collapse to 0).
class Backoff {
 public:
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds max) : base_(base), max_(max) {}
  std::chrono::milliseconds next();
  void reset() { attempt_ = 0; }

 private:
  std::chrono::milliseconds base_, max_;
  int attempt_ = 0;
  std::mt19937_64 rng_{std::random_device{}()};
};

struct Session::Impl {
  using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;

  Impl(boost::asio::io_context& io, net::HttpClient& client, ControllerPool& pool, GrantStore& store,
       FenceState& fence, AgentMetrics& metrics, const Clock& clock, SessionConfig config);

  // --- session.cc ---
  void start();
  void tick();
  void schedule_tick();
  void send_register();
  void send_heartbeat();
  void handle_lease_reply(const PoolReply& r, bool is_register);
  void apply_lease_answer(const PoolReply& r, const struct LeaseAnswer& a, bool is_register);
  /// Stops serving (lease invalid) and registers again; `drop_grants`
  /// also forgets every grant for good (the worker was declared dead).
  void lost_registration(const std::string& reason, bool drop_grants);
  void start_relist();
  /// Asks for the page after `token` ("" the first) of our shards.
  void fetch_relist_page(const std::string& token);
  void on_relist_page(const PoolReply& r);
  /// Installs the whole listing (every page, in relist_pages).
  void on_relist(const ShardList& list);
  void schedule_relist();
  void send_release(std::vector<ShardEpoch> shards, int attempt = 0);
  /// Persists then installs `c`; false after a fatal storage failure.
  bool commit(const GrantChanges& c);
  void fatal(const std::string& message);
  void leave(std::chrono::milliseconds timeout, std::function<void(bool)> done);
  void check_watch_lag(Revision heartbeat_revision, Revision worker_revision);
  /// Sets the fence's lease from the ledger and the table's revision; called
  /// after every change of either.
  void refresh_lease();
  std::string worker_path(const char* action) const;

  // --- session_watch.cc ---
  void start_watch(Revision from);
  void stop_watch();
  void on_watch_headers(uint64_t gen, int status);
  void on_watch_data(uint64_t gen, std::string chunk);
  /// Runs on the strand: everything the stream delivered since the last run.
  void drain_watch();
  void on_watch_end(uint64_t gen, bool transport_error);
  void process_lines(const std::vector<std::string>& lines);
  void schedule_watch_reconnect();

  boost::asio::io_context& io;
  Strand strand;
  net::HttpClient& client;
  ControllerPool& pool;
  GrantStore& store;
  FenceState& fence;
  AgentMetrics& metrics;
  const Clock& clock;
  const SessionConfig config;

  std::atomic<bool> synced{false};
  bool stopping = false;
  bool failed = false;
  bool registered = false;
  bool register_inflight = false;
  bool heartbeat_inflight = false;
  bool relist_inflight = false;
  bool heartbeat_failing = false;
  /// Bumped on every loss of registration: replies to older calls are ignored.
  uint64_t session_gen = 1;
  /// Extensions from acknowledged heartbeats/registers, each waiting for the
  /// grant table to reach its answer's worker revision.
  LeaseLedger leases;
  uint32_t lease_ms = 0;
  std::function<void(const std::string&)> on_fatal;

  boost::asio::steady_timer tick_timer;
  boost::asio::steady_timer relist_timer;
  boost::asio::steady_timer watch_timer;
  Backoff relist_backoff{std::chrono::milliseconds(100), std::chrono::milliseconds(5000)};
  /// The pages of the relist in flight, concatenated; its revision is the
  /// first page's (see on_relist_page).
  ShardList relist_pages;
  size_t relist_page_count = 0;

  // Watch.
  std::shared_ptr<net::StreamHandle> watch;
  uint64_t watch_gen = 0;
  int watch_status = 0;
  net::LineSplitter splitter;
  /// Stream data not yet on the strand (written by the client's thread). One
  /// drain at a time is posted: a backlog of events becomes one commit (one
  /// fsync) instead of one per network read, and the strand's timers
  /// (heartbeats) never wait behind thousands of queued reads.
  std::mutex watch_mu;
  std::string watch_pending;       ///< guarded by watch_mu
  uint64_t watch_pending_gen = 0;  ///< guarded by watch_mu
  bool watch_drain_posted = false; ///< guarded by watch_mu
  Backoff watch_backoff{std::chrono::milliseconds(100), std::chrono::milliseconds(5000)};
  /// A heartbeat showed a revision the watch had not reached, since when.
  std::optional<std::pair<Revision, SteadyTime>> watch_lag;
};

/// How long a heartbeat may go unanswered before the next member is tried.
std::chrono::milliseconds heartbeat_timeout(std::chrono::milliseconds interval);

}  // namespace tenure::agent
