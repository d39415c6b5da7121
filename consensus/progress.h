#pragma once
// What a leader knows of each follower's log (thesis §3.5 nextIndex and
// matchIndex), plus the flow control of etcd-io/raft: a follower is probed
// one message at a time until its match is known, then replicated to with a
// bounded window of pipelined appends, or sent a snapshot.

#include <cstddef>
#include <deque>

#include "consensus/types.h"

namespace tenure::consensus {

/// A bounded window of in-flight appends, each remembered by its last index.
class Inflights {
 public:
  explicit Inflights(size_t capacity) : capacity_(capacity) {}
  bool full() const { return items_.size() >= capacity_; }
  size_t count() const { return items_.size(); }
  void add(LogIndex last) { items_.push_back(last); }
  /// Frees every in-flight append whose last index is <= `index`.
  void free_le(LogIndex index) {
    while (!items_.empty() && items_.front() <= index) items_.pop_front();
  }
  void free_first() { if (!items_.empty()) items_.pop_front(); }
  void reset() { items_.clear(); }

 private:
  size_t capacity_;
  std::deque<LogIndex> items_;
};

enum class ProgressState { kProbe, kReplicate, kSnapshot };
const char* to_string(ProgressState s);

struct Progress {
  explicit Progress(size_t max_inflight) : inflights(max_inflight) {}

  LogIndex match;
  LogIndex next;
  ProgressState state = ProgressState::kProbe;
  /// Probe state: an append is outstanding; wait for its answer or a heartbeat.
  bool probe_sent = false;
  /// Snapshot state: the index of the snapshot being sent.
  LogIndex pending_snapshot;
  /// Ticks spent in the snapshot state; a snapshot lost in transit is retried.
  int snapshot_ticks = 0;
  /// Heard from since the last check-quorum round (§6.2).
  bool recent_active = false;
  bool learner = false;
  Inflights inflights;

  void become_probe();
  void become_replicate();
  void become_snapshot(LogIndex snapshot_index);
  /// Records an acknowledged match; returns whether anything moved.
  bool maybe_update(LogIndex n);
  /// Handles a rejection of the append that followed `rejected`, using the
  /// follower's hint; returns false when the rejection is stale.
  bool maybe_decrease_to(LogIndex rejected, LogIndex match_hint);
  /// Whether the leader should hold further appends back.
  bool paused() const;
  /// Records that an append carrying entries up to `last` (or none) was sent.
  void sent_append(bool has_entries, LogIndex last);
};

}  // namespace tenure::consensus
