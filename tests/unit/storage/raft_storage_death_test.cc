// Every failure of the durable log is fatal (DESIGN.md, house style 5): the
// process prints one `FATAL storage ...` line and exits 1, never returning
// as if the write had happened.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <fstream>

#include "storage/raft_storage.h"
#include "tests/unit/storage/faulty_vfs.h"
#include "tests/unit/storage/temp_dir.h"

namespace tenure::storage {
namespace {

using namespace tenure::consensus;
using testing::TempDir;

// The default "fast" death-test style forks and runs only the statement in
// the child, so the parent's TempDir is the only one and is removed after
// (the child leaves through _Exit and would leak one of its own).
class RaftStorageDeathTest : public ::testing::Test {};

Ready some_entries() {
  Ready rd;
  rd.hard_state = HardState{Term(1), NodeId("c1"), LogIndex(0)};
  rd.entries = {Entry{Term(1), LogIndex(1), EntryType::kNormal, "x"}};
  return rd;
}

TEST_F(RaftStorageDeathTest, DataDirUnderAFileIsFatal) {
  TempDir dir;
  std::ofstream(dir.sub("file")) << "not a directory";
  EXPECT_EXIT(RaftStorage::open(dir.sub("file/c1")), ::testing::ExitedWithCode(1),
              "^FATAL storage op=open data_dir=.*/file/c1 error=\"cannot create data_dir: Not a directory\"\n$");
  EXPECT_EXIT(RaftStorage::open(dir.sub("file")), ::testing::ExitedWithCode(1),
              "^FATAL storage op=open data_dir=.*/file error=\"cannot create data_dir: .*\"\n$");
}

TEST_F(RaftStorageDeathTest, SecondOpenOfOneDataDirIsFatal) {
  TempDir dir;
  auto first = RaftStorage::open(dir.path());
  EXPECT_EXIT(RaftStorage::open(dir.path()), ::testing::ExitedWithCode(1),
              "FATAL storage op=open data_dir=.* error=\"data_dir is in use by another process");
}

TEST_F(RaftStorageDeathTest, NotADatabaseIsFatal) {
  TempDir dir;
  std::ofstream(dir.sub("raft.db")) << std::string(4096, 'g');
  EXPECT_EXIT(RaftStorage::open(dir.path()), ::testing::ExitedWithCode(1),
              "^FATAL storage op=open path=.*/raft.db error=\"file is not a database \\(code=26\\)\"\n$");
}

TEST_F(RaftStorageDeathTest, UnknownSchemaVersionIsFatal) {
  TempDir dir;
  { RaftStorage::open(dir.path()); }
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(dir.sub("raft.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "UPDATE meta SET value = '4' WHERE key = 'schema_version'", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EXPECT_EXIT(RaftStorage::open(dir.path()), ::testing::ExitedWithCode(1),
              "FATAL storage op=open path=.* error=\"schema_version 4 is not supported \\(this build reads 3 and migrates 1 and 2\\)\"");
}

TEST_F(RaftStorageDeathTest, FailedFsyncIsFatal) {
  TempDir dir;
  storage::testing::register_faulty_vfs();
  EXPECT_EXIT(
      {
        auto s = RaftStorage::open(dir.path(), RaftStorageOptions{storage::testing::kFaultyVfs});
        storage::testing::fail_syncs(true);
        s->persist(some_entries());
        std::fprintf(stderr, "persist returned\n");
        std::exit(0);
      },
      ::testing::ExitedWithCode(1),
      "^FATAL storage op=persist path=.*/raft.db error=\"disk I/O error \\(code=1034\\)\"\n$");
}

TEST_F(RaftStorageDeathTest, FailedWriteIsFatal) {
  TempDir dir;
  storage::testing::register_faulty_vfs();
  EXPECT_EXIT(
      {
        auto s = RaftStorage::open(dir.path(), RaftStorageOptions{storage::testing::kFaultyVfs});
        storage::testing::fail_writes(true);
        s->persist(some_entries());
        std::exit(0);
      },
      ::testing::ExitedWithCode(1),
      "^FATAL storage op=persist path=.*/raft.db error=\"disk I/O error \\(code=778\\)\"\n$");
}

TEST_F(RaftStorageDeathTest, FailedFsyncOfSnapshotAndMetaIsFatal) {
  TempDir dir;
  storage::testing::register_faulty_vfs();
  EXPECT_EXIT(
      {
        auto s = RaftStorage::open(dir.path(), RaftStorageOptions{storage::testing::kFaultyVfs});
        storage::testing::fail_syncs(true);
        s->set_meta("k", "v");
        std::exit(0);
      },
      ::testing::ExitedWithCode(1), "^FATAL storage op=set_meta .*code=1034");
  EXPECT_EXIT(
      {
        auto s = RaftStorage::open(dir.path(), RaftStorageOptions{storage::testing::kFaultyVfs});
        Snapshot snap;
        snap.index = LogIndex(1);
        snap.term = Term(1);
        storage::testing::fail_syncs(true);
        // Not fsynced on its own: the failure surfaces at the next Ready,
        // whose fsync is the one that makes the switch durable.
        s->save_snapshot(snap, LogIndex(1));
        Ready rd;
        rd.entries.push_back((Entry{Term(1), LogIndex(2), EntryType::kNormal, "e2"}));
        s->persist(rd);
        std::exit(0);
      },
      ::testing::ExitedWithCode(1), "^FATAL storage op=persist .*code=1034");
}

TEST_F(RaftStorageDeathTest, EntriesLeavingAGapAbort) {
  TempDir dir;
  auto s = RaftStorage::open(dir.path());
  Ready rd;
  rd.entries = {Entry{Term(1), LogIndex(5), EntryType::kNormal, ""}};
  EXPECT_DEATH(s->persist(rd), "entries from 5 leave a gap after 0");
}

}  // namespace
}  // namespace tenure::storage
