#pragma once
// Internal: Session's I/O shell around the pure SessionCore. It turns the
// core's calls into HTTP requests on the controller pool, its watch into a
// streamed GET, its durable writes into GrantStore transactions and its
// timers into steady_timers, and feeds every answer back to the core on
// one strand. No decision is made here (session_core.h makes them all).
//
// Every member is touched only on `strand`, except `synced` (atomic) and
// the watch's hand-over buffer (watch_mu).

#include <atomic>
#include <map>
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
#include "dataplane_agent/metrics.h"
#include "dataplane_agent/session.h"
#include "dataplane_agent/session_core.h"
#include "net/http_client.h"
#include "net/line_splitter.h"

namespace tenure::agent {

struct Session::Impl final : SessionIo {
  using Strand = boost::asio::strand<boost::asio::io_context::executor_type>;

  Impl(boost::asio::io_context& io, net::HttpClient& client, ControllerPool& pool, GrantStore& store,
       FenceState& fence, AgentMetrics& metrics, const Clock& clock, SessionConfig config);

  void start();
  void leave(std::chrono::milliseconds timeout, std::function<void(bool)> done);
  /// Runs `fn` on the strand.
  void post(std::function<void()> fn);

  // --- SessionIo (session.cc) ---
  void call(Call c, std::function<void(Reply)> done) override;
  void rotate() override { pool.rotate(); }
  std::string endpoint() const override { return pool.current(); }
  void persist(std::shared_ptr<const GrantChanges> c, std::function<void(std::string)> done) override;
  void after(std::chrono::nanoseconds d, std::function<void()> fn) override;
  void cancel_timers() override;
  int64_t uniform(int64_t lo, int64_t hi) override;
  bool logging(LogLevel level) const override { return level != LogLevel::kDebug; }
  void log(LogLevel level, const std::string& fields) override;
  void fatal(const std::string& message) override;
  void heartbeat_result(const char* result) override { metrics.heartbeat(result); }
  void lease_deferred() override { metrics.lease_deferred(); }
  void release_result(bool ok) override { metrics.release(ok ? "ok" : "error"); }
  void watch_reconnect() override { metrics.watch_reconnect(); }
  void grants_changed(size_t held) override { metrics.grants_changed(held); }
  void grant_delay(double seconds) override { metrics.grant_delay(seconds); }
  bool program_drains() const override;
  void program_drain(const ShardEpoch& s, std::chrono::nanoseconds budget, std::function<void()> done) override;
  void program_prepare(const ShardEpoch& s, std::function<void()> done) override;
  void program_abandon(const ShardEpoch& s) override;
  void program_changes(std::vector<ProgramChange> changes) override;
  void program_lease_lost() override;
  std::string worker_path(const char* action) const;

  // --- SessionIo: the watch (session_watch.cc) ---
  void open_watch(uint64_t gen, Revision from) override;
  void close_watch() override;
  void on_watch_headers(uint64_t gen, int status);
  /// Runs on the strand: everything the stream delivered since the last run.
  void drain_watch();
  void on_watch_data(uint64_t gen, std::string chunk);
  void on_watch_end(uint64_t gen, bool transport_error);

  boost::asio::io_context& io;
  Strand strand;
  net::HttpClient& client;
  ControllerPool& pool;
  GrantStore& store;
  AgentMetrics& metrics;
  const SessionConfig config;
  SessionCore core;

  std::atomic<bool> synced{false};
  std::function<void(const std::string&)> on_fatal;
  std::mt19937_64 rng{std::random_device{}()};
  /// Timers pending (after()), by a serial, so cancel_timers() reaches them.
  std::map<uint64_t, std::shared_ptr<boost::asio::steady_timer>> timers;
  uint64_t next_timer = 0;

  // Watch: the stream open, and the generation the core gave it.
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
};

}  // namespace tenure::agent
