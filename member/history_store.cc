#include "member/history_store.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <random>
#include <set>

#include "common/codec.h"
#include "common/log.h"
#include "storage/raft_storage.h"
#include "storage/sqlite.h"

namespace tenure::member {

using controlplane::HistoryRecord;
using storage::Database;
using storage::Statement;
using storage::storage_fatal;
using storage::storage_quoted;
using storage::Transaction;
using controlplane::Revision;
using controlplane::ShardId;

namespace {
// Records are clustered by revision, so the writer appends to the end of
// the table instead of rewriting the middle of it: keyed by shard (the
// first layout), every round of moves touched nearly every page of a table
// far larger than the page cache, and the writer fell behind a fleet that
// kept moving (bench/history_store_bench.cc: 182,000 records/s empty,
// 22,000 after 32 rounds of 200,000 shards). A shard's records are found
// through `heads`: one small row per shard, keyed by a keyed hash of its id
// (SipHash, the key drawn when the file is made), listing the revisions of
// its records. Shards whose hashes collide share a row and its
// `history_per_shard` budget; reads still match the id. A collision needs
// 2^32 shards to be likely, and the key keeps one from being chosen.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS records (
  revision INTEGER NOT NULL,
  hash INTEGER NOT NULL,
  shard TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  from_worker TEXT NOT NULL,
  to_worker TEXT NOT NULL,
  reason INTEGER NOT NULL,
  at_ms INTEGER NOT NULL,
  prepare_ms INTEGER NOT NULL,
  drain_ms INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  PRIMARY KEY (revision, hash, shard)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads (hash INTEGER PRIMARY KEY, revisions BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
)sql";
// Meta keys: the revision the file is written through, the gap, the hash key.
constexpr const char* kWritten = "written_revision";
constexpr const char* kGap = "gap_through_revision";
constexpr const char* kHashKey0 = "hash_key_0";
constexpr const char* kHashKey1 = "hash_key_1";

constexpr const char* kInsert =
    "INSERT OR REPLACE INTO records (shard, revision, epoch, from_worker, to_worker, reason, at_ms, prepare_ms, "
    "drain_ms, flags, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
// An imported record never replaces one this member wrote itself.
constexpr const char* kImport =
    "INSERT OR IGNORE INTO records (shard, revision, epoch, from_worker, to_worker, reason, at_ms, prepare_ms, "
    "drain_ms, flags, hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
constexpr const char* kHead = "SELECT revisions FROM heads WHERE hash = ?1";
constexpr const char* kSetHead = "INSERT OR REPLACE INTO heads (hash, revisions) VALUES (?1, ?2)";
constexpr const char* kDropHead = "DELETE FROM heads WHERE hash = ?1";
// What a head lets go of: every record at that (revision, hash).
constexpr const char* kDropRecords = "DELETE FROM records WHERE revision = ?1 AND hash = ?2";
constexpr const char* kDropRecord = "DELETE FROM records WHERE revision = ?1 AND hash = ?2 AND shard = ?3";
constexpr const char* kAnyRecord = "SELECT 1 FROM records WHERE revision = ?1 AND hash = ?2 LIMIT 1";
constexpr const char* kSelect =
    "SELECT revision, epoch, from_worker, to_worker, reason, at_ms, prepare_ms, drain_ms, flags FROM records "
    "WHERE revision = ?1 AND hash = ?2 AND shard = ?3";
// An exported page: records after the cursor in the table's order (the
// cursor is the last record of the page before, so any order works).
constexpr const char* kExport =
    "SELECT shard, revision, epoch, from_worker, to_worker, reason, at_ms, prepare_ms, drain_ms, flags FROM records "
    "WHERE revision <= ?1 AND (revision, hash, shard) > (?2, ?3, ?4) ORDER BY revision, hash, shard LIMIT ?5";
// The first layout, keyed by (shard, revision); moved over on open.
constexpr const char* kOldTable = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'history'";
constexpr const char* kOldRecords =
    "SELECT shard, revision, epoch, from_worker, to_worker, reason, at_ms, prepare_ms, drain_ms, flags FROM history";

/// A head's revisions, ascending: the first in full, then differences.
std::string encode_revisions(const std::vector<uint64_t>& revisions) {
  Writer w;
  uint64_t prev = 0;
  for (uint64_t r : revisions) {
    w.varint(r - prev);
    prev = r;
  }
  return w.take();
}

std::vector<uint64_t> decode_revisions(const std::string& blob, const std::string& path) {
  std::vector<uint64_t> out;
  Reader r(blob);
  uint64_t at = 0;
  while (!r.done()) {
    at += r.varint();
    if (r.failed()) storage_fatal("op=history_head path=" + path + " error=\"undecodable head\"");
    out.push_back(at);
  }
  return out;
}

int64_t flags_of(const HistoryRecord& h) {
  return (h.prepare_timed_out ? 1 : 0) | (h.drain_timed_out ? 2 : 0) | (h.prepared ? 4 : 0);
}
}  // namespace

#define HISTORY_MUST(expr, op)                                                                              \
  do {                                                                                                      \
    const auto& history_must_r_ = (expr);                                                                   \
    if (!history_must_r_.ok()) {                                                                            \
      storage_fatal(std::string("op=history_") + (op) + " path=" + db_->path() + " error=" +                \
                    storage_quoted(history_must_r_.error().message));                                       \
    }                                                                                                       \
  } while (0)

void HistoryStore::bind_record(Statement& s, const ShardId& shard, const HistoryRecord& h, int64_t hash,
                               const char* op) {
  HISTORY_MUST(s.bind_text(1, shard.str()), op);
  HISTORY_MUST(s.bind_int64(2, static_cast<int64_t>(h.revision.value())), op);
  HISTORY_MUST(s.bind_int64(3, static_cast<int64_t>(h.epoch.value())), op);
  HISTORY_MUST(s.bind_text(4, h.from.str()), op);
  HISTORY_MUST(s.bind_text(5, h.to.str()), op);
  HISTORY_MUST(s.bind_int64(6, static_cast<int64_t>(h.reason)), op);
  HISTORY_MUST(s.bind_int64(7, static_cast<int64_t>(h.at_ms)), op);
  HISTORY_MUST(s.bind_int64(8, h.prepare_ms), op);
  HISTORY_MUST(s.bind_int64(9, h.drain_ms), op);
  HISTORY_MUST(s.bind_int64(10, flags_of(h)), op);
  HISTORY_MUST(s.bind_int64(11, hash), op);
}

HistoryStore::HistoryStore(const std::string& data_dir, size_t per_shard, size_t max_queued)
    : per_shard_(std::max<size_t>(per_shard, 1)), max_queued_(max_queued) {
  std::string path = data_dir + "/history.db";
  auto db = Database::open(path);
  if (!db.ok()) storage_fatal("op=history_open path=" + path + " error=" + storage_quoted(db.error().message));
  db_ = std::move(db.value());
  auto mode = db_->query_text("PRAGMA journal_mode=WAL");
  HISTORY_MUST(mode, "open");
  if (mode.value() != "wal") storage_fatal("op=history_open path=" + path + " error=\"WAL mode refused\"");
  // Commits are not fsynced one by one: sync_through() makes them durable.
  HISTORY_MUST(db_->exec("PRAGMA synchronous=NORMAL"), "open");
  // 16 MiB of page cache (SQLite's default is 2): the pages of the table's
  // B-tree that a pass of writes touches stay in memory.
  HISTORY_MUST(db_->exec("PRAGMA cache_size=-16384"), "open");
  HISTORY_MUST(db_->exec(kSchema), "open");
  open_layout();
  written_at_open_ = Revision(get_meta(kWritten));
  gap_ = Revision(get_meta(kGap));
  gap_seen_ = gap_.value();
  written_rev_ = written_at_open_;
  submitted_ = written_at_open_;
  durable_ = written_at_open_;
  writer_ = std::thread([this] { run(); });
}

HistoryStore::~HistoryStore() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  writer_.join();
}

storage::StatementRef HistoryStore::stmt(const char* sql, const char* op) {
  auto st = db_->cached(sql);
  HISTORY_MUST(st, op);
  return std::move(st.value());
}

uint64_t HistoryStore::get_meta(const char* key) {
  storage::StatementRef st = stmt("SELECT value FROM meta WHERE key = ?1", "meta");
  HISTORY_MUST(st->bind_text(1, key), "meta");
  auto row = st->step();
  HISTORY_MUST(row, "meta");
  return row.value() ? static_cast<uint64_t>(st->column_int64(0)) : 0;
}

void HistoryStore::set_meta(const char* key, uint64_t value) {
  storage::StatementRef st = stmt("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)", "meta");
  HISTORY_MUST(st->bind_text(1, key), "meta");
  HISTORY_MUST(st->bind_int64(2, static_cast<int64_t>(value)), "meta");
  HISTORY_MUST(st->run(), "meta");
}

void HistoryStore::record(const ShardId& shard, const HistoryRecord& h) { pending_.push_back(Change{shard, h}); }

void HistoryStore::erase(const ShardId& shard, Revision revision) {
  Change c{shard, HistoryRecord{}, true};
  c.record.revision = revision;
  pending_.push_back(std::move(c));
}

void HistoryStore::enqueue(Job job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (job.kind == Job::kChanges || job.kind == Job::kReset || job.kind == Job::kBehind) {
      submitted_ = std::max(submitted_, job.revision);
    }
    queued_records_ += job.changes.size();
    jobs_.push_back(std::move(job));
  }
  wake_.notify_all();
}

void HistoryStore::submit(Revision revision) {
  if (pending_.empty()) {
    // Nothing to write; what is durable through the last change is durable through this revision too.
    std::lock_guard<std::mutex> lock(mu_);
    submitted_ = std::max(submitted_, revision);
    return;
  }
  size_t queued;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued = queued_records_;
  }
  Job job;
  job.revision = revision;
  if (queued + pending_.size() > max_queued_) {
    // The writer is that far behind: these records are dropped, and the
    // gap says so (the backfill copies them from the leader later).
    // A deletion is kept (few, and a shard created again must not show the
    // records of the one deleted).
    for (auto& change : pending_) {
      if (change.erase) job.changes.push_back(std::move(change));
    }
    size_t dropped = pending_.size() - job.changes.size();
    pending_.clear();
    job.kind = Job::kBehind;
    {
      std::lock_guard<std::mutex> lock(mu_);
      records_dropped_ += dropped;
    }
    if (!behind_) {
      behind_ = true;
      log_warn("history", "event=history_behind queued=" + std::to_string(queued) + " dropped_from_revision=" +
                              std::to_string(revision.value()) +
                              " hint=\"the history writer cannot keep up: records are dropped and marked as a gap, "
                              "filled from the leader later\"");
    }
    return enqueue(std::move(job));
  }
  behind_ = false;
  job.changes.swap(pending_);
  enqueue(std::move(job));
}

void HistoryStore::opened_at(Revision revision) {
  if (!pending_.empty()) return submit(revision);
  if (written_at_open_ < revision) return reset(revision);
  std::lock_guard<std::mutex> lock(mu_);
  submitted_ = std::max(submitted_, revision);
}

void HistoryStore::reset(Revision revision) {
  pending_.clear();
  Job job;
  job.kind = Job::kReset;
  job.revision = revision;
  enqueue(std::move(job));
}

void HistoryStore::read(const ShardId& shard, std::function<void(Answer)> done) {
  Job job;
  job.kind = Job::kRead;
  job.shard = shard;
  job.done = std::move(done);
  enqueue(std::move(job));
}

void HistoryStore::sync_through(Revision revision) {
  std::unique_lock<std::mutex> lock(mu_);
  // Only what was submitted can become durable (nothing later is asked for).
  revision = std::min(revision, submitted_);
  if (durable_ >= revision) return;
  want_durable_ = std::max(want_durable_, revision);
  wake_.notify_all();
  durable_cv_.wait(lock, [&] { return durable_ >= revision || stopping_; });
}

Revision HistoryStore::gap_through() const { return Revision(gap_seen_.load(std::memory_order_acquire)); }

void HistoryStore::export_page(Revision through, const ShardId& after_shard, Revision after_revision, size_t limit,
                               std::function<void(Page)> done) {
  Job job;
  job.kind = Job::kExport;
  job.revision = through;
  job.shard = after_shard;
  job.after_revision = after_revision;
  job.limit = limit;
  job.exported = std::move(done);
  enqueue(std::move(job));
}

void HistoryStore::import_page(Revision gap, Page page, bool last, std::function<void(bool)> done) {
  Job job;
  job.kind = Job::kImport;
  job.revision = gap;
  job.page = std::move(page);
  job.last = last;
  job.imported = std::move(done);
  enqueue(std::move(job));
}

uint64_t HistoryStore::records_dropped() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_dropped_;
}

HistoryStore::Counts HistoryStore::counts() const {
  std::lock_guard<std::mutex> lock(mu_);
  return Counts{queued_records_, records_written_, records_dropped_};
}

uint64_t HistoryStore::records_written() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_written_;
}

void HistoryStore::run() {
  // Background work, like a snapshot's child: on two cores a mass
  // failover's records (50,000 of ~100-character ids on every member)
  // were written while the same failover was being applied, and the Raft
  // strands waited for the CPU. The queue bound keeps a writer that falls
  // behind from growing memory; apply never waits for it.
  ::setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)), 10);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !jobs_.empty() || want_durable_ > durable_; });
    if (!jobs_.empty()) {
      std::deque<Job> batch;
      batch.swap(jobs_);
      lock.unlock();
      write(batch);
      lock.lock();
      continue;
    }
    if (want_durable_ > durable_) {
      // Every job is written: the file holds everything submitted, up to
      // submitted_ (an apply that recorded nothing queues no job).
      Revision target = submitted_;
      lock.unlock();
      make_durable(target);
      lock.lock();
      durable_ = target;
      durable_cv_.notify_all();
      continue;
    }
    if (stopping_) break;
  }
  durable_cv_.notify_all();
}

void HistoryStore::write(std::deque<Job>& jobs) {
  std::optional<Transaction> tx;
  uint64_t records = 0;
  auto begin = [&] {
    if (tx) return;
    auto t = Transaction::begin(*db_);
    HISTORY_MUST(t, "write");
    tx.emplace(std::move(t.value()));
  };
  auto commit = [&] {
    if (!tx) return;
    set_meta(kWritten, written_rev_.value());
    HISTORY_MUST(tx->commit(), "commit");
    tx.reset();
  };
  for (size_t i = 0; i < jobs.size();) {
    Job& job = jobs[i];
    if (job.kind == Job::kChanges) {
      // A run of applies is written in two ordered passes: the records in
      // (revision, hash) order, each apply's appended to the table's end;
      // then the heads in hash order (a stable sort keeps each shard's
      // changes in apply order), walking that table's B-tree rather than
      // jumping around it.
      struct Keyed {
        int64_t hash;
        const Change* change;
      };
      std::vector<Keyed> changes;
      size_t written = 0;
      for (; i < jobs.size() && jobs[i].kind == Job::kChanges; ++i) {
        for (const auto& c : jobs[i].changes) changes.push_back(Keyed{hash_of(c.shard), &c});
        written_rev_ = jobs[i].revision;
        written += jobs[i].changes.size();
      }
      std::stable_sort(changes.begin(), changes.end(), [](const Keyed& a, const Keyed& b) {
        return a.change->record.revision != b.change->record.revision
                   ? a.change->record.revision < b.change->record.revision
                   : a.hash < b.hash;
      });
      begin();
      for (const Keyed& k : changes) {
        if (k.change->erase) continue;
        storage::StatementRef st = stmt(kInsert, "insert");
        bind_record(*st, k.change->shard, k.change->record, k.hash, "insert");
        HISTORY_MUST(st->run(), "insert");
      }
      std::stable_sort(changes.begin(), changes.end(), [](const Keyed& a, const Keyed& b) { return a.hash < b.hash; });
      for (const Keyed& k : changes) records += write_change(*k.change, k.hash);
      {
        std::lock_guard<std::mutex> lock(mu_);
        queued_records_ -= written;
      }
      continue;
    }
    switch (job.kind) {
      case Job::kChanges:
        break;
      case Job::kRead:
        commit();
        job.done(read_now(job.shard));
        break;
      case Job::kReset: {
        commit();
        begin();
        HISTORY_MUST(db_->exec("DELETE FROM records; DELETE FROM heads"), "reset");
        gap_ = std::max(gap_, job.revision);
        set_meta(kGap, gap_.value());
        gap_seen_.store(gap_.value(), std::memory_order_release);
        erased_in_gap_.clear();
        written_rev_ = job.revision;
        commit();
        break;
      }
      case Job::kBehind: {
        begin();
        gap_ = std::max(gap_, job.revision);
        set_meta(kGap, gap_.value());
        gap_seen_.store(gap_.value(), std::memory_order_release);
        for (const auto& change : job.changes) write_change(change, hash_of(change.shard));  // the deletions
        written_rev_ = job.revision;
        std::lock_guard<std::mutex> lock(mu_);
        queued_records_ -= job.changes.size();
        break;
      }
      case Job::kExport:
        commit();
        job.exported(export_now(job));
        break;
      case Job::kImport: {
        commit();
        begin();
        bool ok = import_now(job);
        commit();
        job.imported(ok);
        break;
      }
    }
    ++i;
  }
  commit();
  std::lock_guard<std::mutex> lock(mu_);
  records_written_ += records;
}

uint64_t HistoryStore::write_change(const Change& c, int64_t hash) {
  if (c.erase) {
    erase_records(c.shard, hash, c.record.revision);
    if (gap_ > Revision(0)) erased_in_gap_.insert(c.shard);
    return 0;
  }
  // The record itself was written in the first pass (write()).
  std::vector<uint64_t> revisions = head(hash);
  uint64_t r = c.record.revision.value();
  auto at = std::lower_bound(revisions.begin(), revisions.end(), r);
  if (at == revisions.end() || *at != r) revisions.insert(at, r);
  size_t excess = revisions.size() > per_shard_ ? revisions.size() - per_shard_ : 0;
  for (size_t i = 0; i < excess; ++i) {
    storage::StatementRef st = stmt(kDropRecords, "trim");
    HISTORY_MUST(st->bind_int64(1, static_cast<int64_t>(revisions[i])), "trim");
    HISTORY_MUST(st->bind_int64(2, hash), "trim");
    HISTORY_MUST(st->run(), "trim");
  }
  revisions.erase(revisions.begin(), revisions.begin() + static_cast<std::ptrdiff_t>(excess));
  set_head(hash, revisions);
  return 1;
}

void HistoryStore::add_record(const ShardId& shard, int64_t hash, const HistoryRecord& h, bool replace) {
  storage::StatementRef st = stmt(replace ? kInsert : kImport, "insert");
  bind_record(*st, shard, h, hash, "insert");
  HISTORY_MUST(st->run(), "insert");
  write_change(Change{shard, h}, hash);
}

void HistoryStore::erase_records(const ShardId& shard, int64_t hash, Revision before) {
  std::vector<uint64_t> revisions = head(hash);
  std::vector<uint64_t> kept;
  for (uint64_t r : revisions) {
    if (r >= before.value()) {
      kept.push_back(r);
      continue;
    }
    storage::StatementRef drop = stmt(kDropRecord, "erase");
    HISTORY_MUST(drop->bind_int64(1, static_cast<int64_t>(r)), "erase");
    HISTORY_MUST(drop->bind_int64(2, hash), "erase");
    HISTORY_MUST(drop->bind_text(3, shard.str()), "erase");
    HISTORY_MUST(drop->run(), "erase");
    // A shard whose hash collides with this one's may have a record at r.
    storage::StatementRef any = stmt(kAnyRecord, "erase");
    HISTORY_MUST(any->bind_int64(1, static_cast<int64_t>(r)), "erase");
    HISTORY_MUST(any->bind_int64(2, hash), "erase");
    auto row = any->step();
    HISTORY_MUST(row, "erase");
    if (row.value()) kept.push_back(r);
  }
  if (kept.size() != revisions.size()) set_head(hash, kept);
}

std::vector<uint64_t> HistoryStore::head(int64_t hash) {
  storage::StatementRef st = stmt(kHead, "head");
  HISTORY_MUST(st->bind_int64(1, hash), "head");
  auto row = st->step();
  HISTORY_MUST(row, "head");
  if (!row.value()) return {};
  return decode_revisions(st->column_blob(0), db_->path());
}

void HistoryStore::set_head(int64_t hash, const std::vector<uint64_t>& revisions) {
  if (revisions.empty()) {
    storage::StatementRef st = stmt(kDropHead, "head");
    HISTORY_MUST(st->bind_int64(1, hash), "head");
    HISTORY_MUST(st->run(), "head");
    return;
  }
  storage::StatementRef st = stmt(kSetHead, "head");
  HISTORY_MUST(st->bind_int64(1, hash), "head");
  HISTORY_MUST(st->bind_blob(2, encode_revisions(revisions)), "head");
  HISTORY_MUST(st->run(), "head");
}

int64_t HistoryStore::hash_of(const ShardId& shard) const {
  return static_cast<int64_t>(siphash24(hash_key_, shard.str()));
}

void HistoryStore::open_layout() {
  auto t = Transaction::begin(*db_);
  HISTORY_MUST(t, "open");
  hash_key_ = SipKey{get_meta(kHashKey0), get_meta(kHashKey1)};
  if (hash_key_.k0 == 0 && hash_key_.k1 == 0) {
    std::random_device device;
    while (hash_key_.k0 == 0) hash_key_.k0 = (uint64_t{device()} << 32) | device();
    hash_key_.k1 = (uint64_t{device()} << 32) | device();
    set_meta(kHashKey0, hash_key_.k0);
    set_meta(kHashKey1, hash_key_.k1);
  }
  bool old_layout;
  {
    storage::StatementRef old = stmt(kOldTable, "open");
    auto found = old->step();
    HISTORY_MUST(found, "open");
    old_layout = found.value();
  }  // its read of sqlite_master ends before the old table is dropped
  if (old_layout) {
    // A file from before the layout by revision: its records move over
    // once, in one transaction (a crash midway leaves the old table whole).
    uint64_t moved = 0;
    {
      auto rows = db_->cached(kOldRecords);
      HISTORY_MUST(rows, "migrate");
      storage::StatementRef st = std::move(rows.value());
      for (;;) {
        auto row = st->step();
        HISTORY_MUST(row, "migrate");
        if (!row.value()) break;
        ShardId shard(st->column_text(0));
        add_record(shard, hash_of(shard), record_at(*st, 1), false);
        ++moved;
      }
    }
    HISTORY_MUST(db_->exec("DROP TABLE history"), "migrate");
    log_info("history", "event=history_layout_migrated records=" + std::to_string(moved) +
                            " path=" + storage_quoted(db_->path()));
  }
  HISTORY_MUST(t.value().commit(), "open");
}

HistoryRecord HistoryStore::record_at(const Statement& s, int c) {
  HistoryRecord h;
  h.revision = Revision(static_cast<uint64_t>(s.column_int64(c)));
  h.epoch = controlplane::Epoch(static_cast<uint64_t>(s.column_int64(c + 1)));
  h.from = controlplane::WorkerId(s.column_text(c + 2));
  h.to = controlplane::WorkerId(s.column_text(c + 3));
  h.reason = static_cast<controlplane::ChangeReason>(s.column_int64(c + 4));
  h.at_ms = static_cast<uint64_t>(s.column_int64(c + 5));
  h.prepare_ms = static_cast<uint32_t>(s.column_int64(c + 6));
  h.drain_ms = static_cast<uint32_t>(s.column_int64(c + 7));
  int64_t flags = s.column_int64(c + 8);
  h.prepare_timed_out = flags & 1;
  h.drain_timed_out = flags & 2;
  h.prepared = flags & 4;
  return h;
}

HistoryStore::Page HistoryStore::export_now(const Job& job) {
  Page page;
  page.gap_through = gap_;
  storage::StatementRef st = stmt(kExport, "export");
  HISTORY_MUST(st->bind_int64(1, static_cast<int64_t>(job.revision.value())), "export");
  HISTORY_MUST(st->bind_int64(2, static_cast<int64_t>(job.after_revision.value())), "export");
  HISTORY_MUST(st->bind_int64(3, hash_of(job.shard)), "export");
  HISTORY_MUST(st->bind_text(4, job.shard.str()), "export");
  HISTORY_MUST(st->bind_int64(5, static_cast<int64_t>(job.limit)), "export");
  for (;;) {
    auto row = st->step();
    HISTORY_MUST(row, "export");
    if (!row.value()) break;
    page.records.emplace_back(ShardId(st->column_text(0)), record_at(*st, 1));
  }
  page.more = job.limit > 0 && page.records.size() == job.limit;
  return page;
}

bool HistoryStore::import_now(const Job& job) {
  if (job.revision != gap_ || gap_ == Revision(0)) return false;
  for (const auto& [shard, h] : job.page.records) {
    // Only what the gap lacks, and nothing of a shard deleted since.
    if (h.revision > gap_ || erased_in_gap_.count(shard)) continue;
    add_record(shard, hash_of(shard), h, false);
  }
  if (job.last && job.page.gap_through < gap_) {
    gap_ = job.page.gap_through;
    set_meta(kGap, gap_.value());
    gap_seen_.store(gap_.value(), std::memory_order_release);
    if (gap_ == Revision(0)) erased_in_gap_.clear();
  }
  return true;
}

HistoryStore::Answer HistoryStore::read_now(const ShardId& shard) {
  Answer a;
  a.gap_through = gap_;
  int64_t hash = hash_of(shard);
  for (uint64_t r : head(hash)) {
    storage::StatementRef st = stmt(kSelect, "read");
    HISTORY_MUST(st->bind_int64(1, static_cast<int64_t>(r)), "read");
    HISTORY_MUST(st->bind_int64(2, hash), "read");
    HISTORY_MUST(st->bind_text(3, shard.str()), "read");
    auto row = st->step();
    HISTORY_MUST(row, "read");
    if (row.value()) a.records.push_back(record_at(*st, 0));
  }
  return a;
}

void HistoryStore::make_durable(Revision through) {
  // In WAL mode a commit at synchronous=FULL fsyncs the WAL, and with it
  // every commit before it (checkpointed pages were synced by the checkpoint).
  written_rev_ = std::max(written_rev_, through);
  HISTORY_MUST(db_->exec("PRAGMA synchronous=FULL"), "sync");
  auto t = Transaction::begin(*db_);
  HISTORY_MUST(t, "sync");
  set_meta(kWritten, written_rev_.value());
  HISTORY_MUST(t.value().commit(), "sync");
  HISTORY_MUST(db_->exec("PRAGMA synchronous=NORMAL"), "sync");
}

}  // namespace tenure::member
