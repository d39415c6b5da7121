#pragma once
// Snapshots live in files of their own beside raft.db
// (data_dir/snapshot-<index>-<term>.snap, the state machine's bytes only);
// raft.db names the current one and holds its index, term, configuration
// and CRC32C. A file is written whole (temporary name, fsync, rename, fsync
// of the directory) before the row that names it commits, so a crash leaves
// at worst an orphan, removed at the next open.
//
// Why not a BLOB in raft.db, as before: a 30-130 MB write inside the log's
// database held its only writer for 0.4-0.5 s (plus a WAL checkpoint of the
// same size later), and every Ready waited behind it, heartbeats included.
// A file is written off to the side by whoever made the snapshot, and the
// row that switches to it is a small transaction.
//
// Every function is fatal (storage_fatal) on an I/O failure, like the rest
// of the storage. Thread-safe: none touches shared state.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "consensus/message.h"

namespace tenure::storage {

/// The CRC32C that raft.db's snapshot row keeps: over the snapshot's index,
/// term and configuration, then its bytes. A reader of the file extends
/// snapshot_crc_of_meta (the part before the bytes) chunk by chunk.
uint32_t snapshot_crc_of_meta(const consensus::Snapshot& snap);
/// snapshot_crc_of_meta extended with snap.data (if any).
uint32_t snapshot_crc(const consensus::Snapshot& snap);

/// "snapshot-<index, 20 digits>-<term>.snap".
std::string snapshot_file_name(consensus::LogIndex index, consensus::Term term);

/// Writes `data` as data_dir/`name`, durably; replaces a file of that name.
void write_snapshot_file(const std::string& data_dir, const std::string& name, std::string_view data);

/// The bytes of data_dir/`name`; fatal (naming the file) if it cannot be read.
std::string read_snapshot_file(const std::string& data_dir, const std::string& name);

/// Removes snapshot files older than `keep`; with `temporaries` (only at
/// open) every other one and the leftovers of interrupted writes too.
/// Meanwhile a newer snapshot may be being written, or written and not yet
/// recorded, beside the running member: its file must stay.
void remove_snapshot_files_except(const std::string& data_dir, const std::string& keep, bool temporaries = false);

/// A snapshot file opened for reading in ranges: a leader streams it to a
/// follower a chunk at a time instead of holding it in memory. Once open it
/// stays readable even if the store removes the file (a newer snapshot
/// replaced it): the open descriptor keeps its bytes.
class SnapshotFileReader {
 public:
  /// Null when data_dir holds no snapshot file at (`index`, `term`): a newer
  /// one replaced it, or it was never written here.
  static std::unique_ptr<SnapshotFileReader> open(const std::string& data_dir, consensus::LogIndex index,
                                                  consensus::Term term);
  ~SnapshotFileReader();
  SnapshotFileReader(const SnapshotFileReader&) = delete;
  SnapshotFileReader& operator=(const SnapshotFileReader&) = delete;

  uint64_t size() const { return size_; }
  /// Up to `n` bytes from `offset` (fewer only at the end).
  std::string read(uint64_t offset, size_t n) const;

 private:
  SnapshotFileReader(int fd, uint64_t size, std::string path) : fd_(fd), size_(size), path_(std::move(path)) {}
  int fd_;
  uint64_t size_;
  std::string path_;
};

}  // namespace tenure::storage
