#include "dataplane_agent/agent_db.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace tenure::agent {

StoreResult<std::unique_ptr<storage::Database>> open_durable(const std::string& path) {
  auto db = storage::Database::open(path);
  if (!db.ok()) return StoreError{StoreErrc::kOpen, "cannot open " + path + ": " + db.error().message};
  auto& d = *db.value();
  auto mode = d.query_text("PRAGMA journal_mode=WAL");
  if (!mode.ok() || mode.value() != "wal") {
    return StoreError{StoreErrc::kOpen, path + ": WAL mode refused"};
  }
  auto ok = exec_or_error(d, "PRAGMA synchronous=FULL; PRAGMA busy_timeout=5000", path);
  if (!ok.ok()) return ok.error();
  auto sync = d.query_text("PRAGMA synchronous");
  if (!sync.ok() || sync.value() != "2") return StoreError{StoreErrc::kOpen, path + ": synchronous=FULL refused"};
  return std::move(db.value());
}

StoreResult<Ok> exec_or_error(storage::Database& db, const std::string& sql, const std::string& what) {
  auto r = db.exec(sql);
  if (!r.ok()) return StoreError{StoreErrc::kIo, what + ": " + r.error().message};
  return Ok{};
}

StoreResult<std::unique_ptr<DirLock>> DirLock::acquire(const std::string& dir) {
  std::string path = dir + "/agent.lock";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return StoreError{StoreErrc::kOpen, "cannot open " + path + ": " + std::strerror(errno)};
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    ::close(fd);
    return StoreError{StoreErrc::kLocked, "data_dir " + dir + " is in use by another agent (" + path + " is locked)"};
  }
  return std::unique_ptr<DirLock>(new DirLock(fd));
}

DirLock::~DirLock() { ::close(fd_); }

void sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  (void)::fsync(fd);
  ::close(fd);
}

}  // namespace tenure::agent
