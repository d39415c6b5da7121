#pragma once
// Each shard's history of owners, in SQLite (data_dir/history.db), off the
// Raft strand and out of RAM (controlplane/history.h says why).
//
// The state machine records changes on the strand as it applies; they are
// buffered and handed to the store's writer thread once per applied entry
// (submit). The writer batches whatever is queued into one transaction
// (synchronous=NORMAL: no fsync of its own), keeps the newest
// `per_shard` records of each shard, and answers reads in order with the
// writes, so a read asked after an apply sees that apply's records.
//
// Durability is tied to the member's snapshots rather than to each commit.
// History is a projection of the log: after a crash the member replays its
// log from its snapshot and records again what it applies (a record is
// keyed by shard and revision, so records written twice are one). What
// must be durable is everything up to the snapshot, before the log below
// it is dropped: sync_through(revision) waits for an fsynced commit that
// covers it, and the member calls it before it records a snapshot.
//
// What no log replay can bring back is the history before a leader's
// snapshot that a member installed (a new member, or one that fell behind
// the leader's log): the snapshot carries each shard's state, not its
// history (a million shards that moved 32 times each make 32 million
// records). The store then drops its records and notes a gap: records up
// to that revision may be missing here (gap_through). The API forwards a
// history read from such a member to the leader, and says so when the
// leader has a gap too; meanwhile the member copies the leader's records
// up to the gap in pages (export_page on the leader, import_page here:
// api/history_backfill.h) and the gap closes.
//
// Failures are fatal, as for the Raft log (storage_fatal).

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "controlplane/history.h"
#include "storage/sqlite.h"


namespace tenure::member {

class HistoryStore final : public controlplane::HistorySink {
 public:
  /// Records of a shard, oldest first, and the store's gap (0: none).
  struct Answer {
    std::vector<controlplane::HistoryRecord> records;
    controlplane::Revision gap_through;
  };

  /// How far the writer may fall behind before an apply's records are
  /// dropped and noted as a gap (filled later from the leader, like an
  /// installed snapshot's): the writer keeps up with hundreds of thousands
  /// of records a second, and a fleet that changes faster for long must
  /// not grow the controller's memory without end, nor stall its Raft
  /// strand waiting for a disk. Records bound the backlog's time to write
  /// (500,000: ~20 MB encoded with short ids); bytes (the changes encoded,
  /// and each queued job's own size) bound its memory at any id length,
  /// where 500,000 records with the longest ids the API takes (128-character
  /// shards, 64-character workers) would be ~140 MB.
  struct QueueBound {
    size_t records = 500000;
    size_t bytes = size_t{64} << 20;
  };

  /// Opens (creating) data_dir/history.db and starts the writer; fatal on
  /// failure. `bound`: the default but in tests.
  HistoryStore(const std::string& data_dir, size_t per_shard, QueueBound bound);
  HistoryStore(const std::string& data_dir, size_t per_shard) : HistoryStore(data_dir, per_shard, QueueBound{}) {}
  /// Writes what was submitted, then stops the writer (reads still queued
  /// are answered first).
  ~HistoryStore() override;
  HistoryStore(const HistoryStore&) = delete;
  HistoryStore& operator=(const HistoryStore&) = delete;

  // HistorySink, on the applying thread: buffered until submit().
  void record(const controlplane::ShardId& shard, const controlplane::HistoryRecord& h) override;
  void erase(const controlplane::ShardId& shard, controlplane::Revision revision) override;

  /// Hands what was recorded since the last call to the writer; the state
  /// is now at `revision`. Applying thread only.
  void submit(controlplane::Revision revision);
  /// At start, once the member's own snapshot is restored at `revision`
  /// (what restore() recorded, from a snapshot of an older format, is
  /// submitted): if this file had not been written through it (it was
  /// lost), records up to it are a gap.
  void opened_at(controlplane::Revision revision);
  /// The state was replaced by a leader's snapshot at `revision`: every
  /// record goes (their shards may be gone), and the gap reaches `revision`.
  void reset(controlplane::Revision revision);
  /// Blocks until everything submitted through `revision` is on disk
  /// (fsynced). Any thread but the writer's.
  void sync_through(controlplane::Revision revision);
  /// Runs `done` on the writer's thread with `shard`'s records, after
  /// everything submitted before this call is written. Thread-safe.
  void read(const controlplane::ShardId& shard, std::function<void(Answer)> done);

  /// Records written to the file so far; for tests and metrics.
  uint64_t records_written() const;
  /// Records the writer decodes and writes at a time (its transient memory).
  static constexpr size_t kWriteSlice = 8192;
  /// Records dropped so far (queue full); for tests and metrics.
  uint64_t records_dropped() const;
  /// The writer's counts at one moment (one lock), for metrics.
  struct Counts {
    size_t queued = 0;        ///< records submitted, not yet written
    size_t queued_bytes = 0;  ///< what they hold (QueueBound::bytes)
    uint64_t written = 0;
    uint64_t dropped = 0;
  };
  Counts counts() const;
  /// The gap as of the last write (0: none). Thread-safe.
  controlplane::Revision gap_through() const;

  /// One page of records for a member that fills its gap: records with
  /// revision <= `through`, after (after_shard, after_revision) in (shard,
  /// revision) order, at most `limit`.
  struct Page {
    std::vector<std::pair<controlplane::ShardId, controlplane::HistoryRecord>> records;
    bool more = false;                  ///< `limit` records were returned: ask again after the last
    controlplane::Revision gap_through;  ///< this store's own gap
  };
  /// Runs `done` on the writer's thread. Thread-safe.
  void export_page(controlplane::Revision through, const controlplane::ShardId& after_shard,
                   controlplane::Revision after_revision, size_t limit, std::function<void(Page)> done);
  /// Adds a page another member exported for this store's gap `gap` (the
  /// gap_through() the copy began with): records at or below it, of shards
  /// not deleted since it; existing records are kept. With `last`, the gap
  /// shrinks to the exporter's (`page.gap_through`). Ignored (done(false))
  /// if the gap changed meanwhile (another snapshot was installed). Runs
  /// `done` on the writer's thread. Thread-safe.
  void import_page(controlplane::Revision gap, Page page, bool last, std::function<void(bool)> done);

 private:
  struct Change {
    controlplane::ShardId shard;
    controlplane::HistoryRecord record;
    bool erase = false;  ///< erase records of `shard` before record.revision
  };
  /// Changes queued for the writer, encoded (common/codec.h): ~40 bytes a
  /// record with short ids instead of ~200 as structs with their strings
  /// (a million shards created at once queue that many).
  /// What a record encodes beside its three ids, at most: their three
  /// lengths, flags, revision, epoch, reason and three times as varints.
  static constexpr size_t kMaxEncodedFields = 3 * 5 + 1 + 10 + 10 + 1 + 3 * 10;
  struct Packed {
    std::string bytes;
    size_t count = 0;
    void add(const Change& c);
    /// Appends the changes to `out`, in order.
    void unpack_into(std::vector<Change>& out) const;
  };
  struct Job {
    /// kBehind: records up to `revision` were dropped (the queue was full):
    /// the gap reaches it, the records kept stay; `changes` holds the
    /// deletions among them, which are not dropped.
    enum Kind { kChanges, kReset, kRead, kExport, kImport, kBehind } kind = kChanges;
    Packed changes;
    /// kChanges, kBehind: what the job holds while queued (its changes'
    /// bytes and itself), counted against QueueBound::bytes.
    size_t footprint = 0;
    controlplane::Revision revision;  ///< kChanges: the state's revision after them; kReset: the gap; kExport: through; kImport: the gap it fills
    controlplane::ShardId shard;      ///< kRead; kExport: after this shard
    std::function<void(Answer)> done;
    controlplane::Revision after_revision;  ///< kExport
    size_t limit = 0;                       ///< kExport
    std::function<void(Page)> exported;     ///< kExport
    Page page;                              ///< kImport
    bool last = false;                      ///< kImport
    std::function<void(bool)> imported;     ///< kImport
  };

  void run();
  void write(std::deque<Job>& jobs);
  Answer read_now(const controlplane::ShardId& shard);
  /// One change inside the open transaction; 1 if it wrote a record.
  uint64_t write_change(const Change& c);
  /// Adds `h` to the file and to its shard's head, letting go of the
  /// oldest records past per_shard_. `replace`: over a record with the same
  /// key (a replayed apply); otherwise an existing one is kept.
  void add_record(const controlplane::ShardId& shard, const controlplane::HistoryRecord& h, bool replace);
  void drop_record(const controlplane::ShardId& shard, uint64_t revision);
  /// Drops `shard`'s records older than `before`.
  void erase_records(const controlplane::ShardId& shard, controlplane::Revision before);
  /// The revisions of `shard`'s records, ascending.
  std::vector<uint64_t> head(const controlplane::ShardId& shard);
  void set_head(const controlplane::ShardId& shard, const std::vector<uint64_t>& revisions);
  /// Moves an earlier layout's records over (in the constructor).
  void open_layout();
  /// Whether `sql` (a query) returns a row.
  bool query_one(const char* sql);
  /// Adds every record of the old table `table`, then drops it.
  void move_old_records(const char* table);
  Page export_now(const Job& job);
  /// kImport inside the open transaction; false when the gap moved on.
  bool import_now(const Job& job);
  controlplane::HistoryRecord record_at(const storage::Statement& s, int first_column);
  void bind_record(storage::Statement& s, const controlplane::ShardId& shard, const controlplane::HistoryRecord& h,
                   const char* op);
  /// An fsynced commit noting the file written through `through`.
  void make_durable(controlplane::Revision through);
  void enqueue(Job job);
  void set_meta(const char* key, uint64_t value);
  storage::StatementRef stmt(const char* sql, const char* op);
  uint64_t get_meta(const char* key);

  const size_t per_shard_;
  const QueueBound bound_;
  std::unique_ptr<storage::Database> db_;  ///< the writer's (and the constructor's, before it starts)
  std::vector<Change> pending_;   ///< applying thread only
  /// Empties pending_, letting go of its memory past kKeptPendingCapacity.
  void release_pending();
  static constexpr size_t kKeptPendingCapacity = 4096;
  controlplane::Revision written_at_open_;
  controlplane::Revision gap_;  ///< writer only (and the constructor)
  /// Writer only: shards deleted since the gap began (an exported page may
  /// predate the deletion at the exporter; their old records stay out).
  std::set<controlplane::ShardId> erased_in_gap_;
  std::atomic<uint64_t> gap_seen_{0};  ///< gap_, for other threads
  controlplane::Revision written_rev_;  ///< writer only: the file is written through it

  mutable std::mutex mu_;
  std::condition_variable wake_;     ///< the writer: a job, a sync wanted, stopping
  std::condition_variable durable_cv_;
  std::deque<Job> jobs_;
  controlplane::Revision submitted_;     ///< the revision of the last job queued
  controlplane::Revision want_durable_;  ///< the highest revision sync_through() waits for
  controlplane::Revision durable_;
  uint64_t records_written_ = 0;
  uint64_t records_dropped_ = 0;
  size_t queued_records_ = 0;  ///< in jobs not yet written
  size_t queued_bytes_ = 0;    ///< their footprints
  bool behind_ = false;        ///< applying thread only: dropping since the last warning
  bool stopping_ = false;
  std::thread writer_;
};

}  // namespace tenure::member
