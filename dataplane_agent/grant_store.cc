#include "dataplane_agent/grant_store.h"

namespace tenure::agent {

namespace {
constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS shards ("
    "  shard TEXT PRIMARY KEY,"
    "  max_epoch INTEGER NOT NULL,"
    "  dropped_epoch INTEGER NOT NULL,"
    "  held INTEGER NOT NULL"
    ") WITHOUT ROWID;";
constexpr const char* kGetMeta = "SELECT value FROM meta WHERE key = ?1";
constexpr const char* kSetMeta =
    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value";
constexpr const char* kUpsertShard =
    "INSERT INTO shards (shard, max_epoch, dropped_epoch, held) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(shard) DO UPDATE SET max_epoch = excluded.max_epoch, "
    "dropped_epoch = excluded.dropped_epoch, held = excluded.held";
constexpr const char* kAllShards = "SELECT shard, max_epoch, dropped_epoch, held FROM shards";
constexpr const char* kSchemaVersion = "1";

StoreError io_error(const std::string& what, const storage::SqliteError& e) {
  return StoreError{StoreErrc::kIo, what + ": " + e.message};
}

StoreResult<std::optional<std::string>> get_meta(storage::Database& db, const std::string& key) {
  auto st = db.cached(kGetMeta);
  if (!st.ok()) return io_error("read meta", st.error());
  auto& s = st.value();
  if (auto b = s->bind_text(1, key); !b.ok()) return io_error("read meta", b.error());
  auto row = s->step();
  if (!row.ok()) return io_error("read meta", row.error());
  if (!row.value()) return std::optional<std::string>();
  return std::optional<std::string>(s->column_text(0));
}

StoreResult<Ok> set_meta(storage::Database& db, const std::string& key, const std::string& value) {
  auto st = db.cached(kSetMeta);
  if (!st.ok()) return io_error("write meta", st.error());
  auto& s = st.value();
  if (auto b = s->bind_text(1, key); !b.ok()) return io_error("write meta", b.error());
  if (auto b = s->bind_text(2, value); !b.ok()) return io_error("write meta", b.error());
  if (auto r = s->run(); !r.ok()) return io_error("write meta", r.error());
  return Ok{};
}
}  // namespace

StoreResult<std::unique_ptr<GrantStore>> GrantStore::open(const std::string& path, const WorkerId& self) {
  auto db = open_durable(path);
  if (!db.ok()) return db.error();
  std::unique_ptr<GrantStore> store(new GrantStore(std::move(db.value())));
  if (auto r = store->init(self); !r.ok()) return r.error();
  return store;
}

StoreResult<Ok> GrantStore::init(const WorkerId& self) {
  auto tx = storage::Transaction::begin(*db_);
  if (!tx.ok()) return io_error("open", tx.error());
  if (auto r = exec_or_error(*db_, kSchema, "create schema"); !r.ok()) return r.error();
  auto version = get_meta(*db_, "schema_version");
  if (!version.ok()) return version.error();
  if (version.value() && *version.value() != kSchemaVersion) {
    return StoreError{StoreErrc::kSchema, db_->path() + ": schema_version " + *version.value() + " is not supported"};
  }
  auto worker = get_meta(*db_, "worker_id");
  if (!worker.ok()) return worker.error();
  if (worker.value() && *worker.value() != self.str()) {
    return StoreError{StoreErrc::kForeign, db_->path() + " belongs to worker \"" + *worker.value() +
                                               "\", not \"" + self.str() + "\"; use another data_dir"};
  }
  if (!version.value()) {
    if (auto r = set_meta(*db_, "schema_version", kSchemaVersion); !r.ok()) return r.error();
    if (auto r = set_meta(*db_, "worker_id", self.str()); !r.ok()) return r.error();
    if (auto r = set_meta(*db_, "revision", "0"); !r.ok()) return r.error();
  }
  if (auto c = tx.value().commit(); !c.ok()) return io_error("open", c.error());
  return Ok{};
}

StoreResult<GrantStore::Loaded> GrantStore::load() {
  Loaded out;
  auto rev = get_meta(*db_, "revision");
  if (!rev.ok()) return rev.error();
  if (rev.value()) out.revision = Revision(std::stoull(*rev.value()));
  auto st = db_->cached(kAllShards);
  if (!st.ok()) return io_error("load", st.error());
  auto& s = st.value();
  while (true) {
    auto row = s->step();
    if (!row.ok()) return io_error("load", row.error());
    if (!row.value()) break;
    ShardRecord rec;
    rec.max_epoch = Epoch(static_cast<uint64_t>(s->column_int64(1)));
    rec.dropped_epoch = Epoch(static_cast<uint64_t>(s->column_int64(2)));
    rec.held = s->column_int64(3) != 0;
    out.records.emplace(s->column_text(0), rec);
  }
  return out;
}

StoreResult<Ok> GrantStore::save(const GrantChanges& changes) {
  if (changes.empty()) return Ok{};
  auto tx = storage::Transaction::begin(*db_);
  if (!tx.ok()) return io_error("save", tx.error());
  for (const auto& [id, rec] : changes.records()) {
    auto st = db_->cached(kUpsertShard);
    if (!st.ok()) return io_error("save", st.error());
    auto& s = st.value();
    if (auto b = s->bind_text(1, id); !b.ok()) return io_error("save", b.error());
    (void)s->bind_int64(2, static_cast<int64_t>(rec.max_epoch.value()));
    (void)s->bind_int64(3, static_cast<int64_t>(rec.dropped_epoch.value()));
    (void)s->bind_int64(4, rec.held ? 1 : 0);
    if (auto r = s->run(); !r.ok()) return io_error("save", r.error());
  }
  if (changes.revision()) {
    if (auto r = set_meta(*db_, "revision", std::to_string(changes.revision()->value())); !r.ok()) return r.error();
  }
  if (auto c = tx.value().commit(); !c.ok()) return io_error("commit", c.error());
  return Ok{};
}

}  // namespace tenure::agent
