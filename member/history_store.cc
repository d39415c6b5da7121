#include "member/history_store.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <optional>
#include <set>

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
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS history (
  shard TEXT NOT NULL,
  revision INTEGER NOT NULL,
  epoch INTEGER NOT NULL,
  from_worker TEXT NOT NULL,
  to_worker TEXT NOT NULL,
  reason INTEGER NOT NULL,
  at_ms INTEGER NOT NULL,
  prepare_ms INTEGER NOT NULL,
  drain_ms INTEGER NOT NULL,
  flags INTEGER NOT NULL,
  PRIMARY KEY (shard, revision)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
)sql";
// Meta keys: the revision the file is written through, and the gap.
constexpr const char* kWritten = "written_revision";
constexpr const char* kGap = "gap_through_revision";

constexpr const char* kInsert =
    "INSERT OR REPLACE INTO history (shard, revision, epoch, from_worker, to_worker, reason, at_ms, prepare_ms, "
    "drain_ms, flags) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
// Keeps the newest ?2 + 1 records of a shard: the subquery names the
// oldest one kept (NULL, deleting nothing, while there are fewer).
constexpr const char* kTrim =
    "DELETE FROM history WHERE shard = ?1 AND revision < (SELECT revision FROM history WHERE shard = ?1 "
    "ORDER BY revision DESC LIMIT 1 OFFSET ?2)";
// An exported page: (shard, revision) after the cursor, in key order (the
// primary key's index serves the row-value comparison).
constexpr const char* kExport =
    "SELECT shard, revision, epoch, from_worker, to_worker, reason, at_ms, prepare_ms, drain_ms, flags FROM history "
    "WHERE (shard, revision) > (?2, ?3) AND revision <= ?1 ORDER BY shard, revision LIMIT ?4";
// An imported record never replaces one this member wrote itself.
constexpr const char* kImport =
    "INSERT OR IGNORE INTO history (shard, revision, epoch, from_worker, to_worker, reason, at_ms, prepare_ms, "
    "drain_ms, flags) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
constexpr const char* kErase = "DELETE FROM history WHERE shard = ?1 AND revision < ?2";
constexpr const char* kSelect =
    "SELECT revision, epoch, from_worker, to_worker, reason, at_ms, prepare_ms, drain_ms, flags FROM history "
    "WHERE shard = ?1 ORDER BY revision";

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
  std::set<ShardId> touched;
  uint64_t records = 0;
  auto begin = [&] {
    if (tx) return;
    auto t = Transaction::begin(*db_);
    HISTORY_MUST(t, "write");
    tx.emplace(std::move(t.value()));
  };
  auto commit = [&] {
    if (!tx) return;
    for (const auto& shard : touched) {
      storage::StatementRef st = stmt(kTrim, "trim");
      HISTORY_MUST(st->bind_text(1, shard.str()), "trim");
      HISTORY_MUST(st->bind_int64(2, static_cast<int64_t>(per_shard_ - 1)), "trim");
      HISTORY_MUST(st->run(), "trim");
    }
    touched.clear();
    set_meta(kWritten, written_rev_.value());
    HISTORY_MUST(tx->commit(), "commit");
    tx.reset();
  };
  for (size_t i = 0; i < jobs.size();) {
    Job& job = jobs[i];
    if (job.kind == Job::kChanges) {
      // A run of applies is written in key order (shard, then apply order
      // within a shard: a stable sort), so that the inserts walk the
      // table's B-tree rather than jump around it: a failover pass of
      // 200,000 shards was written at a third of the speed otherwise, and
      // the writer fell behind a fleet that kept moving.
      std::vector<const Change*> changes;
      size_t written = 0;
      for (; i < jobs.size() && jobs[i].kind == Job::kChanges; ++i) {
        for (const auto& c : jobs[i].changes) changes.push_back(&c);
        written_rev_ = jobs[i].revision;
        written += jobs[i].changes.size();
      }
      std::stable_sort(changes.begin(), changes.end(),
                       [](const Change* a, const Change* b) { return a->shard < b->shard; });
      begin();
      for (const Change* c : changes) records += write_change(*c, touched);
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
        HISTORY_MUST(db_->exec("DELETE FROM history"), "reset");
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
        for (const auto& change : job.changes) write_change(change, touched);  // the deletions
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
        bool ok = import_now(job, touched);
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

uint64_t HistoryStore::write_change(const Change& c, std::set<ShardId>& touched) {
  const HistoryRecord& h = c.record;
  if (c.erase) {
    storage::StatementRef st = stmt(kErase, "erase");
    HISTORY_MUST(st->bind_text(1, c.shard.str()), "erase");
    HISTORY_MUST(st->bind_int64(2, static_cast<int64_t>(h.revision.value())), "erase");
    HISTORY_MUST(st->run(), "erase");
    touched.erase(c.shard);
    if (gap_ > Revision(0)) erased_in_gap_.insert(c.shard);
    return 0;
  }
  storage::StatementRef st = stmt(kInsert, "insert");
  bind_record(*st, c.shard, h, "insert");
  HISTORY_MUST(st->run(), "insert");
  touched.insert(c.shard);
  return 1;
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
  HISTORY_MUST(st->bind_text(2, job.shard.str()), "export");
  HISTORY_MUST(st->bind_int64(3, static_cast<int64_t>(job.after_revision.value())), "export");
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

bool HistoryStore::import_now(const Job& job, std::set<ShardId>& touched) {
  if (job.revision != gap_ || gap_ == Revision(0)) return false;
  for (const auto& [shard, h] : job.page.records) {
    // Only what the gap lacks, and nothing of a shard deleted since.
    if (h.revision > gap_ || erased_in_gap_.count(shard)) continue;
    storage::StatementRef st = stmt(kImport, "import");
    bind_record(*st, shard, h, "import");
    HISTORY_MUST(st->run(), "import");
    touched.insert(shard);
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
  storage::StatementRef st = stmt(kSelect, "read");
  HISTORY_MUST(st->bind_text(1, shard.str()), "read");
  for (;;) {
    auto row = st->step();
    HISTORY_MUST(row, "read");
    if (!row.value()) break;
    a.records.push_back(record_at(*st, 0));
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
