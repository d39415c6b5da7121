#include "storage/snapshot_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <filesystem>

#include "common/codec.h"
#include "common/crc32c.h"
#include "storage/raft_storage.h"

namespace tenure::storage {
namespace {

constexpr std::string_view kPrefix = "snapshot-";
constexpr std::string_view kSuffix = ".snap";
constexpr std::string_view kTempSuffix = ".snap.tmp";

[[noreturn]] void file_fatal(const std::string& op, const std::string& path, const std::string& what) {
  storage_fatal("op=" + op + " path=" + path + " error=\"" + what + ": " + std::strerror(errno) + "\"");
}

void sync_fd(int fd, const std::string& op, const std::string& path) {
  if (::fsync(fd) != 0) file_fatal(op, path, "fsync");
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

uint32_t snapshot_crc_of_meta(const consensus::Snapshot& snap) {
  Writer w;
  w.u64le(snap.index.value());
  w.u64le(snap.term.value());
  std::string& head = w.buffer();
  for (const auto& id : snap.conf.voters) head += "v" + id.str() + '\0';
  for (const auto& id : snap.conf.learners) head += "l" + id.str() + '\0';
  return crc32c(head);
}

uint32_t snapshot_crc(const consensus::Snapshot& snap) {
  uint32_t c = snapshot_crc_of_meta(snap);
  return snap.data ? crc32c_extend(c, snap.data->data(), snap.data->size()) : c;
}

std::string snapshot_file_name(consensus::LogIndex index, consensus::Term term) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "snapshot-%020" PRIu64 "-%" PRIu64 ".snap", index.value(), term.value());
  return buf;
}

void write_snapshot_file(const std::string& data_dir, const std::string& name, std::string_view data) {
  const std::string path = data_dir + "/" + name;
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) file_fatal("save_snapshot", tmp, "open");
  for (size_t done = 0; done < data.size();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) file_fatal("save_snapshot", tmp, "write");
    done += static_cast<size_t>(n);
  }
  sync_fd(fd, "save_snapshot", tmp);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) file_fatal("save_snapshot", path, "rename");
  int dir = ::open(data_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) file_fatal("save_snapshot", data_dir, "open of the directory");
  sync_fd(dir, "save_snapshot", data_dir);
  ::close(dir);
}

std::string read_snapshot_file(const std::string& data_dir, const std::string& name) {
  const std::string path = data_dir + "/" + name;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) file_fatal("load", path, "the snapshot file raft.db names cannot be opened");
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) file_fatal("load", path, "read");
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

void remove_snapshot_files_except(const std::string& data_dir, const std::string& keep, bool temporaries) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(data_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (name == keep || name.compare(0, kPrefix.size(), kPrefix) != 0) continue;
    if (!ends_with(name, kSuffix) && !(temporaries && ends_with(name, kTempSuffix))) continue;
    // Names order as their indexes (20 digits): a later one is a snapshot
    // made and not yet recorded, and a leader may be reading it.
    if (!temporaries && name > keep) continue;
    std::filesystem::remove(entry.path(), ec);  // a leftover that stays is only disk space
  }
}

std::unique_ptr<SnapshotFileReader> SnapshotFileReader::open(const std::string& data_dir, consensus::LogIndex index,
                                                             consensus::Term term) {
  const std::string path = data_dir + "/" + snapshot_file_name(index, term);
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT) return nullptr;
  if (fd < 0) file_fatal("read_snapshot", path, "open");
  struct stat st {};
  if (::fstat(fd, &st) != 0) file_fatal("read_snapshot", path, "fstat");
  return std::unique_ptr<SnapshotFileReader>(new SnapshotFileReader(fd, static_cast<uint64_t>(st.st_size), path));
}

SnapshotFileReader::~SnapshotFileReader() { ::close(fd_); }

std::string SnapshotFileReader::read(uint64_t offset, size_t n) const {
  std::string out(offset >= size_ ? 0 : static_cast<size_t>(std::min<uint64_t>(n, size_ - offset)), '\0');
  for (size_t done = 0; done < out.size();) {
    ssize_t got = ::pread(fd_, out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) file_fatal("read_snapshot", path_, "pread");
    if (got == 0) {
      storage_fatal("op=read_snapshot path=" + path_ + " error=\"the file ends before its size of " +
                    std::to_string(size_) + " bytes\"");
    }
    done += static_cast<size_t>(got);
  }
  return out;
}

}  // namespace tenure::storage
