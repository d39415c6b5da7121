// Snapshot files beside raft.db: read in ranges by a leader streaming one to
// a follower (instead of holding its bytes in memory), and removed only once
// a newer one is recorded.
#include "storage/snapshot_file.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "storage/raft_storage.h"
#include "tests/unit/storage/temp_dir.h"

namespace tenure::storage {
namespace {

using consensus::LogIndex;
using consensus::Term;
using testing::TempDir;

std::string bytes(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + 7) % 251);
  return s;
}

/// Writes `data` as the snapshot at (40, 3) and opens it.
std::unique_ptr<SnapshotFileReader> written(const TempDir& dir, const std::string& data) {
  write_snapshot_file(dir.path(), snapshot_file_name(LogIndex(40), Term(3)), data);
  auto reader = SnapshotFileReader::open(dir.path(), LogIndex(40), Term(3));
  EXPECT_NE(reader, nullptr);
  return reader;
}

TEST(SnapshotFileReaderTest, ReadsTheFileInRangesUpToItsEnd) {
  TempDir dir;
  const std::string data = bytes(1000003);
  auto reader = written(dir, data);
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->size(), data.size());
  std::string back;
  for (uint64_t off = 0; off < reader->size(); off += 65536) back += reader->read(off, 65536);
  EXPECT_EQ(back, data);
  EXPECT_EQ(reader->read(data.size() - 3, 65536), data.substr(data.size() - 3));
  EXPECT_EQ(reader->read(data.size(), 10), "");
}

TEST(SnapshotFileReaderTest, NoFileAtThatIndexAndTermIsNull) {
  TempDir dir;
  write_snapshot_file(dir.path(), snapshot_file_name(LogIndex(40), Term(3)), "x");
  EXPECT_EQ(SnapshotFileReader::open(dir.path(), LogIndex(40), Term(4)), nullptr);
  EXPECT_EQ(SnapshotFileReader::open(dir.path(), LogIndex(41), Term(3)), nullptr);
}

TEST(SnapshotFileReaderTest, AnOpenReaderOutlivesTheFilesRemoval) {
  TempDir dir;
  const std::string data = bytes(70000);
  auto reader = written(dir, data);
  ASSERT_NE(reader, nullptr);
  // A newer snapshot is recorded meanwhile and this one's file goes.
  write_snapshot_file(dir.path(), snapshot_file_name(LogIndex(90), Term(3)), "newer");
  remove_snapshot_files_except(dir.path(), snapshot_file_name(LogIndex(90), Term(3)));
  EXPECT_FALSE(std::filesystem::exists(dir.sub(snapshot_file_name(LogIndex(40), Term(3)))));
  EXPECT_EQ(reader->read(0, data.size()), data);
  EXPECT_EQ(SnapshotFileReader::open(dir.path(), LogIndex(40), Term(3)), nullptr);
}

TEST(SnapshotFileRemovalTest, ANewerFileNotYetRecordedStaysWhileRunning) {
  // A member made snapshot 90 (its file is durable) while raft.db still
  // names 40; a Ready that persists meanwhile must not remove 90: the core
  // may already be sending it.
  TempDir dir;
  const std::string recorded = snapshot_file_name(LogIndex(40), Term(3));
  for (uint64_t i : {20, 40, 90}) write_snapshot_file(dir.path(), snapshot_file_name(LogIndex(i), Term(3)), "s");
  remove_snapshot_files_except(dir.path(), recorded);
  EXPECT_FALSE(std::filesystem::exists(dir.sub(snapshot_file_name(LogIndex(20), Term(3)))));
  EXPECT_TRUE(std::filesystem::exists(dir.sub(recorded)));
  EXPECT_TRUE(std::filesystem::exists(dir.sub(snapshot_file_name(LogIndex(90), Term(3)))));
  // At open nothing is being made: every file raft.db does not name goes.
  { std::ofstream(dir.sub(snapshot_file_name(LogIndex(95), Term(3)) + ".tmp")) << "partial"; }
  remove_snapshot_files_except(dir.path(), recorded, /*temporaries=*/true);
  EXPECT_FALSE(std::filesystem::exists(dir.sub(snapshot_file_name(LogIndex(90), Term(3)))));
  EXPECT_FALSE(std::filesystem::exists(dir.sub(snapshot_file_name(LogIndex(95), Term(3)) + ".tmp")));
  EXPECT_TRUE(std::filesystem::exists(dir.sub(recorded)));
}

TEST(SnapshotFileRemovalTest, NothingRecordedYetRemovesNothingWhileRunning) {
  TempDir dir;
  write_snapshot_file(dir.path(), snapshot_file_name(LogIndex(90), Term(3)), "s");
  remove_snapshot_files_except(dir.path(), "");
  EXPECT_TRUE(std::filesystem::exists(dir.sub(snapshot_file_name(LogIndex(90), Term(3)))));
}

}  // namespace
}  // namespace tenure::storage
