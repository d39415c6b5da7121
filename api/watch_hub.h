#pragma once
// Watch streams (GET /v1/watch): ndjson events after a revision, from this
// member's applied state. Every watcher lives on the RaftNode's strand and is
// fed after each applied batch; a consumer that falls too far behind gets a
// final error line and is cut off instead of being buffered without bound.
//
// Catching up from an old revision (up to Limits::events_kept, 200,000
// events) is paced so that it never holds the strand long (issue 8): one pass
// copies the events of at most kEventsPerPass log entries, the lines are
// written on an I/O thread, and only then does the next pass run (a fresh
// strand task); while more than kPaceBytes wait unsent, the watcher waits for
// the next tick instead.
//
// Thousands of agents each watch their own worker's events (issue 11 §3:
// 10,000 workers). After an apply, only the watchers the new events concern
// are visited: the hub reads the new events once, and a watcher of a worker
// that none of them names stays "in sync" without being touched. Visiting
// every watcher after every apply (and posting a task for each) made a
// registration storm of 10,000 workers cost O(workers²) on the strand and
// cost the group its leader.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "member/raft_node.h"
#include "net/http_server.h"

namespace tenure::api {

class ControllerApi;

class WatchHub {
 public:
  WatchHub(member::RaftNode& node, prometheus::Registry& registry);
  /// At most `max_streams` open watches on this member (limits.max_watch_streams);
  /// past it a new watch gets 503 busy with Retry-After. Set before serving.
  void set_max_streams(size_t max_streams);
  void add_routes(ControllerApi& api);
  /// Strand only: new entries were applied.
  void on_applied();
  /// Strand only: periodic progress lines keep idle streams observably alive.
  void on_tick();

  /// Unsent bytes above which a watcher is cut off.
  static constexpr size_t kMaxQueuedBytes = 8 << 20;
  /// Unsent bytes above which no further pass runs until the next tick.
  static constexpr size_t kPaceBytes = 1 << 20;
  /// Log entries examined per watcher per pass (keeps one pass short on the strand).
  static constexpr size_t kEventsPerPass = 2048;

 private:
  struct Watcher {
    controlplane::WorkerId worker;  ///< empty: every event
    controlplane::Revision after;   ///< everything up to here was sent (or is being written)
    std::shared_ptr<net::Responder> res;
    uint64_t last_write_ms = 0;
    /// A pass is under way (its lines being written off the strand, or its
    /// follow-up posted): its completion runs the next one, nobody else does.
    bool pass_pending = false;
    /// Caught up with every event concerning it up to the hub's dispatched_
    /// revision, although `after` may be older: nothing concerning it was
    /// applied since its last pass reached the end.
    bool in_sync = false;
  };
  void open(const std::shared_ptr<net::Responder>& res, controlplane::WorkerId worker, controlplane::Revision after);
  /// Runs one pass for watcher `id` if it is behind and not writing; closes
  /// it when it is gone, compacted away or too slow. Strand only.
  void pump(uint64_t id);
  /// The end of a pass: clears pass_pending and runs the next one.
  void resume(uint64_t id);
  void close(uint64_t id, Watcher& w, const std::string& error, const std::string& message);
  /// Writes `events` (all of w's up to `to`) as one pass.
  void send(uint64_t id, Watcher& w, std::shared_ptr<const std::vector<controlplane::Event>> events,
            controlplane::Revision to);
  void forget(uint64_t id);
  /// Where watcher `w` stands: its `after`, or dispatched_ when in sync.
  controlplane::Revision position(const Watcher& w) const;

  member::RaftNode& node_;
  prometheus::Gauge& open_streams_;
  prometheus::Gauge& max_streams_gauge_;
  prometheus::Counter& refused_;
  size_t max_streams_ = 4096;
  std::map<uint64_t, Watcher> watchers_;
  /// Filtered watchers by worker id, and the unfiltered ones (every event).
  std::unordered_map<std::string, std::vector<uint64_t>> by_worker_;
  std::set<uint64_t> unfiltered_;
  /// Watchers whose catch-up waits for their socket to drain (pump()).
  std::set<uint64_t> paced_;
  /// Each watched worker's events as the fan-out in on_applied saw them:
  /// every event of the worker after `from`, up to dispatched_. A watcher
  /// of that worker at or past `from` catches up from here instead of
  /// scanning everyone's events: while 100,000 shards were granted over
  /// 10,000 workers, each watcher that was still writing its last pass
  /// rescanned the whole batch, O(watchers × events), 18 % of the leader's
  /// CPU on its strand (fleet_load, perf), and heartbeats waited up to 1 s.
  struct WorkerLog {
    controlplane::Revision from;
    std::vector<controlplane::Event> events;  ///< empty for most workers: allocates nothing
  };
  std::unordered_map<std::string, WorkerLog> worker_logs_;
  /// Events a worker's log keeps at most for a watcher that lags; one that
  /// falls further behind catches up by scanning, as before.
  static constexpr size_t kWorkerLogMax = 4 * kEventsPerPass;
  /// One pass for a filtered watcher from its worker's log; false when the
  /// log does not reach back to the watcher's position.
  bool pump_from_log(uint64_t id, Watcher& w);
  /// The oldest position among `worker`'s watchers (dispatched_ at most).
  controlplane::Revision lowest_position(const std::string& worker) const;
  /// Drops from a worker's log what every watcher of it has passed (all are
  /// at `lowest` or past it: lowest_position), and the oldest past kWorkerLogMax.
  void trim_log(WorkerLog& log, controlplane::Revision lowest);
  /// Adds a fan-out's new events of `worker` (after its watchers had their
  /// share): only what one of them still lacks is copied.
  void extend_log(const std::string& worker, const std::vector<controlplane::Event>& fresh);
  /// Every event up to here was handed to the watchers it concerns; equal
  /// to the state's revision between strand tasks once set.
  controlplane::Revision dispatched_;
  bool dispatched_set_ = false;
  uint64_t ticks_ = 0;
  uint64_t next_id_ = 1;
};

}  // namespace tenure::api
