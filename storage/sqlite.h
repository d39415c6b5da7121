#pragma once
// A small RAII layer over the SQLite C API. Failures come back as values
// (SqliteResult) so a caller decides: the Raft storage turns every one into
// a fatal exit (storage/fatal.h), other users may recover. SQLite throws
// nothing; nothing here throws either.
//
// Thread: a Database and its Statements belong to one thread at a time
// (the connection is opened with SQLITE_OPEN_NOMUTEX).

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"

struct sqlite3;
struct sqlite3_stmt;

namespace tenure::storage {

/// SQLite's primary result codes that callers may want to tell apart.
enum class SqliteErrorCode {
  kError,       ///< SQL error or other
  kBusy,        ///< the database is locked by another connection
  kIo,          ///< a read, write or fsync failed (SQLITE_IOERR_*)
  kFull,        ///< disk full
  kCorrupt,     ///< the file is not a valid database
  kConstraint,  ///< a constraint (e.g. a primary key) was violated
  kCantOpen,    ///< the file could not be opened or created
  kReadOnly,
  kMisuse,
};

using SqliteError = Error<SqliteErrorCode>;
template <typename T>
using SqliteResult = Result<T, SqliteErrorCode>;
using SqliteStatus = SqliteResult<Ok>;

/// A prepared statement. Bind 1-based parameters, step(), read 0-based
/// columns, reset() before the next run. Move-only; finalized on destruction.
class Statement {
 public:
  Statement() = default;
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  SqliteStatus bind_int64(int i, int64_t v);
  /// Binds text; SQLite copies it (SQLITE_TRANSIENT), so `v` may die after.
  SqliteStatus bind_text(int i, std::string_view v);
  /// Binds a blob; copied like bind_text.
  SqliteStatus bind_blob(int i, std::string_view v);

  /// Runs one step: true when a row is available, false when done.
  SqliteResult<bool> step();
  /// step() for statements that return no rows (INSERT, DELETE, ...).
  SqliteStatus run();

  int64_t column_int64(int i) const;
  std::string column_text(int i) const;
  std::string column_blob(int i) const;
  bool column_is_null(int i) const;

  /// Makes the statement ready to run again and clears its bindings.
  void reset();

 private:
  friend class Database;
  Statement(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  SqliteStatus check_bind(int rc);

  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

/// A cached Statement borrowed for one use. When the borrow ends the
/// statement is reset and its bindings cleared, so a SELECT never keeps a
/// read transaction open (which would stop WAL checkpoints).
class StatementRef {
 public:
  explicit StatementRef(Statement* s) : s_(s) {}
  StatementRef(StatementRef&& other) noexcept : s_(other.s_) { other.s_ = nullptr; }
  StatementRef& operator=(StatementRef&&) = delete;
  StatementRef(const StatementRef&) = delete;
  ~StatementRef() {
    if (s_ != nullptr) s_->reset();
  }
  Statement* operator->() const { return s_; }
  Statement& operator*() const { return *s_; }

 private:
  Statement* s_;
};

/// One connection to one database file.
class Database {
 public:
  /// Opens (creating if missing) the database at `path`. `vfs` names a
  /// registered SQLite VFS; empty means the default (tests inject I/O faults
  /// through their own).
  static SqliteResult<std::unique_ptr<Database>> open(const std::string& path, const std::string& vfs = "");
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  /// Finalizes cached statements, then closes the connection.
  ~Database();

  /// Runs one or more statements that return no rows (DDL, PRAGMA setters, BEGIN...).
  SqliteStatus exec(const std::string& sql);
  /// Runs a statement expected to return one row and returns its first
  /// column as text (e.g. "PRAGMA journal_mode=WAL" returns "wal").
  SqliteResult<std::string> query_text(const std::string& sql);
  /// Prepares a statement the caller owns.
  SqliteResult<Statement> prepare(std::string_view sql);
  /// The prepared statement for `sql`, prepared on first use and kept for
  /// the life of this Database, with no bindings. The borrow must end
  /// before the Database is destroyed.
  SqliteResult<StatementRef> cached(const std::string& sql);

  const std::string& path() const { return path_; }

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}

  sqlite3* db_;
  std::string path_;
  std::map<std::string, std::unique_ptr<Statement>> cache_;  ///< ordered: no hash-order effects
};

/// BEGIN IMMEDIATE on creation; rolled back on destruction unless commit()
/// succeeded. With journal_mode=WAL and synchronous=FULL, commit() is the
/// one fsync of the transaction.
class Transaction {
 public:
  static SqliteResult<Transaction> begin(Database& db);
  Transaction(Transaction&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();

  SqliteStatus commit();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_;  ///< null once committed or rolled back
};

}  // namespace tenure::storage
