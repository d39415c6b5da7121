#include "storage/raft_storage.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "common/codec.h"
#include "common/crc32c.h"
#include "common/log.h"
#include "consensus/assert.h"
#include "storage/snapshot_file.h"

namespace tenure::storage {

using consensus::ConfState;
using consensus::Entry;
using consensus::EntryType;
using consensus::HardState;
using consensus::InitialState;
using consensus::LogIndex;
using consensus::NodeId;
using consensus::Ready;
using consensus::Snapshot;
using consensus::Term;

namespace {

// Version 2 of the on-disk schema. Integers are SQLite's signed 64 bits
// holding our unsigned counters bit for bit (no value reaches 2^63).
// Entry types and member roles are stored as explicit small integers, mapped
// by switch, so renumbering an enum cannot silently change the format.
// Version 2 adds a CRC32C to every entry and to the snapshot (entry_crc,
// snapshot_crc); a version 1 file is migrated in place at open.
// Version 3 keeps the snapshot's bytes in a file of its own
// (snapshot_file.h) named by snapshot.file; a row with an empty name (from
// version 2) still holds them in snapshot.data and is read as before.
constexpr const char* kCreateMeta =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID";
constexpr const char* kCreateTables =
    "CREATE TABLE IF NOT EXISTS hard_state (id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL,"
    " vote TEXT NOT NULL, commit_index INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT NULL,"
    " data BLOB NOT NULL, crc INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL,"
    " term INTEGER NOT NULL, data BLOB NOT NULL, crc INTEGER NOT NULL, file TEXT NOT NULL DEFAULT '');"
    "CREATE TABLE IF NOT EXISTS snapshot_conf (node_id TEXT PRIMARY KEY NOT NULL, learner INTEGER NOT NULL)"
    " WITHOUT ROWID;";

constexpr const char* kGetMeta = "SELECT value FROM meta WHERE key = ?1";
constexpr const char* kSetMeta = "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)";
constexpr const char* kGetHardState = "SELECT term, vote, commit_index FROM hard_state WHERE id = 1";
constexpr const char* kSetHardState =
    "INSERT OR REPLACE INTO hard_state (id, term, vote, commit_index) VALUES (1, ?1, ?2, ?3)";
constexpr const char* kGetSnapshot = "SELECT idx, term, data, crc, file FROM snapshot WHERE id = 1";
constexpr const char* kGetSnapshotIndex = "SELECT idx, file FROM snapshot WHERE id = 1";
constexpr const char* kSetSnapshot =
    "INSERT OR REPLACE INTO snapshot (id, idx, term, data, crc, file) VALUES (1, ?1, ?2, X'', ?3, ?4)";
constexpr const char* kGetConf = "SELECT node_id, learner FROM snapshot_conf ORDER BY node_id";
constexpr const char* kClearConf = "DELETE FROM snapshot_conf";
constexpr const char* kAddConf = "INSERT INTO snapshot_conf (node_id, learner) VALUES (?1, ?2)";
constexpr const char* kMaxIndex = "SELECT MAX(idx), MIN(idx) FROM entries";
constexpr const char* kGetEntries = "SELECT idx, term, type, data, crc FROM entries WHERE idx > ?1 ORDER BY idx";
constexpr const char* kGetEntryRange =
    "SELECT idx, term, type, data, crc FROM entries WHERE idx >= ?1 AND idx <= ?2 ORDER BY idx";
constexpr const char* kAddEntry = "INSERT INTO entries (idx, term, type, data, crc) VALUES (?1, ?2, ?3, ?4, ?5)";
// Version 1 -> 2: the checksum columns, then every row's checksum.
constexpr const char* kMigrate1To2 =
    "ALTER TABLE entries ADD COLUMN crc INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE snapshot ADD COLUMN crc INTEGER NOT NULL DEFAULT 0;";
// Version 2 -> 3: the snapshot's file name (empty: its bytes are inline).
constexpr const char* kMigrate2To3 = "ALTER TABLE snapshot ADD COLUMN file TEXT NOT NULL DEFAULT ''";
constexpr const char* kAllEntries = "SELECT idx, term, type, data FROM entries ORDER BY idx";
constexpr const char* kSetEntryCrc = "UPDATE entries SET crc = ?2 WHERE idx = ?1";
constexpr const char* kSetSnapshotCrc = "UPDATE snapshot SET crc = ?1 WHERE id = 1";
constexpr const char* kDeleteFrom = "DELETE FROM entries WHERE idx >= ?1";
constexpr const char* kDeleteUpTo = "DELETE FROM entries WHERE idx <= ?1";
constexpr const char* kDeleteAll = "DELETE FROM entries";
// Compacted rows deleted per persist(): far more than a Ready appends, so
// the trim keeps up; small enough to add well under a millisecond.
constexpr uint64_t kTrimRowsPerPersist = 256;

int64_t i64(uint64_t v) { return static_cast<int64_t>(v); }
uint64_t u64(int64_t v) { return static_cast<uint64_t>(v); }

int64_t encode_type(EntryType t) {
  switch (t) {
    case EntryType::kNormal: return 0;
    case EntryType::kConfChange: return 1;
  }
  return -1;
}

std::optional<EntryType> decode_type(int64_t v) {
  if (v == 0) return EntryType::kNormal;
  if (v == 1) return EntryType::kConfChange;
  return std::nullopt;
}

// The checksum covers the entry's place (index, term) and content (type,
// data): a row whose bytes moved to another index fails as surely as one
// with a flipped bit.
uint32_t entry_crc(uint64_t index, uint64_t term, int64_t type, std::string_view data) {
  Writer head;
  head.u64le(index);
  head.u64le(term);
  head.u8(static_cast<uint8_t>(type));
  return crc32c_extend(crc32c(head.buffer()), data.data(), data.size());
}

std::string quoted(const std::string& s) { return storage_quoted(s); }

// Makes the creation of files in `dir` durable (fsync of the directory).
void sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 || ::fsync(fd) != 0) {
    storage_fatal("op=open data_dir=" + dir + " error=" + quoted(std::string("fsync of directory: ") +
                                                                 std::strerror(errno)));
  }
  ::close(fd);
}

int lock_data_dir(const std::string& dir) {
  std::string lock_path = dir + "/LOCK";
  int fd = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    storage_fatal("op=open data_dir=" + dir + " error=" + quoted("cannot create " + lock_path + ": " +
                                                                 std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    storage_fatal("op=open data_dir=" + dir + " error=" +
                  quoted(err == EWOULDBLOCK ? "data_dir is in use by another process (" + lock_path + " is locked)"
                                            : "cannot lock " + lock_path + ": " + std::strerror(err)));
  }
  return fd;
}

}  // namespace

void RaftStorage::fatal(const std::string& what) {
  // "op=X rest": the path goes right after the operation, as in every other line.
  auto space = what.find(' ');
  if (space == std::string::npos) storage_fatal(what + " path=" + path());
  storage_fatal(what.substr(0, space) + " path=" + path() + what.substr(space));
}

void storage_fatal(const std::string& what) {
  std::fprintf(stderr, "FATAL storage %s\n", what.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

// Every SQLite failure in this file is fatal: it names the operation, the
// file and SQLite's message with the extended code.
#define TENURE_MUST(expr, op)                                                                                  \
  do {                                                                                                         \
    const auto& tenure_must_r_ = (expr);                                                                       \
    if (!tenure_must_r_.ok()) {                                                                                \
      storage_fatal(std::string("op=") + (op) + " path=" + db_->path() + " error=" +                           \
                    quoted(tenure_must_r_.error().message));                                                   \
    }                                                                                                          \
  } while (0)

std::unique_ptr<RaftStorage> RaftStorage::open(const std::string& data_dir, const RaftStorageOptions& options) {
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  if (ec || !std::filesystem::is_directory(data_dir, ec)) {
    storage_fatal("op=open data_dir=" + data_dir + " error=" +
                  quoted("cannot create data_dir: " + (ec ? ec.message() : std::string("not a directory"))));
  }
  int lock_fd = lock_data_dir(data_dir);
  std::string path = data_dir + "/raft.db";
  auto db = Database::open(path, options.vfs);
  if (!db.ok()) storage_fatal("op=open path=" + path + " error=" + quoted(db.error().message));
  std::unique_ptr<RaftStorage> s(new RaftStorage(std::move(db.value()), lock_fd, data_dir));
  s->vfs_ = options.vfs;
  s->init_schema();
  s->read_cached_state();
  // A crash between a snapshot file's rename and the commit naming it
  // leaves an orphan; temporaries of an interrupted write too.
  remove_snapshot_files_except(data_dir, s->snapshot_file_, /*temporaries=*/true);
  sync_dir(data_dir);
  return s;
}

RaftStorage::~RaftStorage() {
  reader_.reset();
  db_.reset();
  ::close(lock_fd_);  // releases the flock
}

StatementRef RaftStorage::stmt(const char* sql, const char* op) {
  auto st = db_->cached(sql);
  TENURE_MUST(st, op);
  return std::move(st.value());
}

void RaftStorage::init_schema() {
  auto mode = db_->query_text("PRAGMA journal_mode=WAL");
  TENURE_MUST(mode, "open");
  if (mode.value() != "wal") {
    storage_fatal("op=open path=" + path() + " error=" + quoted("WAL mode refused: " + mode.value()));
  }
  TENURE_MUST(db_->exec("PRAGMA synchronous=FULL"), "open");
  auto sync = db_->query_text("PRAGMA synchronous");
  TENURE_MUST(sync, "open");
  if (sync.value() != "2") storage_fatal("op=open path=" + path() + " error=" + quoted("synchronous=FULL refused"));

  auto tx = Transaction::begin(*db_);
  TENURE_MUST(tx, "open");
  TENURE_MUST(db_->exec(kCreateMeta), "open");
  std::optional<std::string> version = get_meta(kSchemaVersionKey);
  if (version && *version != "1" && *version != "2" && *version != std::to_string(kSchemaVersion)) {
    storage_fatal("op=open path=" + path() + " error=" +
                  quoted("schema_version " + *version + " is not supported (this build reads " +
                         std::to_string(kSchemaVersion) + " and migrates 1 and 2)"));
  }
  if (version && *version == "1") {
    migrate_from_v1();
    *version = "2";
  }
  if (version && *version == "2") {
    // In the same transaction: a crash leaves version 2 intact.
    TENURE_MUST(db_->exec(kMigrate2To3), "migrate");
    log_info("storage", "event=migrated path=" + path() + " from_schema=2 to_schema=3");
    version.reset();  // written below
  }
  TENURE_MUST(db_->exec(kCreateTables), "open");
  if (!version) {
    StatementRef st = stmt(kSetMeta, "open");
    TENURE_MUST(st->bind_text(1, kSchemaVersionKey), "open");
    TENURE_MUST(st->bind_blob(2, std::to_string(kSchemaVersion)), "open");
    TENURE_MUST(st->run(), "open");
  }
  TENURE_MUST(tx.value().commit(), "open");
}

void RaftStorage::migrate_from_v1() {
  // In the transaction of init_schema: a crash leaves version 1 intact.
  // Version 1 had no checksums, so the rows are checksummed as found.
  TENURE_MUST(db_->exec(kMigrate1To2), "migrate");
  std::vector<std::pair<int64_t, uint32_t>> crcs;
  {
    StatementRef st = stmt(kAllEntries, "migrate");
    for (;;) {
      auto row = st->step();
      TENURE_MUST(row, "migrate");
      if (!row.value()) break;
      crcs.emplace_back(st->column_int64(0), entry_crc(u64(st->column_int64(0)), u64(st->column_int64(1)),
                                                       st->column_int64(2), st->column_blob(3)));
    }
  }
  for (const auto& [idx, crc] : crcs) {
    StatementRef st = stmt(kSetEntryCrc, "migrate");
    TENURE_MUST(st->bind_int64(1, idx), "migrate");
    TENURE_MUST(st->bind_int64(2, crc), "migrate");
    TENURE_MUST(st->run(), "migrate");
  }
  if (auto snap = read_snapshot_row("migrate")) {
    StatementRef st = stmt(kSetSnapshotCrc, "migrate");
    TENURE_MUST(st->bind_int64(1, snapshot_crc(*snap)), "migrate");
    TENURE_MUST(st->run(), "migrate");
  }
  log_info("storage", "event=migrated path=" + path() + " from_schema=1 to_schema=2" +
                          " entries=" + std::to_string(crcs.size()));
}

void RaftStorage::read_cached_state() {
  bool has_hard_state = false;
  {
    StatementRef st = stmt(kGetHardState, "open");
    auto row = st->step();
    TENURE_MUST(row, "open");
    if (row.value()) {
      has_hard_state = true;
      hard_state_ = HardState{Term(u64(st->column_int64(0))), NodeId(st->column_text(1)),
                              LogIndex(u64(st->column_int64(2)))};
    }
  }
  bool has_snapshot = false;
  {
    StatementRef st = stmt(kGetSnapshotIndex, "open");
    auto row = st->step();
    TENURE_MUST(row, "open");
    if (row.value()) {
      has_snapshot = true;
      snapshot_index_ = LogIndex(u64(st->column_int64(0)));
      snapshot_file_ = st->column_text(1);
    }
  }
  StatementRef st = stmt(kMaxIndex, "open");
  auto row = st->step();
  TENURE_MUST(row, "open");
  bool has_entries = row.value() && !st->column_is_null(0);
  LogIndex max_entry = has_entries ? LogIndex(u64(st->column_int64(0))) : LogIndex(0);
  last_index_ = std::max(snapshot_index_, max_entry);
  // Rows at or below the snapshot (a compaction cut short by a restart)
  // are never read again: the next persists delete them.
  trim_through_ = snapshot_index_;
  trimmed_through_ = has_entries ? LogIndex(u64(st->column_int64(1))).prev() : snapshot_index_;
  empty_ = !has_hard_state && !has_snapshot && !has_entries;
}

ConfState RaftStorage::read_conf(const char* op) {
  ConfState conf;
  StatementRef st = stmt(kGetConf, op);
  for (;;) {
    auto row = st->step();
    TENURE_MUST(row, op);
    if (!row.value()) break;
    NodeId id(st->column_text(0));
    if (st->column_int64(1) != 0) {
      conf.learners.insert(std::move(id));
    } else {
      conf.voters.insert(std::move(id));
    }
  }
  return conf;
}

std::optional<Snapshot> RaftStorage::read_snapshot_row(const char* op, uint32_t* crc, std::string* file) {
  Snapshot snap;
  {
    // Columns 3 (crc) and 4 (file) exist from versions 2 and 3 on: read
    // only when asked (the migration from version 1 reads without them).
    StatementRef st = stmt(crc ? kGetSnapshot : "SELECT idx, term, data FROM snapshot WHERE id = 1", op);
    auto row = st->step();
    TENURE_MUST(row, op);
    if (!row.value()) return std::nullopt;
    snap.index = LogIndex(u64(st->column_int64(0)));
    snap.term = Term(u64(st->column_int64(1)));
    std::string name = crc ? st->column_text(4) : std::string();
    snap.data = std::make_shared<const std::string>(name.empty() ? st->column_blob(2)
                                                                  : read_snapshot_file(data_dir_, name));
    if (crc) *crc = static_cast<uint32_t>(st->column_int64(3));
    if (file) *file = name;
  }
  snap.conf = read_conf(op);
  return snap;
}

std::optional<Snapshot> RaftStorage::snapshot() {
  uint32_t stored = 0;
  std::string file;
  auto snap = read_snapshot_row("load", &stored, &file);
  if (snap && snapshot_crc(*snap) != stored) {
    storage_fatal("op=load path=" + (file.empty() ? path() : data_dir_ + "/" + file) + " error=" +
                  quoted("corrupt snapshot: the snapshot at index " + std::to_string(snap->index.value()) +
                         " fails its CRC32C check (stored " + std::to_string(stored) + ", computed " +
                         std::to_string(snapshot_crc(*snap)) + ")"));
  }
  if (snap) note_recorded_snapshot(*snap, stored);
  return snap;
}

void RaftStorage::note_recorded_snapshot(const Snapshot& snap, uint32_t crc) {
  std::lock_guard<std::mutex> lock(recorded_mu_);
  recorded_ = RecordedSnapshot{snap.index, snap.term, crc};
}

std::optional<uint32_t> RaftStorage::recorded_snapshot_crc(LogIndex index, Term term) const {
  std::lock_guard<std::mutex> lock(recorded_mu_);
  if (!recorded_ || recorded_->index != index || recorded_->term != term) return std::nullopt;
  return recorded_->crc;
}

Entry RaftStorage::entry_from_row(Statement& st, const char* op) {
  Entry e;
  e.index = LogIndex(u64(st.column_int64(0)));
  e.term = Term(u64(st.column_int64(1)));
  auto type = decode_type(st.column_int64(2));
  if (!type) {
    storage_fatal(std::string("op=") + op + " path=" + path() + " error=" +
                  quoted("corrupt log: entry " + std::to_string(e.index.value()) + " has unknown type " +
                         std::to_string(st.column_int64(2))));
  }
  e.type = *type;
  e.data = st.column_blob(3);
  uint32_t stored = static_cast<uint32_t>(st.column_int64(4));
  uint32_t computed = entry_crc(e.index.value(), e.term.value(), st.column_int64(2), e.data);
  if (stored != computed) {
    storage_fatal(std::string("op=") + op + " path=" + path() + " error=" +
                  quoted("corrupt log: entry " + std::to_string(e.index.value()) + " fails its CRC32C check (stored " +
                         std::to_string(stored) + ", computed " + std::to_string(computed) + ")"));
  }
  return e;
}

std::vector<Entry> RaftStorage::read_entries_after(LogIndex index, const char* op) {
  std::vector<Entry> out;
  StatementRef st = stmt(kGetEntries, op);
  TENURE_MUST(st->bind_int64(1, i64(index.value())), op);
  for (;;) {
    auto row = st->step();
    TENURE_MUST(row, op);
    if (!row.value()) break;
    out.push_back(entry_from_row(*st, op));
  }
  return out;
}

std::vector<Entry> RaftStorage::read_entries(LogIndex lo, LogIndex hi, size_t max_bytes, size_t overhead_bytes) {
  const char* op = "read_entries";
  if (!reader_) {
    auto db = Database::open(path(), vfs_);
    if (!db.ok()) storage_fatal("op=" + std::string(op) + " path=" + path() + " error=" + quoted(db.error().message));
    reader_ = std::move(db.value());
    TENURE_MUST(reader_->exec("PRAGMA query_only=1"), op);
  }
  std::vector<Entry> out;
  {
    auto cached = reader_->cached(kGetEntryRange);
    TENURE_MUST(cached, op);
    StatementRef st = std::move(cached.value());
    TENURE_MUST(st->bind_int64(1, i64(lo.value())), op);
    TENURE_MUST(st->bind_int64(2, i64(hi.value())), op);
    size_t bytes = 0;
    for (;;) {
      auto row = st->step();
      TENURE_MUST(row, op);
      if (!row.value()) break;
      Entry e = entry_from_row(*st, op);
      bytes += e.data.size() + overhead_bytes;
      if (!out.empty() && bytes > max_bytes) break;
      out.push_back(std::move(e));
    }
  }
  if (out.empty() || out.front().index != lo) {
    storage_fatal("op=" + std::string(op) + " path=" + path() + " error=" +
                  quoted("entry " + std::to_string(lo.value()) + " is not stored (asked for " +
                         std::to_string(lo.value()) + ".." + std::to_string(hi.value()) + ")"));
  }
  return out;
}

InitialState RaftStorage::load() {
  InitialState s;
  s.hard_state = hard_state_;
  if (auto snap = snapshot()) s.snapshot = std::move(*snap);
  s.entries = read_entries_after(s.snapshot.index, "load");
  // The log after the snapshot must be contiguous, or Raft would restart
  // from a log it never had (log matching, thesis §3.5).
  for (size_t k = 0; k < s.entries.size(); ++k) {
    if (s.entries[k].index != s.snapshot.index.plus(k + 1)) {
      storage_fatal("op=load path=" + path() + " error=" +
                    quoted("corrupt log: expected entry " + std::to_string(s.snapshot.index.plus(k + 1).value()) +
                           ", found " + std::to_string(s.entries[k].index.value())));
    }
  }
  return s;
}

void RaftStorage::write_hard_state(const HardState& hs, const char* op) {
  StatementRef st = stmt(kSetHardState, op);
  TENURE_MUST(st->bind_int64(1, i64(hs.term.value())), op);
  TENURE_MUST(st->bind_text(2, hs.vote.str()), op);
  TENURE_MUST(st->bind_int64(3, i64(hs.commit.value())), op);
  TENURE_MUST(st->run(), op);
}

std::string RaftStorage::write_snapshot(const Snapshot& snap, const char* op) {
  // Its file first (unless whoever took the snapshot wrote it already, off
  // this thread: RaftStorage::write_snapshot_file), then the row naming it.
  std::string name = snapshot_file_name(snap.index, snap.term);
  std::error_code ec;
  if (!std::filesystem::exists(data_dir_ + "/" + name, ec)) {
    storage::write_snapshot_file(data_dir_, name, snap.data ? std::string_view(*snap.data) : std::string_view());
  }
  {
    StatementRef st = stmt(kSetSnapshot, op);
    TENURE_MUST(st->bind_int64(1, i64(snap.index.value())), op);
    TENURE_MUST(st->bind_int64(2, i64(snap.term.value())), op);
    const uint32_t crc = snapshot_crc(snap);
    TENURE_MUST(st->bind_int64(3, crc), op);
    TENURE_MUST(st->bind_text(4, name), op);
    TENURE_MUST(st->run(), op);
    note_recorded_snapshot(snap, crc);
  }
  TENURE_MUST(stmt(kClearConf, op)->run(), op);
  auto add = [&](const NodeId& id, int64_t learner) {
    StatementRef st = stmt(kAddConf, op);
    TENURE_MUST(st->bind_text(1, id.str()), op);
    TENURE_MUST(st->bind_int64(2, learner), op);
    TENURE_MUST(st->run(), op);
  };
  for (const auto& id : snap.conf.voters) add(id, 0);
  for (const auto& id : snap.conf.learners) add(id, 1);
  return name;
}

void RaftStorage::write_entries(const std::vector<Entry>& entries, const char* op) {
  for (const Entry& e : entries) {
    StatementRef st = stmt(kAddEntry, op);
    TENURE_MUST(st->bind_int64(1, i64(e.index.value())), op);
    TENURE_MUST(st->bind_int64(2, i64(e.term.value())), op);
    TENURE_MUST(st->bind_int64(3, encode_type(e.type)), op);
    TENURE_MUST(st->bind_blob(4, e.data), op);
    TENURE_MUST(st->bind_int64(5, entry_crc(e.index.value(), e.term.value(), encode_type(e.type), e.data)), op);
    TENURE_MUST(st->run(), op);
  }
}

void RaftStorage::delete_entries(const char* sql, LogIndex index, const char* op) {
  StatementRef st = stmt(sql, op);
  if (sql != kDeleteAll) TENURE_MUST(st->bind_int64(1, i64(index.value())), op);
  TENURE_MUST(st->run(), op);
}

void RaftStorage::bootstrap(const InitialState& state) {
  TENURE_CHECK(empty_, "bootstrap of a non-empty storage at " << path());
  Ready rd;
  rd.hard_state = state.hard_state;
  if (!state.snapshot.empty()) rd.snapshot = state.snapshot;
  rd.entries = state.entries;
  persist(rd);
}

void RaftStorage::persist(const Ready& rd) {
  // Whatever is given is written (with one fsync); the driver decides what
  // needs to be given: it may skip a Ready that only moves the commit index.
  if (!rd.hard_state && !rd.snapshot && rd.entries.empty()) return;
  LogIndex snapshot_index = snapshot_index_;
  LogIndex last_index = last_index_;
  std::string snapshot_file = snapshot_file_;
  auto tx = Transaction::begin(*db_);
  TENURE_MUST(tx, "persist");
  if (rd.hard_state) write_hard_state(*rd.hard_state, "persist");
  if (rd.snapshot) {
    // The snapshot replaces the whole log (thesis §5.2: a follower that
    // installs a snapshot discards its entries).
    snapshot_file = write_snapshot(*rd.snapshot, "persist");
    delete_entries(kDeleteAll, LogIndex(0), "persist");
    snapshot_index = last_index = rd.snapshot->index;
  }
  LogIndex trimmed = rd.snapshot ? std::max(trim_through_, rd.snapshot->index) : trimmed_through_;
  if (trimmed < trim_through_) {
    trimmed = std::min(trim_through_, trimmed.plus(kTrimRowsPerPersist));
    delete_entries(kDeleteUpTo, trimmed, "persist");
  }
  if (!rd.entries.empty()) {
    LogIndex first = rd.entries.front().index;
    TENURE_CHECK(first > snapshot_index && first <= last_index.next(),
                 "persist: entries from " << first << " leave a gap after " << last_index << " (snapshot "
                                          << snapshot_index << ") in " << path());
    for (size_t k = 1; k < rd.entries.size(); ++k) {
      TENURE_CHECK(rd.entries[k].index == first.plus(k), "persist: entries not contiguous at " << rd.entries[k].index);
    }
    // Conflict truncation (§3.5): whatever followed the first new entry is gone.
    delete_entries(kDeleteFrom, first, "persist");
    write_entries(rd.entries, "persist");
    last_index = rd.entries.back().index;
  }
  TENURE_MUST(tx.value().commit(), "persist");
  if (rd.hard_state) hard_state_ = *rd.hard_state;
  // Durable now, and with it any snapshot switch save_snapshot committed
  // before: older snapshot files can go.
  if (snapshot_file != snapshot_file_ || older_snapshot_files_until_sync_) {
    snapshot_file_ = snapshot_file;
    older_snapshot_files_until_sync_ = false;
    remove_snapshot_files_except(data_dir_, snapshot_file_);
  }
  snapshot_index_ = snapshot_index;
  last_index_ = last_index;
  trimmed_through_ = trimmed;
  trim_through_ = std::max(trim_through_, trimmed);
  empty_ = false;
}

void RaftStorage::write_snapshot_file(const Snapshot& snap) const {
  storage::write_snapshot_file(data_dir_, snapshot_file_name(snap.index, snap.term),
                               snap.data ? std::string_view(*snap.data) : std::string_view());
}

void RaftStorage::save_snapshot(const Snapshot& snap, LogIndex compact_to) {
  TENURE_CHECK(compact_to <= snap.index, "save_snapshot: compact_to " << compact_to << " past snapshot " << snap.index);
  bool newer = snap.index > snapshot_index_;
  // Committed without an fsync of its own (synchronous=NORMAL: in WAL mode
  // a commit that may roll back after a power loss, never a corrupt file):
  // it only switches to a snapshot whose file is durable already and drops
  // entries it covers, so losing it leaves the older snapshot and the whole
  // log, which is as good. The next Ready's fsync (persist) makes it
  // durable; until then the older snapshot's file must stay. Its own fsync
  // held the next Ready 3-13 ms per snapshot (docs/performance.md).
  TENURE_MUST(db_->exec("PRAGMA synchronous=NORMAL"), "save_snapshot");
  {
    auto tx = Transaction::begin(*db_);
    TENURE_MUST(tx, "save_snapshot");
    std::string file = newer ? write_snapshot(snap, "save_snapshot") : snapshot_file_;
    TENURE_MUST(tx.value().commit(), "save_snapshot");
    if (file != snapshot_file_) {
      snapshot_file_ = file;
      older_snapshot_files_until_sync_ = true;
    }
  }
  TENURE_MUST(db_->exec("PRAGMA synchronous=FULL"), "save_snapshot");
  if (newer) snapshot_index_ = snap.index;
  // The compacted rows go a slice at a time with the next Readies
  // (persist): deleting the ~9,000 rows of a snapshot at once held the
  // persist context, and so the next Ready, for 6-50 ms under load.
  // Until then they are only disk space: load() reads what follows the
  // snapshot.
  trim_through_ = std::max(trim_through_, compact_to);
  last_index_ = std::max(last_index_, snapshot_index_);
  empty_ = false;
}

std::optional<std::string> RaftStorage::get_meta(const std::string& key) {
  StatementRef st = stmt(kGetMeta, "get_meta");
  TENURE_MUST(st->bind_text(1, key), "get_meta");
  auto row = st->step();
  TENURE_MUST(row, "get_meta");
  if (!row.value()) return std::nullopt;
  return st->column_blob(0);
}

void RaftStorage::set_meta(const std::string& key, const std::string& value) {
  TENURE_CHECK(key != kSchemaVersionKey, "set_meta of the reserved key " << key);
  // One statement in autocommit mode: its own transaction, fsynced on commit.
  StatementRef st = stmt(kSetMeta, "set_meta");
  TENURE_MUST(st->bind_text(1, key), "set_meta");
  TENURE_MUST(st->bind_blob(2, value), "set_meta");
  TENURE_MUST(st->run(), "set_meta");
}

std::string storage_quoted(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += (c == '\n' || c == '\r') ? ' ' : c;
  }
  return out + "\"";
}

}  // namespace tenure::storage
