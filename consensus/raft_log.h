#pragma once
// The member's view of the replicated log: a snapshot, then the entries after
// it, with three marks: what is persisted (stable), committed and applied.
// The whole uncompacted suffix is kept in memory; the driver persists it and
// compacts it through snapshots, so its size is bounded by the snapshot
// threshold.

#include <optional>
#include <vector>

#include "consensus/message.h"

namespace tenure::consensus {

class RaftLog {
 public:
  /// Starts from what was persisted: a snapshot (possibly empty, index 0)
  /// and the entries that follow it, all of them stable.
  RaftLog(Snapshot snapshot, std::vector<Entry> entries, LogIndex commit);

  LogIndex first_index() const { return offset_.next(); }
  LogIndex last_index() const { return offset_.plus(entries_.size()); }
  Term last_term() const { return *term(last_index()); }
  LogIndex committed() const { return committed_; }
  LogIndex applied() const { return applied_; }
  LogIndex stable() const { return stable_; }
  const Snapshot& snapshot() const { return snapshot_; }

  /// Term of the entry at `i`; nullopt when `i` is compacted away or past the end.
  std::optional<Term> term(LogIndex i) const;
  /// The entry at `i`; requires first_index() <= i <= last_index().
  const Entry& entry(LogIndex i) const;
  bool matches(LogIndex i, Term t) const { auto tt = term(i); return tt && *tt == t; }

  /// The thesis §3.6.1 comparison: is (last_index, last_term) at least as up to date as ours?
  bool is_up_to_date(LogIndex index, Term t) const;

  /// Appends entries the leader created itself; they follow last_index().
  void append(std::vector<Entry> entries);

  /// The follower side of AppendEntries (§3.5): if our log has (prev, prev_term),
  /// merges `entries` (truncating from the first conflict) and returns the index
  /// of the last new entry; nullopt when the consistency check fails.
  std::optional<LogIndex> maybe_append(LogIndex prev, Term prev_term, std::vector<Entry> entries);

  /// Fast backtracking: the largest index <= `index` whose term is <= `t`.
  LogIndex find_conflict_by_term(LogIndex index, Term t) const;

  /// Copies entries [from, last] whose payload, plus `overhead_bytes` per
  /// entry, fits `max_bytes` (at least one). Requires from >= first_index().
  std::vector<Entry> entries_from(LogIndex from, size_t max_bytes, size_t overhead_bytes = 0) const;
  /// Entries in [lo, hi], copied. Requires first_index() <= lo.
  std::vector<Entry> slice(LogIndex lo, LogIndex hi) const;

  /// Entries not yet persisted, in order.
  std::vector<Entry> unstable_entries() const;
  /// Committed entries not yet applied, in order.
  /// Committed entries not yet applied, at most `max_bytes` of payload
  /// (at least one entry; 0: all of them).
  std::vector<Entry> next_committed_entries(size_t max_bytes = 0) const;
  bool has_unstable() const { return stable_ < last_index(); }
  bool has_next_committed() const { return applied_ < committed_; }

  void commit_to(LogIndex i);
  void applied_to(LogIndex i);
  void stable_to(LogIndex i);

  /// Replaces the whole log by `snap` (a snapshot received from the leader).
  void restore(Snapshot snap);
  /// Records a snapshot the application took at `snap.index` (<= applied) and
  /// drops entries up to `compact_to` (<= snap.index).
  void compact(Snapshot snap, LogIndex compact_to);

 private:
  const Entry& at(LogIndex i) const { return entries_[i.value() - offset_.value() - 1]; }
  void truncate_after(LogIndex i);

  Snapshot snapshot_;
  LogIndex offset_;   ///< index of the entry just before entries_[0]
  Term offset_term_;  ///< its term
  std::vector<Entry> entries_;
  LogIndex committed_;
  LogIndex applied_;
  LogIndex stable_;
};

}  // namespace tenure::consensus
