#pragma once
// The agent's session as a pure core: every decision of its conversation
// with the controllers (register, heartbeat, re-list, watch, release,
// leave) and the order of work they need, with no I/O of its own. No Asio,
// no HTTP, no threads, no clock reads but through `Clock`: what it sends,
// persists and waits for goes through `SessionIo`, which tenure-agent
// implements with Asio and HTTP (session.cc) and tenure-sim with its
// simulated network, store and skewed clocks (sim/fleet_agent.cc). Both run
// this code; only the I/O differs.
//
// Order rules (docs/fencing.md):
// - a heartbeat or register answer first drops (durably) the shards it
//   lists as revoked, then extends the lease, then sends their release;
// - the lease from an answer counts only once the grant table reached the
//   answer's worker revision (LeaseLedger);
// - a revoke from the watch drops the grant (keeping its epoch), then
//   releases it;
// - a grant is made durable before it is served (persist, then install);
// - nothing is served until the agent has registered and re-listed;
// - with a program that drains (SessionIo::program_drains), a shard revoked
//   for a planned handoff stays served until the program drained it or the
//   lease in force when the revoke was seen ran out (the fence enforces
//   that deadline), and only then is dropped (durably) and released;
// - with a program, a prepare event (this worker is a planned move's
//   target) asks it to prepare; once it answered (or its prepare timeout
//   ran out) the controllers are told, and the source is asked to drain.
//   The grant comes later, as a grant event.
//
// Thread: one at a time (the agent's control strand; the simulator's
// agent strand). Every callback handed to SessionIo must be run on it.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dataplane_agent/clock.h"
#include "dataplane_agent/fence_state.h"
#include "dataplane_agent/grant_table.h"
#include "dataplane_agent/lease.h"
#include "dataplane_agent/messages.h"
#include "dataplane_agent/program_change.h"

namespace tenure::agent {

/// Testing knobs: planted bugs that show the simulator's checkers catch a
/// broken agent. No config key or flag of tenure-agent sets them; only
/// tenure-sim does (`--fleet --bug NAME`).
struct SessionKnobs {
  /// fleet-lease-no-margin: the lease is send time + lease, without the
  /// drift factor or the safety margin.
  bool lease_no_margin = false;
  /// fleet-lease-ignores-worker-revision: an answer extends the lease at
  /// once, whether or not the table reached its worker revision.
  bool lease_ignores_worker_revision = false;
  /// fleet-drain-past-lease: a drain is bounded by the program's timeout
  /// only, not by the lease in force when the move was seen.
  bool drain_past_lease = false;
};

/// The session's waits. The defaults are tenure-agent's; the simulator
/// scales them to its shorter leases.
struct SessionTimings {
  std::chrono::milliseconds heartbeat_interval{500};
  /// One heartbeat attempt; then the next member is tried.
  std::chrono::milliseconds heartbeat_timeout{500};
  std::chrono::milliseconds register_timeout{5000};
  std::chrono::milliseconds list_timeout{10000};
  std::chrono::milliseconds release_timeout{5000};
  /// An unconfirmed release is retried after base, 2 base, 4 base.
  std::chrono::milliseconds release_retry_base{200};
  /// Re-list and watch reconnects: jittered exponential backoff.
  std::chrono::milliseconds backoff_base{100};
  std::chrono::milliseconds backoff_max{5000};
  /// A watch behind the heartbeats' revision this long is moved; sooner
  /// when it lacks an event of ours the lease waits for.
  std::chrono::milliseconds watch_lag_limit{15000};
  std::chrono::milliseconds own_events_lag_limit{1000};
  /// A shard the program prepared and that was not granted here this long
  /// after (the move was called off, or went elsewhere) is given up: the
  /// program hears a revoke ("not_granted") so it can unload it.
  std::chrono::milliseconds prepare_abandon_after{60000};

  /// tenure-agent's timings for a heartbeat interval.
  static SessionTimings for_interval(std::chrono::milliseconds interval);
};

/// The calls the session makes to the controllers (the shell turns them
/// into HTTP requests, or simulated ones).
enum class CallKind : uint8_t {
  kRegister,   ///< POST /v1/workers/{id}/register
  kHeartbeat,  ///< POST /v1/workers/{id}/heartbeat
  kList,       ///< GET /v1/shards?worker=W&limit=N[&continue=T] (linearizable)
  kRelease,    ///< POST /v1/workers/{id}/release
  kPrepared,   ///< POST /v1/workers/{id}/prepared
  kLeave,      ///< POST /v1/workers/{id}/leave
};
const char* to_string(CallKind k);

struct Call {
  CallKind kind = CallKind::kHeartbeat;
  /// Bounds each attempt (the shell may try several members).
  std::chrono::milliseconds timeout{0};
  std::string page_token;         ///< kList: "" for the first page
  size_t page_limit = 0;          ///< kList
  std::vector<ShardEpoch> shards; ///< kRelease, kPrepared (the grants' epochs)
};

/// What became of a call, decoded by the shell.
enum class ReplyStatus : uint8_t {
  kOk,          ///< 2xx, body decoded
  kFailed,      ///< no usable answer: transport error, timeout, 5xx, another status
  kNotFound,    ///< 404: the worker is not registered there
  kWorkerDead,  ///< 409 worker_dead: declared dead
  kRefused,     ///< another 4xx
  kBadAnswer,   ///< 2xx whose body could not be decoded
};

struct Reply {
  ReplyStatus status = ReplyStatus::kFailed;
  int http_status = 0;   ///< for logs; 0 without a response
  std::string endpoint;  ///< the member that answered (or was tried last)
  std::string detail;    ///< for logs: the error code, or what could not be decoded
  /// When the attempt that was answered was sent: the lease counts from here.
  SteadyTime sent;
  LeaseAnswer lease;  ///< kRegister, kHeartbeat
  ShardList list;     ///< kList: one page
  bool ok() const { return status == ReplyStatus::kOk; }
};

/// What a watch stream delivered since the last batch, decoded.
struct WatchBatch {
  std::vector<WatchEvent> events;  ///< in stream order
  /// Non-empty: the line after `events` could not be decoded (the problem).
  std::string undecodable;
  /// A line longer than the stream's limit: the stream cannot be trusted.
  bool overflow = false;
};

/// Why a watch stream ended.
enum class WatchEnd : uint8_t {
  kCompacted,    ///< 410: events in between may be gone
  kUnavailable,  ///< no answer, transport error, or 503: another member may serve it
  kOther,        ///< another status, or a clean end
};

/// The log levels the core uses (the shell maps them to its logger).
enum class LogLevel : uint8_t { kDebug, kInfo, kWarn, kError };

/// Everything the core needs from the world. Implementations run every
/// callback they are handed on the session's strand, never inside the call
/// that handed it over (except persist, which may complete at once).
class SessionIo {
 public:
  virtual ~SessionIo() = default;
  /// Sends `c`; `done` runs once with the outcome.
  virtual void call(Call c, std::function<void(Reply)> done) = 0;
  /// Opens the watch from revision `from`; reports through SessionCore's
  /// on_watch_* with `gen`. Replaces any stream open.
  virtual void open_watch(uint64_t gen, Revision from) = 0;
  /// Closes the stream open, if any: nothing more is reported for it.
  virtual void close_watch() = 0;
  /// Moves calls and the watch to the next member.
  virtual void rotate() = 0;
  /// The member calls go to now (for logs).
  virtual std::string endpoint() const = 0;
  /// Makes `c` durable; `done(error)` runs once it is, with an empty error,
  /// or with what failed. The strand runs nothing else until then (a
  /// durable write blocks it, as an fsync blocks tenure-agent's strand), so
  /// the table `c` was planned against cannot change meanwhile.
  virtual void persist(std::shared_ptr<const GrantChanges> c, std::function<void(std::string error)> done) = 0;
  /// Runs `fn` after `d` of the agent's steady clock.
  virtual void after(std::chrono::nanoseconds d, std::function<void()> fn) = 0;
  /// Drops every pending after() (the session stopped).
  virtual void cancel_timers() = 0;
  /// Uniform in [lo, hi] (backoff jitter).
  virtual int64_t uniform(int64_t lo, int64_t hi) = 0;

  /// Whether log() wants lines of `level` (formatting is skipped if not).
  virtual bool logging(LogLevel level) const = 0;
  /// One `key=value ...` line.
  virtual void log(LogLevel level, const std::string& fields) = 0;
  /// The grant store failed: the fence was stopped for good.
  virtual void fatal(const std::string& message) { (void)message; }

  // Observations (tenure-agent's metrics); no decision depends on them.
  virtual void heartbeat_result(const char* result) { (void)result; }
  virtual void lease_deferred() {}
  virtual void release_result(bool ok) { (void)ok; }
  virtual void watch_reconnect() {}
  virtual void grants_changed(size_t held) { (void)held; }
  virtual void grant_delay(double seconds) { (void)seconds; }

  // The data-plane program in the loop (CONTRACT.md, "Agent and program").
  /// Whether a shard revoked for a planned handoff is drained by the program
  /// before its release (an app URL or a handler is set).
  virtual bool program_drains() const { return false; }
  /// Asks the program to drain `s`; `done` runs on the strand once, when it
  /// answered or `budget` ran out, whichever is first.
  virtual void program_drain(const ShardEpoch& s, std::chrono::nanoseconds budget, std::function<void()> done) {
    (void)s;
    (void)budget;
    done();
  }
  /// Asks the program to prepare `s` (this worker is to be granted it at
  /// s.epoch); `done` runs on the strand once, when it answered or the
  /// agent's prepare timeout ran out.
  virtual void program_prepare(const ShardEpoch& s, std::function<void()> done) {
    (void)s;
    done();
  }
  /// A prepared shard that was never granted: the program may unload it
  /// (told as a revoke, to the program only: the grants feed never had it).
  virtual void program_abandon(const ShardEpoch& s) { (void)s; }
  /// Grants gained and lost, in the order they took effect.
  virtual void program_changes(std::vector<ProgramChange> changes) { (void)changes; }
  /// The lease stopped being valid (the fence refuses every write already):
  /// told once per loss, at most a heartbeat interval after it lapsed.
  virtual void program_lease_lost() {}
};

/// What the session identifies as, and how it behaves.
struct SessionCoreConfig {
  WorkerId worker;
  SessionTimings timings;
  SessionKnobs knobs;
};

/// Counts of what happened (the simulator's reports; tests).
struct SessionStats {
  uint64_t heartbeats_ok = 0;  ///< register and heartbeat answers taken
  uint64_t declared_dead = 0;  ///< worker_dead answers and watch events
  uint64_t relists = 0;        ///< listings installed
  uint64_t releases = 0;       ///< release calls sent
  uint64_t grants = 0;         ///< shards newly granted
  uint64_t drains = 0;         ///< drains the program was asked for
  uint64_t prepares = 0;       ///< prepares the program was asked for

  SessionStats& operator+=(const SessionStats& o) {
    heartbeats_ok += o.heartbeats_ok;
    declared_dead += o.declared_dead;
    relists += o.relists;
    releases += o.releases;
    grants += o.grants;
    drains += o.drains;
    prepares += o.prepares;
    return *this;
  }
};

/// Jittered exponential backoff: the n-th wait is uniform in [d/2, d] with
/// d = min(max, base * 2^n) ("full jitter" halved, so waits never collapse to 0).
class Backoff {
 public:
  Backoff(std::chrono::milliseconds base, std::chrono::milliseconds max) : base_(base), max_(max) {}
  std::chrono::milliseconds next(SessionIo& io);
  void reset() { attempt_ = 0; }

 private:
  std::chrono::milliseconds base_, max_;
  int attempt_ = 0;
};

class SessionCore {
 public:
  /// `fence` (loaded from the durable store), `clock` and `io` must outlive
  /// the core. Nothing is sent before start().
  SessionCore(SessionCoreConfig config, FenceState& fence, const Clock& clock, SessionIo& io);
  SessionCore(const SessionCore&) = delete;
  SessionCore& operator=(const SessionCore&) = delete;

  /// Registers, and heartbeats every interval from then on.
  void start();
  /// Graceful end: stops every loop, sends leave (bounded by `timeout`)
  /// and, if the controllers accepted it, drops every grant durably.
  /// `done(left)` runs once.
  void leave(std::chrono::milliseconds timeout, std::function<void(bool left)> done);

  // The watch stream opened by SessionIo::open_watch(gen, ...).
  /// The stream answered 200.
  void on_watch_open(uint64_t gen);
  /// Lines arrived (one durable batch).
  void on_watch_batch(uint64_t gen, WatchBatch batch);
  void on_watch_end(uint64_t gen, WatchEnd why, int http_status);

  /// Registered and re-listed since the last (re-)registration: the fence
  /// may serve (under a valid lease).
  bool synced() const { return synced_; }
  bool registered() const { return registered_; }
  /// Leaving, or stopped after a storage failure.
  bool stopping() const { return stopping_; }
  bool failed() const { return failed_; }
  const SessionStats& stats() const { return stats_; }
  const LeaseLedger& ledger() const { return leases_; }

 private:
  using Then = std::function<void()>;
  // session_core.cc: register, heartbeat, lease, re-list, release, leave.
  void schedule_tick();
  void tick();
  void send_register();
  void send_heartbeat();
  void handle_lease_reply(const Reply& r, bool is_register);
  void apply_lease_answer(const Reply& r, bool is_register);
  void extend_lease(const Reply& r);
  /// Stops serving (lease invalid) and registers again; `drop_grants`
  /// also forgets every grant for good (the worker was declared dead).
  void lost_registration(const std::string& reason, bool drop_grants);
  void start_relist();
  void fetch_relist_page(const std::string& token);
  void on_relist_page(Reply r);
  void on_relist(std::shared_ptr<ShardList> list);
  void schedule_relist();
  void send_release(std::vector<ShardEpoch> shards, int attempt = 0);
  /// A release or a prepared: in chunks, retried a few times when unconfirmed.
  void send_shards(CallKind kind, std::vector<ShardEpoch> shards, int attempt);
  /// Persists `c`, installs it, then runs `then` (not after a storage failure).
  void commit(std::shared_ptr<GrantChanges> c, Then then);
  void installed(const GrantChanges& c);
  /// What `c` changes for the program against the table as it is now.
  std::vector<ProgramChange> program_changes(const GrantChanges& c) const;
  /// Starts the drains `c` held back; each ends in finish_drain().
  void start_drains(const GrantChanges& c);
  void finish_drain(const ShardEpoch& s);
  /// Drops and releases every drain finished since the last flush, at once.
  void flush_drains();
  /// Asks the program to prepare what the watch said is coming here.
  void start_prepares(const std::vector<ShardEpoch>& prepares);
  void finish_prepare(const ShardEpoch& s);
  /// Tells the controllers, in one call, every prepare finished since the last.
  void flush_prepares();
  /// The program prepared `s` long ago and it never came: tell it so.
  void check_prepare_abandoned(const ShardEpoch& s);
  void fatal(const std::string& message);
  void refresh_lease();
  /// Tells the program when the lease it was serving under is gone.
  void check_lease_lost();
  void check_watch_lag(Revision heartbeat_revision, Revision worker_revision);
  std::shared_ptr<GrantChanges> changes() const;
  void log(LogLevel level, const std::string& fields) const;
  // session_core_watch.cc: the watch.
  void start_watch(Revision from);
  void stop_watch();
  void process_events(uint64_t gen, WatchBatch batch);
  void schedule_watch_reconnect();

  const SessionCoreConfig config_;
  const SessionTimings& t_;
  FenceState& fence_;
  const Clock& clock_;
  SessionIo& io_;

  bool stopping_ = false;
  bool failed_ = false;
  bool registered_ = false;
  bool synced_ = false;
  bool register_inflight_ = false;
  bool heartbeat_inflight_ = false;
  bool relist_inflight_ = false;
  bool heartbeat_failing_ = false;
  /// Bumped on every loss of registration: replies to older calls are ignored.
  uint64_t session_gen_ = 1;
  /// Extensions from acknowledged heartbeats/registers, each waiting for the
  /// grant table to reach its answer's worker revision.
  LeaseLedger leases_;
  uint32_t lease_ms_ = 0;
  /// When the next tick is due (a late one means the process was paused).
  std::optional<SteadyTime> tick_due_;
  Backoff relist_backoff_;
  /// The pages of the relist in flight, concatenated; its revision is the
  /// first page's (see on_relist_page).
  ShardList relist_pages_;
  size_t relist_page_count_ = 0;

  // The watch.
  bool watch_open_ = false;
  uint64_t watch_gen_ = 0;
  Backoff watch_backoff_;
  /// A heartbeat showed a revision the watch had not reached, since when.
  std::optional<std::pair<Revision, SteadyTime>> watch_lag_;

  /// Shards the program is draining (by id): the epoch, and whether it
  /// finished (then the next batch drops and releases it).
  struct Drain {
    Epoch epoch;
    bool finished = false;
  };
  std::map<std::string, Drain> draining_;
  std::vector<ShardEpoch> finished_drains_;
  /// The lease was valid (synced) when last looked at: a loss is told once.
  bool lease_was_valid_ = false;
  bool drain_flush_scheduled_ = false;
  /// Shards the program is preparing, by id: the grant epoch to come.
  std::map<std::string, Epoch> preparing_;
  std::vector<ShardEpoch> finished_prepares_;
  bool prepare_flush_scheduled_ = false;

  SessionStats stats_;
};

}  // namespace tenure::agent
