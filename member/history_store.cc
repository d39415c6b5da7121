#include "member/history_store.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <set>

#include "common/codec.h"
#include "common/log.h"
#include "common/thread_name.h"
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
// through `heads`: one small row per shard, keyed by its id, listing the
// revisions of its records (delta-encoded). Keeping the newest
// `history_per_shard` rewrites that row and deletes the oldest record,
// which sits among the other records of the same old apply.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS records (
  revision INTEGER NOT NULL,
  shard TEXT NOT NULL,
  epoch INTEGER NOT NULL,
  from_worker TEXT NOT NULL,
  to_worker TEXT NOT NULL,
  reason INTEGER NOT NULL,
  at_ms INTEGER NOT NULL,
  prepare_ms INTEGER NOT NULL,
  drain_ms INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  PRIMARY KEY (revision, shard)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS heads (shard TEXT PRIMARY KEY, revisions BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
)sql";
// Meta keys: the revision the file is written through, and the gap.
constexpr const char* kWritten = "written_revision";
constexpr const char* kGap = "gap_through_revision";

// A record's columns after its shard, in the order record_at() reads them
// (a macro so that every statement below is one literal).
#define HISTORY_RECORD_COLUMNS "revision, epoch, from_worker, to_worker, reason, at_ms, prepare_ms, drain_ms, flags"

constexpr const char* kInsert = "INSERT OR REPLACE INTO records (shard, " HISTORY_RECORD_COLUMNS
                                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
// An imported record never replaces one this member wrote itself.
constexpr const char* kImport = "INSERT OR IGNORE INTO records (shard, " HISTORY_RECORD_COLUMNS
                                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr const char* kHead = "SELECT revisions FROM heads WHERE shard = ?1";
constexpr const char* kSetHead = "INSERT OR REPLACE INTO heads (shard, revisions) VALUES (?1, ?2)";
constexpr const char* kDropHead = "DELETE FROM heads WHERE shard = ?1";
constexpr const char* kDropRecord = "DELETE FROM records WHERE revision = ?1 AND shard = ?2";
constexpr const char* kSelect = "SELECT " HISTORY_RECORD_COLUMNS " FROM records WHERE revision = ?1 AND shard = ?2";
// An exported page: records after the cursor in the table's order (the
// cursor is the last record of the page before, so any order works).
constexpr const char* kExport =
    "SELECT shard, " HISTORY_RECORD_COLUMNS " FROM records "
    "WHERE revision <= ?1 AND (revision, shard) > (?2, ?3) ORDER BY revision, shard LIMIT ?4";
// Earlier layouts, moved over on open: the first (one table keyed by
// (shard, revision)), and one with a hashed head key that main had for an
// hour (never released; its heads are rebuilt from its records).
constexpr const char* kFirstLayout = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'history'";
constexpr const char* kHashedLayout = "SELECT 1 FROM pragma_table_info('heads') WHERE name = 'hash'";

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

void HistoryStore::bind_record(Statement& s, const ShardId& shard, const HistoryRecord& h, const char* op) {
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
}

HistoryStore::HistoryStore(const std::string& data_dir, size_t per_shard, QueueBound bound)
    : per_shard_(std::max<size_t>(per_shard, 1)), bound_(bound) {
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

void HistoryStore::Packed::add(const Change& c) {
  Writer w;
  w.buffer().swap(bytes);
  const HistoryRecord& h = c.record;
  w.str(c.shard.str());
  w.u8(static_cast<uint8_t>((c.erase ? 1 : 0) | (h.prepared ? 2 : 0) | (h.prepare_timed_out ? 4 : 0) |
                            (h.drain_timed_out ? 8 : 0)));
  w.varint(h.revision.value());
  if (!c.erase) {
    w.varint(h.epoch.value());
    w.str(h.from.str());
    w.str(h.to.str());
    w.u8(static_cast<uint8_t>(h.reason));
    w.varint(h.at_ms);
    w.varint(h.prepare_ms);
    w.varint(h.drain_ms);
  }
  w.buffer().swap(bytes);
  ++count;
}

void HistoryStore::Packed::unpack_into(std::vector<Change>& out) const {
  Reader r(bytes);
  for (size_t i = 0; i < count; ++i) {
    Change c;
    c.shard = ShardId(r.str());
    uint8_t flags = r.u8();
    c.erase = flags & 1;
    HistoryRecord& h = c.record;
    h.prepared = flags & 2;
    h.prepare_timed_out = flags & 4;
    h.drain_timed_out = flags & 8;
    h.revision = Revision(r.varint());
    if (!c.erase) {
      h.epoch = controlplane::Epoch(r.varint());
      h.from = controlplane::WorkerId(r.str());
      h.to = controlplane::WorkerId(r.str());
      h.reason = static_cast<controlplane::ChangeReason>(r.u8());
      h.at_ms = r.varint();
      h.prepare_ms = static_cast<uint32_t>(r.varint());
      h.drain_ms = static_cast<uint32_t>(r.varint());
    }
    out.push_back(std::move(c));
  }
  // Our own encoding, in memory: a mismatch is a bug, not input.
  if (r.failed() || !r.done()) storage_fatal("op=history_queue error=\"undecodable queued changes\"");
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
    queued_records_ += job.changes.count;
    if (job.kind == Job::kBehind && !jobs_.empty() && jobs_.back().kind == Job::kBehind) {
      // A writer held up for long sees one dropped apply after another:
      // they are one gap, queued as one job rather than one job an apply.
      Job& last = jobs_.back();
      last.revision = job.revision;
      last.changes.bytes += job.changes.bytes;
      last.changes.count += job.changes.count;
      last.footprint += job.changes.bytes.size();
      queued_bytes_ += job.changes.bytes.size();
    } else {
      queued_bytes_ += job.footprint;
      jobs_.push_back(std::move(job));
    }
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
  size_t queued_records, queued_bytes;
  {
    std::lock_guard<std::mutex> lock(mu_);
    queued_records = queued_records_;
    queued_bytes = queued_bytes_;
  }
  // Decided before encoding, from the ids' lengths (an encoded record is
  // its three ids and at most kMaxEncodedFields bytes more): a writer that
  // far behind means a busy member, whose strand should not encode what
  // it then drops. One apply larger than the whole bound still goes to an
  // idle writer (and then nothing is estimated).
  auto over_bytes = [&] {
    size_t estimate = sizeof(Job);
    for (const auto& c : pending_) {
      estimate += c.shard.str().size() + c.record.from.str().size() + c.record.to.str().size() + kMaxEncodedFields;
    }
    return queued_bytes + estimate > bound_.bytes;
  };
  if (queued_bytes > 0 && (queued_records + pending_.size() > bound_.records || over_bytes())) {
    // The writer is that far behind: these records are dropped, and the
    // gap says so (the backfill copies them from the leader later).
    // A deletion is kept (few, and a shard created again must not show the
    // records of the one deleted).
    Job behind;
    behind.kind = Job::kBehind;
    behind.revision = revision;
    for (const auto& change : pending_) {
      if (change.erase) behind.changes.add(change);
    }
    behind.footprint = behind.changes.bytes.capacity() + sizeof(Job);
    size_t dropped = pending_.size() - behind.changes.count;
    release_pending();
    {
      std::lock_guard<std::mutex> lock(mu_);
      records_dropped_ += dropped;
    }
    if (!behind_) {
      behind_ = true;
      log_warn("history", "event=history_behind queued=" + std::to_string(queued_records) +
                              " queued_bytes=" + std::to_string(queued_bytes) +
                              " dropped_from_revision=" + std::to_string(revision.value()) +
                              " hint=\"the history writer cannot keep up: records are dropped and marked as a gap, "
                              "filled from the leader later\"");
    }
    return enqueue(std::move(behind));
  }
  behind_ = false;
  Job job;
  job.revision = revision;
  for (const auto& change : pending_) job.changes.add(change);
  release_pending();
  // Appends doubled the buffer: what waits in the queue holds its bytes only.
  if (job.changes.bytes.capacity() > job.changes.bytes.size() + job.changes.bytes.size() / 8) {
    job.changes.bytes.shrink_to_fit();
  }
  job.footprint = job.changes.bytes.capacity() + sizeof(Job);
  enqueue(std::move(job));
}

void HistoryStore::release_pending() {
  // One apply of a failover or a create holds 50,000-100,000 changes of
  // ~200 bytes; clear() would keep that capacity for the member's life.
  if (pending_.capacity() > kKeptPendingCapacity) {
    std::vector<Change>().swap(pending_);
  } else {
    pending_.clear();
  }
}

void HistoryStore::opened_at(Revision revision) {
  if (!pending_.empty()) return submit(revision);
  if (written_at_open_ < revision) return reset(revision);
  std::lock_guard<std::mutex> lock(mu_);
  submitted_ = std::max(submitted_, revision);
}

void HistoryStore::reset(Revision revision) {
  release_pending();
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
  return Counts{queued_records_, queued_bytes_, records_written_, records_dropped_};
}

uint64_t HistoryStore::records_written() const {
  std::lock_guard<std::mutex> lock(mu_);
  return records_written_;
}

void HistoryStore::run() {
  name_this_thread("tenure-history");
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
      // (revision, shard) order, each apply's appended to the table's end;
      // then the heads in shard order (a stable sort keeps each shard's
      // changes in apply order), walking that table's B-tree rather than
      // jumping around it.
      // Decoded a slice at a time (kWriteSlice records), in one transaction.
      std::vector<Change> batch;
      size_t footprints = 0;
      for (; i < jobs.size() && jobs[i].kind == Job::kChanges && batch.size() < kWriteSlice; ++i) {
        jobs[i].changes.unpack_into(batch);
        jobs[i].changes = Packed{};
        footprints += jobs[i].footprint;
        written_rev_ = jobs[i].revision;
      }
      size_t written = batch.size();
      std::vector<const Change*> changes;
      changes.reserve(batch.size());
      for (const auto& c : batch) changes.push_back(&c);
      std::stable_sort(changes.begin(), changes.end(), [](const Change* a, const Change* b) {
        return a->record.revision != b->record.revision ? a->record.revision < b->record.revision : a->shard < b->shard;
      });
      begin();
      for (const Change* c : changes) {
        if (c->erase) continue;
        storage::StatementRef st = stmt(kInsert, "insert");
        bind_record(*st, c->shard, c->record, "insert");
        HISTORY_MUST(st->run(), "insert");
      }
      std::stable_sort(changes.begin(), changes.end(), [](const Change* a, const Change* b) { return a->shard < b->shard; });
      for (const Change* c : changes) records += write_change(*c);
      {
        std::lock_guard<std::mutex> lock(mu_);
        queued_records_ -= written;
        queued_bytes_ -= footprints;
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
        std::vector<Change> deletions;
        job.changes.unpack_into(deletions);
        for (const auto& change : deletions) write_change(change);
        written_rev_ = job.revision;
        std::lock_guard<std::mutex> lock(mu_);
        queued_records_ -= deletions.size();
        queued_bytes_ -= job.footprint;
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

uint64_t HistoryStore::write_change(const Change& c) {
  if (c.erase) {
    erase_records(c.shard, c.record.revision);
    if (gap_ > Revision(0)) erased_in_gap_.insert(c.shard);
    return 0;
  }
  // The record itself was written in the first pass (write()).
  std::vector<uint64_t> revisions = head(c.shard);
  uint64_t r = c.record.revision.value();
  auto at = std::lower_bound(revisions.begin(), revisions.end(), r);
  if (at == revisions.end() || *at != r) revisions.insert(at, r);
  size_t excess = revisions.size() > per_shard_ ? revisions.size() - per_shard_ : 0;
  for (size_t i = 0; i < excess; ++i) drop_record(c.shard, revisions[i]);
  revisions.erase(revisions.begin(), revisions.begin() + static_cast<std::ptrdiff_t>(excess));
  set_head(c.shard, revisions);
  return 1;
}

void HistoryStore::add_record(const ShardId& shard, const HistoryRecord& h, bool replace) {
  storage::StatementRef st = stmt(replace ? kInsert : kImport, "insert");
  bind_record(*st, shard, h, "insert");
  HISTORY_MUST(st->run(), "insert");
  write_change(Change{shard, h});
}

void HistoryStore::drop_record(const ShardId& shard, uint64_t revision) {
  storage::StatementRef st = stmt(kDropRecord, "trim");
  HISTORY_MUST(st->bind_int64(1, static_cast<int64_t>(revision)), "trim");
  HISTORY_MUST(st->bind_text(2, shard.str()), "trim");
  HISTORY_MUST(st->run(), "trim");
}

void HistoryStore::erase_records(const ShardId& shard, Revision before) {
  std::vector<uint64_t> revisions = head(shard);
  auto kept = std::lower_bound(revisions.begin(), revisions.end(), before.value());
  if (kept == revisions.begin()) return;
  for (auto it = revisions.begin(); it != kept; ++it) drop_record(shard, *it);
  revisions.erase(revisions.begin(), kept);
  set_head(shard, revisions);
}

std::vector<uint64_t> HistoryStore::head(const ShardId& shard) {
  storage::StatementRef st = stmt(kHead, "head");
  HISTORY_MUST(st->bind_text(1, shard.str()), "head");
  auto row = st->step();
  HISTORY_MUST(row, "head");
  if (!row.value()) return {};
  return decode_revisions(st->column_blob(0), db_->path());
}

void HistoryStore::set_head(const ShardId& shard, const std::vector<uint64_t>& revisions) {
  storage::StatementRef st = stmt(revisions.empty() ? kDropHead : kSetHead, "head");
  HISTORY_MUST(st->bind_text(1, shard.str()), "head");
  if (!revisions.empty()) HISTORY_MUST(st->bind_blob(2, encode_revisions(revisions)), "head");
  HISTORY_MUST(st->run(), "head");
}

bool HistoryStore::query_one(const char* sql) {
  storage::StatementRef st = stmt(sql, "open");
  auto row = st->step();
  HISTORY_MUST(row, "open");
  return row.value();
}  // the statement is reset as its borrow ends (a read of sqlite_master must end before a DROP)

void HistoryStore::move_old_records(const char* table) {
  uint64_t moved = 0;
  {
    auto rows = db_->cached(std::string("SELECT shard, " HISTORY_RECORD_COLUMNS " FROM ") + table);
    HISTORY_MUST(rows, "migrate");
    storage::StatementRef st = std::move(rows.value());
    for (;;) {
      auto row = st->step();
      HISTORY_MUST(row, "migrate");
      if (!row.value()) break;
      add_record(ShardId(st->column_text(0)), record_at(*st, 1), false);
      ++moved;
    }
  }
  HISTORY_MUST(db_->exec(std::string("DROP TABLE ") + table), "migrate");
  log_info("history", "event=history_layout_migrated from=" + std::string(table) + " records=" +
                          std::to_string(moved) + " path=" + storage_quoted(db_->path()));
}

void HistoryStore::open_layout() {
  // A crash midway leaves the old table whole: all of this is one transaction.
  auto t = Transaction::begin(*db_);
  HISTORY_MUST(t, "open");
  if (query_one(kHashedLayout)) {
    HISTORY_MUST(db_->exec("DROP TABLE heads; ALTER TABLE records RENAME TO records_hashed"), "migrate");
    HISTORY_MUST(db_->exec(kSchema), "migrate");
    move_old_records("records_hashed");
  }
  if (query_one(kFirstLayout)) move_old_records("history");
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
  HISTORY_MUST(st->bind_text(3, job.shard.str()), "export");
  HISTORY_MUST(st->bind_int64(4, static_cast<int64_t>(job.limit)), "export");
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
    add_record(shard, h, false);
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
  for (uint64_t r : head(shard)) {
    storage::StatementRef st = stmt(kSelect, "read");
    HISTORY_MUST(st->bind_int64(1, static_cast<int64_t>(r)), "read");
    HISTORY_MUST(st->bind_text(2, shard.str()), "read");
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
