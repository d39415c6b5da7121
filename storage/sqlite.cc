#include "storage/sqlite.h"

#include <sqlite3.h>

#include <utility>

namespace tenure::storage {

namespace {

SqliteErrorCode map_code(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return SqliteErrorCode::kBusy;
    case SQLITE_IOERR: return SqliteErrorCode::kIo;
    case SQLITE_FULL: return SqliteErrorCode::kFull;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return SqliteErrorCode::kCorrupt;
    case SQLITE_CONSTRAINT: return SqliteErrorCode::kConstraint;
    case SQLITE_CANTOPEN: return SqliteErrorCode::kCantOpen;
    case SQLITE_READONLY: return SqliteErrorCode::kReadOnly;
    case SQLITE_MISUSE: return SqliteErrorCode::kMisuse;
    default: return SqliteErrorCode::kError;
  }
}

// "disk I/O error (code=1034)": SQLite's message for the connection's last
// error plus the extended code, which tells an fsync failure (1034) from a
// write failure (778) and so on.
SqliteError make_error(sqlite3* db, int rc) {
  std::string msg = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  int ext = db != nullptr ? sqlite3_extended_errcode(db) : rc;
  return SqliteError{map_code(rc), msg + " (code=" + std::to_string(ext) + ")"};
}

}  // namespace

Statement::Statement(Statement&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)), stmt_(std::exchange(other.stmt_, nullptr)) {}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = std::exchange(other.db_, nullptr);
    stmt_ = std::exchange(other.stmt_, nullptr);
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

SqliteStatus Statement::check_bind(int rc) {
  if (rc != SQLITE_OK) return make_error(db_, rc);
  return Ok{};
}

SqliteStatus Statement::bind_int64(int i, int64_t v) { return check_bind(sqlite3_bind_int64(stmt_, i, v)); }

SqliteStatus Statement::bind_text(int i, std::string_view v) {
  return check_bind(sqlite3_bind_text64(stmt_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}

SqliteStatus Statement::bind_blob(int i, std::string_view v) {
  // A zero-length blob with a null pointer would bind NULL; give it a pointer.
  const char* p = v.data() != nullptr ? v.data() : "";
  return check_bind(sqlite3_bind_blob64(stmt_, i, p, v.size(), SQLITE_TRANSIENT));
}

SqliteResult<bool> Statement::step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return make_error(db_, rc);
}

SqliteStatus Statement::run() {
  auto r = step();
  if (!r.ok()) return r.error();
  return Ok{};
}

int64_t Statement::column_int64(int i) const { return sqlite3_column_int64(stmt_, i); }

std::string Statement::column_text(int i) const {
  const unsigned char* p = sqlite3_column_text(stmt_, i);
  int n = sqlite3_column_bytes(stmt_, i);
  return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
}

std::string Statement::column_blob(int i) const {
  const void* p = sqlite3_column_blob(stmt_, i);
  int n = sqlite3_column_bytes(stmt_, i);
  return p == nullptr ? std::string() : std::string(static_cast<const char*>(p), static_cast<size_t>(n));
}

bool Statement::column_is_null(int i) const { return sqlite3_column_type(stmt_, i) == SQLITE_NULL; }

void Statement::reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

SqliteResult<std::unique_ptr<Database>> Database::open(const std::string& path, const std::string& vfs) {
  sqlite3* db = nullptr;
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
  int rc = sqlite3_open_v2(path.c_str(), &db, flags, vfs.empty() ? nullptr : vfs.c_str());
  if (rc != SQLITE_OK) {
    SqliteError e = make_error(db, rc);
    sqlite3_close_v2(db);  // a handle is returned even on failure (or null)
    return e;
  }
  sqlite3_extended_result_codes(db, 1);
  return std::unique_ptr<Database>(new Database(db, path));
}

Database::~Database() {
  cache_.clear();  // statements first: close refuses a connection with live statements
  sqlite3_close_v2(db_);
}

SqliteStatus Database::exec(const std::string& sql) {
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return make_error(db_, rc);
  return Ok{};
}

SqliteResult<std::string> Database::query_text(const std::string& sql) {
  auto st = prepare(sql);
  if (!st.ok()) return st.error();
  auto row = st.value().step();
  if (!row.ok()) return row.error();
  if (!row.value()) return SqliteError{SqliteErrorCode::kError, "no row from: " + sql};
  return st.value().column_text(0);
}

SqliteResult<Statement> Database::prepare(std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &stmt,
                              nullptr);
  if (rc != SQLITE_OK) return make_error(db_, rc);
  return Statement(db_, stmt);
}

SqliteResult<StatementRef> Database::cached(const std::string& sql) {
  auto it = cache_.find(sql);
  if (it == cache_.end()) {
    auto st = prepare(sql);
    if (!st.ok()) return st.error();
    it = cache_.emplace(sql, std::make_unique<Statement>(std::move(st.value()))).first;
  }
  return StatementRef(it->second.get());
}

namespace {

// BEGIN/COMMIT/ROLLBACK through cached statements: no SQL parsing per
// transaction on the persist() hot path.
SqliteStatus run_cached(Database& db, const char* sql) {
  auto st = db.cached(sql);
  if (!st.ok()) return st.error();
  return st.value()->run();
}

}  // namespace

SqliteResult<Transaction> Transaction::begin(Database& db) {
  auto r = run_cached(db, "BEGIN IMMEDIATE");
  if (!r.ok()) return r.error();
  return Transaction(&db);
}

Transaction::~Transaction() {
  if (db_ != nullptr) (void)run_cached(*db_, "ROLLBACK");
}

SqliteStatus Transaction::commit() {
  Database* db = std::exchange(db_, nullptr);
  auto r = run_cached(*db, "COMMIT");
  // A failed COMMIT may leave the transaction open (e.g. SQLITE_BUSY); end it.
  if (!r.ok()) (void)run_cached(*db, "ROLLBACK");
  return r;
}

}  // namespace tenure::storage
