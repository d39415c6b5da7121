#pragma once
// What one simulated member has durably stored: the in-memory stand-in for
// the SQLite storage, with the same Ready-processing contract. A crash keeps
// exactly this and loses everything the Raft object held in memory.

#include <vector>

#include "consensus/raft.h"

namespace tenure::testing {

using namespace tenure::consensus;

class MemoryStorage {
 public:
  /// Persists the durable parts of a Ready, in the order the contract requires.
  void persist(const Ready& rd);
  /// Records a snapshot the member took itself and drops entries <= compact_to.
  void compact(const Snapshot& snap, LogIndex compact_to);
  /// What the member restarts from.
  InitialState initial_state() const;

  const HardState& hard_state() const { return hard_state_; }
  const Snapshot& snapshot() const { return snapshot_; }
  const std::vector<Entry>& entries() const { return entries_; }
  LogIndex last_index() const;
  /// Term of the stored entry at `i`, or 0 when not stored.
  Term term(LogIndex i) const;

  void set_initial(const InitialState& s);

 private:
  HardState hard_state_;
  Snapshot snapshot_;
  std::vector<Entry> entries_;
};

}  // namespace tenure::testing
