// RaftStorage::read_entries: the payloads the core released, read back on a
// connection of its own while the writer goes on (consensus::EntryReader).
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <atomic>
#include <thread>

#include "storage/raft_storage.h"
#include "tests/unit/storage/temp_dir.h"

namespace tenure::storage {
namespace {

using namespace tenure::consensus;
using testing::TempDir;

Entry entry(uint64_t index) {
  return Entry{Term(3), LogIndex(index), EntryType::kNormal, "entry-" + std::to_string(index) + std::string(index, 'x')};
}

Ready with_entries(uint64_t from, uint64_t to) {
  Ready rd;
  for (uint64_t i = from; i <= to; ++i) rd.entries.push_back(entry(i));
  return rd;
}

TEST(RaftStorageReadTest, ReadsARangeWithinTheByteBudget) {
  TempDir dir;
  auto s = RaftStorage::open(dir.path());
  s->persist(with_entries(1, 6));
  EXPECT_EQ(s->read_entries(LogIndex(2), LogIndex(5), 1 << 20, 0),
            (std::vector<Entry>{entry(2), entry(3), entry(4), entry(5)}));
  // Budget: the payloads plus the overhead per entry; the first always.
  size_t two = entry(2).data.size() + entry(3).data.size() + 2 * 10;
  EXPECT_EQ(s->read_entries(LogIndex(2), LogIndex(5), two, 10), (std::vector<Entry>{entry(2), entry(3)}));
  EXPECT_EQ(s->read_entries(LogIndex(2), LogIndex(5), 0, 0), (std::vector<Entry>{entry(2)}));
}

TEST(RaftStorageReadTest, ReadsCommittedRowsWhileTheWriterGoesOn) {
  TempDir dir;
  auto s = RaftStorage::open(dir.path());
  s->persist(with_entries(1, 20));
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (uint64_t i = 21; i <= 400; i += 20) s->persist(with_entries(i, i + 19));
    done = true;
  });
  int reads = 0;
  while (!done || reads < 10) {
    auto got = s->read_entries(LogIndex(1), LogIndex(20), 1 << 20, 0);
    ASSERT_EQ(got.size(), 20u);
    ASSERT_EQ(got.back(), entry(20));
    ++reads;
  }
  writer.join();
  EXPECT_EQ(s->read_entries(LogIndex(381), LogIndex(400), 1 << 20, 0).back(), entry(400));
}

class RaftStorageReadDeathTest : public ::testing::Test {};

TEST_F(RaftStorageReadDeathTest, AMissingEntryIsFatalNamingIt) {
  TempDir dir;
  auto s = RaftStorage::open(dir.path());
  s->persist(with_entries(1, 6));
  EXPECT_EXIT(s->read_entries(LogIndex(9), LogIndex(12), 1 << 20, 0), ::testing::ExitedWithCode(1),
              "^FATAL storage op=read_entries path=.*/raft.db error=\"entry 9 is not stored \\(asked for 9..12\\)\"\n$");
}

TEST_F(RaftStorageReadDeathTest, ACorruptRowIsFatalNamingIt) {
  TempDir dir;
  auto s = RaftStorage::open(dir.path());
  s->persist(with_entries(1, 6));
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.sub("raft.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE entries SET term = 4 WHERE idx = 4", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EXIT(s->read_entries(LogIndex(2), LogIndex(6), 1 << 20, 0), ::testing::ExitedWithCode(1),
              "op=read_entries .*corrupt log: entry 4 fails its CRC32C check");
}

}  // namespace
}  // namespace tenure::storage
