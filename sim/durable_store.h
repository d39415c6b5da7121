#pragma once
// What one simulated member has durably written: hard state, snapshot and
// log entries, with the Ready contract's semantics (the in-memory stand-in
// for the controller's SQLite storage). A crash keeps exactly this; the
// Raft object, the state machine and everything not yet persisted are lost.

#include <optional>
#include <string>
#include <vector>

#include "consensus/raft.h"

namespace tenure::sim {

using consensus::Entry;
using consensus::HardState;
using consensus::InitialState;
using consensus::LogIndex;
using consensus::Ready;
using consensus::Snapshot;
using consensus::Term;

class DurableStore {
 public:
  void set_initial(const InitialState& s);
  /// Persists the durable parts of `rd` (hard state, snapshot, then entries,
  /// replacing any stored suffix they overlap). Returns a description of a
  /// Ready that breaks the contract (entries that leave a gap), else nullopt.
  /// `with_hard_state` false leaves the stored hard state alone (a driver
  /// skipping a Ready that only moves the commit index, which needs no fsync).
  std::optional<std::string> persist(const Ready& rd, bool with_hard_state = true);
  /// Records a snapshot the member took itself and drops entries <= compact_to.
  void compact(const Snapshot& snap, LogIndex compact_to);
  /// What the member restarts from.
  InitialState initial_state() const;

  const HardState& hard_state() const { return hard_state_; }
  const Snapshot& snapshot() const { return snapshot_; }
  const std::vector<Entry>& entries() const { return entries_; }
  LogIndex last_index() const;
  /// Term of the stored entry at `i` (or of the snapshot when i is its index).
  std::optional<Term> term(LogIndex i) const;
  /// Stored entries [lo, hi]: `lo`, then as many as fit `max_bytes`
  /// (payload plus `overhead_bytes` each); empty when `lo` is not stored.
  std::vector<Entry> read(LogIndex lo, LogIndex hi, size_t max_bytes, size_t overhead_bytes) const;
  /// Whether index `i` with term `t` is durable: stored with that term, or
  /// covered by the stored snapshot.
  bool covers(LogIndex i, Term t) const;

 private:
  HardState hard_state_;
  Snapshot snapshot_;
  std::vector<Entry> entries_;  ///< contiguous; may start at or below the snapshot index
};

}  // namespace tenure::sim
