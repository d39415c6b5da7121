#pragma once
// Durable Raft state of one controller member in SQLite (data_dir/raft.db):
// hard state, log entries, the latest snapshot and a small key/value "meta"
// table. WAL mode with synchronous=FULL: every transaction's COMMIT is one
// fsync of the WAL, and each Ready is one transaction (group commit, DESIGN.md
// "Batching is the performance design").
//
// Failure policy (DESIGN.md, house style 5): a failed write, commit or
// fsync is fatal. The process logs one line `FATAL storage ...` to stderr
// and exits with status 1; no call returns as if it had persisted. A file
// that cannot be opened, is of an unknown schema version, is corrupt, or
// whose data_dir is locked by another process is fatal the same way.
//
// Threads: the writes and load() run on one thread at a time (the persist
// thread, and the strand at start). read_entries runs on the strand beside
// them, on a connection of its own (WAL: a reader sees committed rows and
// never blocks the writer). write_snapshot_file runs on any thread.

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "consensus/raft.h"
#include "replication/driver_ports.h"
#include "storage/sqlite.h"

namespace tenure::storage {

/// Knobs for tests; production uses the defaults.
struct RaftStorageOptions {
  /// SQLite VFS to open the file with; empty: the default. Tests use a VFS
  /// that injects write and fsync failures.
  std::string vfs;
};

class RaftStorage final : public replication::LogStore {
 public:
  /// The on-disk schema this build reads and writes (meta "schema_version").
  /// Version 2 stores a CRC32C with every entry and the snapshot; version
  /// 3 keeps the snapshot's bytes in a file of its own (snapshot_file.h).
  /// Versions 1 and 2 are migrated in place at open (one transaction).
  static constexpr int kSchemaVersion = 3;
  /// Meta keys reserved for the storage itself.
  static constexpr const char* kSchemaVersionKey = "schema_version";

  /// Opens data_dir/raft.db, creating data_dir (with parents) and the file
  /// if missing, and takes an exclusive lock (data_dir/LOCK) so two
  /// processes never share one data_dir. Fatal on any failure. Never null.
  static std::unique_ptr<RaftStorage> open(const std::string& data_dir, const RaftStorageOptions& options = {});
  ~RaftStorage() override;
  RaftStorage(const RaftStorage&) = delete;
  RaftStorage& operator=(const RaftStorage&) = delete;

  /// True when no Raft state (hard state, entry or snapshot) was ever
  /// persisted: a first start. The meta table does not count.
  bool empty() const override { return empty_; }

  /// What the member restarts from: the hard state, the snapshot (empty if
  /// none) and every stored entry after the snapshot, contiguous. Fatal if
  /// the stored log is inconsistent or a record fails its CRC32C check (one
  /// line naming the file and the index).
  consensus::InitialState load() override;

  /// Writes a brand-new group's state (consensus::bootstrap_state) in one
  /// transaction. Requires empty().
  void bootstrap(const consensus::InitialState& state) override;

  /// Persists the durable parts of a Ready in ONE transaction with one
  /// fsync, in the contract's order: hard state; snapshot (replaces the
  /// whole log); entries (stored entries at or after the first new index are
  /// dropped first, §3.5 conflict truncation). Returns only once durable;
  /// does nothing when the Ready holds nothing durable.
  void persist(const consensus::Ready& rd) override;

  /// Stores a snapshot this member took itself (Raft::compact) if newer than
  /// the stored one, in one small transaction without an fsync of its own:
  /// durable with the next persist(); a crash before it leaves the older
  /// snapshot and the whole log. Entries with index <= compact_to are
  /// deleted by the following persist() calls, a few hundred rows each (so
  /// that no Ready waits for a whole compaction). Its file is written first
  /// unless write_snapshot_file wrote it already.
  void save_snapshot(const consensus::Snapshot& snapshot, consensus::LogIndex compact_to) override;
  /// The stored entries [lo, hi] for the core's released payloads
  /// (consensus::EntryReader): `lo`, then as many as fit `max_bytes`. On the
  /// reading connection; fatal when a row is missing or fails its CRC.
  std::vector<consensus::Entry> read_entries(consensus::LogIndex lo, consensus::LogIndex hi, size_t max_bytes,
                                             size_t overhead_bytes) override;
  /// storage_fatal with this file's path.
  [[noreturn]] void fatal(const std::string& what) override;

  /// Writes the file of a snapshot this member took (the slow part of
  /// save_snapshot, a whole-state write and fsync) without touching the
  /// database: callable from any thread while Readies persist.
  void write_snapshot_file(const consensus::Snapshot& snapshot) const;
  /// The directory of raft.db and the snapshot files.
  const std::string& data_dir() const { return data_dir_; }

  /// The stored snapshot, read from disk (data included); nullopt if none.
  std::optional<consensus::Snapshot> snapshot();
  /// The CRC32C of the snapshot raft.db names (snapshot_crc), if that is the
  /// one at (`index`, `term`), as last written or loaded. Thread-safe: a
  /// leader streaming the snapshot's file checks the bytes it read against
  /// it before the follower may install them.
  std::optional<uint32_t> recorded_snapshot_crc(consensus::LogIndex index, consensus::Term term) const;

  /// The value stored under `key` in the meta table, or nullopt.
  std::optional<std::string> get_meta(const std::string& key);
  /// Durably stores `value` under `key` (one transaction, fsynced). `key`
  /// must not be a reserved key (kSchemaVersionKey).
  void set_meta(const std::string& key, const std::string& value);

  /// The last persisted hard state (default when none).
  const consensus::HardState& hard_state() const { return hard_state_; }
  /// Index of the last stored entry, or of the snapshot when it is later; 0 if none.
  consensus::LogIndex last_index() const { return last_index_; }
  /// Path of the database file.
  const std::string& path() const { return db_->path(); }

 private:
  RaftStorage(std::unique_ptr<Database> db, int lock_fd, std::string data_dir)
      : db_(std::move(db)), lock_fd_(lock_fd), data_dir_(std::move(data_dir)) {}
  void init_schema();
  void migrate_from_v1();
  std::optional<consensus::Snapshot> read_snapshot_row(const char* op, uint32_t* crc = nullptr,
                                                       std::string* file = nullptr);
  void read_cached_state();
  StatementRef stmt(const char* sql, const char* op);
  void write_hard_state(const consensus::HardState& hs, const char* op);
  /// Returns the name of the snapshot's file.
  std::string write_snapshot(const consensus::Snapshot& snap, const char* op);
  void write_entries(const std::vector<consensus::Entry>& entries, const char* op);
  void delete_entries(const char* sql, consensus::LogIndex index, const char* op);
  consensus::ConfState read_conf(const char* op);
  std::vector<consensus::Entry> read_entries_after(consensus::LogIndex index, const char* op);
  /// The entry in the current row of `st` (idx, term, type, data, crc), checked.
  consensus::Entry entry_from_row(Statement& st, const char* op);

  std::unique_ptr<Database> db_;
  std::unique_ptr<Database> reader_;  ///< read_entries' connection, opened on first use
  std::string vfs_;
  int lock_fd_;
  std::string data_dir_;
  std::string snapshot_file_;  ///< the current snapshot's file; empty: none, or inline (version 2)
  /// save_snapshot switched files without an fsync: the older files stay
  /// until the next persist() is durable (a crash may still need them).
  bool older_snapshot_files_until_sync_ = false;
  bool empty_ = true;
  consensus::HardState hard_state_;
  consensus::LogIndex snapshot_index_;
  consensus::LogIndex last_index_;
  /// Rows at or below trim_through_ are compacted away (save_snapshot);
  /// rows at or below trimmed_through_ are deleted. persist() closes the gap
  /// a slice at a time.
  consensus::LogIndex trim_through_;
  consensus::LogIndex trimmed_through_;
  void note_recorded_snapshot(const consensus::Snapshot& snap, uint32_t crc);
  struct RecordedSnapshot {
    consensus::LogIndex index;
    consensus::Term term;
    uint32_t crc;
  };
  mutable std::mutex recorded_mu_;  ///< recorded_ is read by the transport's threads
  std::optional<RecordedSnapshot> recorded_;
};

/// Logs `FATAL storage <what>` to stderr and exits with status 1 at once
/// (no destructors run, nothing half-written is acknowledged).
[[noreturn]] void storage_fatal(const std::string& what);
/// `s` in double quotes, escaped so that a FATAL line stays one line.
std::string storage_quoted(const std::string& s);

}  // namespace tenure::storage
