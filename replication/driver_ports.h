#pragma once
// What the Raft driver (raft_driver.h) needs from the world, as narrow
// interfaces (DESIGN.md: adapters at the edge). The controller implements
// them with an Asio strand, a persist thread, SQLite, HTTP and Prometheus
// (controller/raft_node.cc); the simulator with its event queue, a store
// that loses what was not synced, its network and its checkers
// (sim/node.cc). The driver between them is the same code in both: the
// simulator proves the loop production runs (issue 10).

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "consensus/raft.h"

namespace tenure::replication {

/// Where and when the driver's work runs. Everything the driver does runs
/// on one serial context (the controller's strand; the simulator's event
/// loop), except the durable writes, which run on a context of their own
/// (the controller's persist thread; a separately scheduled simulator
/// event) so that the serial context keeps stepping messages and taking
/// proposals while an fsync runs.
class Executor {
 public:
  virtual ~Executor() = default;
  /// Runs `fn` later on the serial context, never inside the caller.
  /// Thread-safe (persist jobs and snapshot makers post their results).
  virtual void post(std::function<void()> fn) = 0;
  /// Runs `job` off the serial context; jobs run one at a time, in
  /// submission order. A job hands its result back with post().
  virtual void persist(std::function<void()> job) = 0;
  /// Steady time, for deadlines and retries (the core has its own ticks).
  virtual uint64_t now_ms() const = 0;
  virtual uint64_t now_ns() const = 0;
};

/// The durable Raft log, vote and snapshot row (storage/raft_storage.h in
/// production; sim/durable_store.h in the simulator). Failures do not
/// return: nothing unpersisted may ever be acknowledged.
///
/// As a consensus::EntryReader it serves the payloads the core released
/// (RaftConfig::max_resident_log_bytes) on the serial context, while a
/// persist job may be running on its own: only stable, applied entries are
/// asked for, and their rows change no more until compaction, which the
/// core performs in memory before the store deletes them.
class LogStore : public consensus::EntryReader {
 public:
  virtual ~LogStore() = default;
  virtual bool empty() const = 0;
  virtual consensus::InitialState load() = 0;
  /// First start of a bootstrapping member: its initial log, durable before
  /// the core may act on it.
  virtual void bootstrap(const consensus::InitialState& state) = 0;
  /// The durable parts of a Ready: one transaction, one fsync.
  virtual void persist(const consensus::Ready& rd) = 0;
  /// Records a snapshot this member made (its data already durable) and
  /// drops the entries up to `compact_to`.
  virtual void save_snapshot(const consensus::Snapshot& snapshot, consensus::LogIndex compact_to) = 0;
  /// Ends the process with one line naming `what` and the store.
  [[noreturn]] virtual void fatal(const std::string& what) = 0;
};

/// A snapshot a member made of its own state (off the serial context).
struct MadeSnapshot {
  /// With its data, durable; data null when making it failed short of a
  /// storage failure (out of memory, killed): tried again later.
  consensus::Snapshot snapshot;
  bool forked = false;    ///< false: encoded on the caller's thread
  uint64_t pause_us = 0;  ///< the serial context's share (the fork, or the whole encoding)
  uint64_t total_ms = 0;  ///< start to durable
};

/// A state decoded from a leader's snapshot, kept aside until the Ready that
/// installs it.
class StagedState {
 public:
  virtual ~StagedState() = default;
};

/// The replicated state machine, as the driver sees it.
class Machine {
 public:
  virtual ~Machine() = default;
  /// At start: the stored snapshot's data; false when it does not decode.
  virtual bool restore(const std::string& data) = 0;
  /// A leader's snapshot, decoded and checked before the core may make it
  /// durable; null when it does not decode. Leaves the state alone.
  virtual std::unique_ptr<StagedState> stage(const std::string& data) = 0;
  /// Replaces the state with one stage() made.
  virtual void install(std::unique_ptr<StagedState> staged) = 0;
  /// Applies one committed normal entry that carries data. What it returns
  /// to the proposer stays with the machine (the completion of the
  /// proposal at that index runs right after, on the same context). A
  /// committed entry that cannot be applied does not return.
  virtual void apply(const consensus::Entry& e) = 0;
  /// Starts a snapshot of the state as it is now, at `point` (its index,
  /// term and configuration); `done` runs once, on any thread. One at a time.
  virtual void make_snapshot(consensus::Snapshot point, std::function<void(MadeSnapshot)> done) = 0;
  /// About how many bytes a snapshot of the state would take now, in O(1)
  /// (DriverOptions::snapshot_threshold_bytes); 0 if unknown.
  virtual uint64_t approximate_snapshot_bytes() const { return 0; }
};

/// What happened, for metrics (the controller) and checkers (the
/// simulator). Every call but persisted() is on the serial context.
class DriverEvents {
 public:
  virtual ~DriverEvents() = default;
  /// Proposals refused or ended, by result (busy, too_large, not_leader,
  /// dropped, timeout, applied).
  virtual void proposals(const char* result, size_t count) { (void)result, (void)count; }
  virtual void committed(uint64_t latency_ns) { (void)latency_ns; }
  /// A linearizable read began, answered on the leader's lease ("lease")
  /// or by a heartbeat round ("read_index").
  virtual void read_started(const char* path) { (void)path; }
  virtual void queue_length(size_t proposals) { (void)proposals; }
  /// A Ready's durable parts were written (on the persist context).
  virtual void persisted(const consensus::Ready& rd, uint64_t ns) { (void)rd, (void)ns; }
  /// A peer message the driver or the core refused (label, sender, type, detail).
  virtual void dropped(const char* reason, const consensus::NodeId& from, const char* type,
                       const std::string& detail) {
    (void)reason, (void)from, (void)type, (void)detail;
  }
  /// The core accepted a message: `m` with its entries moved out (their
  /// count in `entries`), `raft` right after the step.
  virtual void stepped(const consensus::Message& m, size_t entries, const consensus::Raft& raft) {
    (void)m, (void)entries, (void)raft;
  }
  /// A Ready was cut (before any of its messages left).
  virtual void ready(const consensus::Ready& rd, const consensus::Raft& raft) { (void)rd, (void)raft; }
  /// A committed entry was applied (any type), before its proposer hears.
  virtual void applied(const consensus::Entry& e) { (void)e; }
  virtual void snapshot_installed(const consensus::Snapshot& s) { (void)s; }
  virtual void snapshot_taken(const MadeSnapshot& made, consensus::LogIndex compacted_to) {
    (void)made, (void)compacted_to;
  }
  /// After each batch of work on the serial context (the summary's moment).
  virtual void processed() {}
};

}  // namespace tenure::replication
