#pragma once
// Opening the agent's SQLite files the one durable way: WAL, synchronous=
// FULL (every commit is fsynced before it returns), and an exclusive lock
// on the data directory so two agents never share one.

#include <memory>
#include <string>

#include "common/result.h"
#include "storage/sqlite.h"

namespace tenure::agent {

enum class StoreErrc { kOpen, kLocked, kSchema, kIo, kForeign };
using StoreError = Error<StoreErrc>;
template <typename T>
using StoreResult = Result<T, StoreErrc>;

/// Opens (creating) `path` with journal_mode=WAL and synchronous=FULL.
StoreResult<std::unique_ptr<storage::Database>> open_durable(const std::string& path);

/// Runs `sql` (no rows); a StoreError naming `what` on failure.
StoreResult<Ok> exec_or_error(storage::Database& db, const std::string& sql, const std::string& what);

/// An exclusive advisory lock (flock) on `dir`/agent.lock, held while alive.
class DirLock {
 public:
  static StoreResult<std::unique_ptr<DirLock>> acquire(const std::string& dir);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

 private:
  explicit DirLock(int fd) : fd_(fd) {}
  int fd_;
};

/// fsyncs a directory so files just created in it survive a crash.
void sync_dir(const std::string& dir);

}  // namespace tenure::agent
