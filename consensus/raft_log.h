#pragma once
// The member's view of the replicated log: a snapshot, then the entries after
// it, with three marks: what is persisted (stable), committed and applied.
// Every uncompacted entry's index and term stay in memory; the driver
// persists the entries and compacts them through snapshots. Payloads of
// entries both stable and applied may be let go (release_payloads) and are
// then read back from the durable log when a lagging follower needs them:
// at 1,000,000 shards the log between two snapshots held up to 64 MiB that
// only a follower far behind would ever read (issue 11).

#include <optional>
#include <vector>

#include "consensus/message.h"

namespace tenure::consensus {

/// Where released payloads are read back from: the member's durable log.
/// Only entries that are stable (persisted) and applied (so committed, never
/// to change) are released, so the store holds exactly them.
class EntryReader {
 public:
  virtual ~EntryReader() = default;
  /// The stored entries [lo, hi], in order: `lo` always, then as many as fit
  /// `max_bytes` counting each payload plus `overhead_bytes`.
  virtual std::vector<Entry> read_entries(LogIndex lo, LogIndex hi, size_t max_bytes, size_t overhead_bytes) = 0;
};

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
  /// The entry at `i` (read back if its payload was released); requires
  /// first_index() <= i <= last_index().
  Entry entry(LogIndex i) const;
  /// Payload bytes of the entry at `i`, which must be held in memory.
  size_t payload_size(LogIndex i) const;
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

  /// Lets go of the payloads of the oldest entries that are stable and
  /// applied until at most `keep_bytes` of payload stay in memory (or none
  /// of those is left). Does nothing without a reader.
  void release_payloads(size_t keep_bytes);
  void set_reader(EntryReader* reader) { reader_ = reader; }
  /// Payload bytes held in memory.
  size_t resident_bytes() const { return resident_bytes_; }
  /// Entries up to here have their payloads released (offset when none).
  LogIndex released_through() const { return released_; }
  /// Entries read back from the store so far (for a follower further
  /// behind than the payloads kept): a metric.
  uint64_t read_back_entries() const { return read_back_entries_; }

  /// Replaces the whole log by `snap` (a snapshot received from the leader).
  void restore(Snapshot snap);
  /// Records a snapshot the application took at `snap.index` (<= applied) and
  /// drops entries up to `compact_to` (<= snap.index).
  void compact(Snapshot snap, LogIndex compact_to);
  /// Lets go of the snapshot's data if it is still the one at `index`: the
  /// member's store holds it (a sender reads it from there).
  void release_snapshot_data(LogIndex index) {
    if (snapshot_.index == index) snapshot_.data.reset();
  }

 private:
  const Entry& at(LogIndex i) const { return entries_[i.value() - offset_.value() - 1]; }
  void truncate_after(LogIndex i);
  /// [lo, hi] (all released) from the reader, checked against our terms.
  std::vector<Entry> read_back(LogIndex lo, LogIndex hi, size_t max_bytes, size_t overhead_bytes) const;

  Snapshot snapshot_;
  LogIndex offset_;   ///< index of the entry just before entries_[0]
  Term offset_term_;  ///< its term
  std::vector<Entry> entries_;
  LogIndex committed_;
  LogIndex applied_;
  LogIndex stable_;
  LogIndex released_;          ///< payloads of entries (offset_, released_] are not in memory
  mutable uint64_t read_back_entries_ = 0;
  size_t resident_bytes_ = 0;  ///< payload bytes of entries_ held in memory
  EntryReader* reader_ = nullptr;
};

}  // namespace tenure::consensus
