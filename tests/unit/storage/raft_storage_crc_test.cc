// CRC32C on the durable log (schema version 2; snapshots in files of their
// own from version 3): a record whose bytes changed
// on disk stops the start with one FATAL line naming the file and the index,
// never a crash loop through an assertion; and a version 1 file is migrated
// in place (checksummed as found).
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "common/crc32c.h"
#include "storage/raft_storage.h"
#include "storage/snapshot_file.h"
#include "tests/unit/storage/temp_dir.h"

namespace tenure::storage {
namespace {

using namespace tenure::consensus;
using testing::TempDir;

class RaftStorageCrcDeathTest : public ::testing::Test {};

std::string payload(uint64_t i) { return "PAYLOAD-" + std::to_string(i) + "-abcdefghijklmnopqrstuvwxyz"; }

void write_log(const std::string& dir, uint64_t n, bool snapshot) {
  auto s = RaftStorage::open(dir);
  Ready rd;
  rd.hard_state = HardState{Term(2), NodeId("c1"), LogIndex(n)};
  if (snapshot) {
    Snapshot snap;
    snap.index = LogIndex(10);
    snap.term = Term(1);
    snap.conf.voters = {NodeId("c1"), NodeId("c2"), NodeId("c3")};
    snap.data = std::make_shared<const std::string>("SNAPSHOT-DATA-0123456789-state-of-the-machine");
    rd.snapshot = snap;
  }
  uint64_t first = snapshot ? 11 : 1;
  for (uint64_t i = first; i < first + n; ++i) rd.entries.push_back(Entry{Term(2), LogIndex(i), EntryType::kNormal, payload(i)});
  s->persist(rd);
}  // closing the last connection checkpoints the WAL into raft.db

/// Flips one bit of the first occurrence of `needle` in `file`, as a bad
/// sector or a stray write would; SQLite itself keeps no page checksums.
void flip_bit_in_file(const std::string& file, const std::string& needle) {
  std::string bytes;
  {
    std::ifstream in(file, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  size_t at = bytes.find(needle);
  ASSERT_NE(at, std::string::npos) << needle << " not in " << file << " (still in the WAL?)";
  bytes[at + needle.size() / 2] ^= 0x04;
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void exec(const std::string& file, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(file.c_str(), &db), SQLITE_OK);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  EXPECT_EQ(rc, SQLITE_OK) << (err ? err : "");
  sqlite3_free(err);
  sqlite3_close(db);
}

TEST(RaftStorageCrcTest, IntactLogLoads) {
  TempDir dir;
  write_log(dir.path(), 5, true);
  auto s = RaftStorage::open(dir.path());
  InitialState st = s->load();
  ASSERT_EQ(st.entries.size(), 5u);
  EXPECT_EQ(st.entries[2].data, payload(13));
  EXPECT_EQ(st.snapshot.index, LogIndex(10));
}

TEST_F(RaftStorageCrcDeathTest, AFlippedBitInAnEntryStopsTheStartNamingFileAndIndex) {
  TempDir dir;
  write_log(dir.path(), 5, false);
  flip_bit_in_file(dir.sub("raft.db"), payload(3));
  EXPECT_EXIT(RaftStorage::open(dir.path())->load(), ::testing::ExitedWithCode(1),
              "^FATAL storage op=load path=.*/raft.db error=\"corrupt log: entry 3 fails its CRC32C check "
              "\\(stored [0-9]+, computed [0-9]+\\)\"\n$");
}

TEST_F(RaftStorageCrcDeathTest, AFlippedBitInTheSnapshotStopsTheStart) {
  TempDir dir;
  write_log(dir.path(), 2, true);
  flip_bit_in_file(dir.sub(snapshot_file_name(LogIndex(10), Term(1))), "SNAPSHOT-DATA-0123456789");
  EXPECT_EXIT(RaftStorage::open(dir.path())->load(), ::testing::ExitedWithCode(1),
              "^FATAL storage op=load path=.*/snapshot-00000000000000000010-1.snap error=\"corrupt snapshot: "
              "the snapshot at index 10 fails its "
              "CRC32C check .*\"\n$");
}

TEST_F(RaftStorageCrcDeathTest, AnEntryMovedToAnotherTermFails) {
  TempDir dir;
  write_log(dir.path(), 4, false);
  exec(dir.sub("raft.db"), "UPDATE entries SET term = 3 WHERE idx = 4");
  EXPECT_EXIT(RaftStorage::open(dir.path())->load(), ::testing::ExitedWithCode(1),
              "corrupt log: entry 4 fails its CRC32C check");
}

TEST(RaftStorageCrcTest, AVersion1FileIsMigratedAndChecksummed) {
  TempDir dir;
  std::string file = dir.sub("raft.db");
  // The version 1 schema, as an older build left it.
  exec(file,
       "PRAGMA journal_mode=WAL;"
       "CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL) WITHOUT ROWID;"
       "INSERT INTO meta VALUES ('schema_version', '1'), ('cluster', 'x');"
       "CREATE TABLE hard_state (id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL,"
       " vote TEXT NOT NULL, commit_index INTEGER NOT NULL);"
       "CREATE TABLE entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type INTEGER NOT NULL,"
       " data BLOB NOT NULL);"
       "CREATE TABLE snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL,"
       " term INTEGER NOT NULL, data BLOB NOT NULL);"
       "CREATE TABLE snapshot_conf (node_id TEXT PRIMARY KEY NOT NULL, learner INTEGER NOT NULL) WITHOUT ROWID;"
       "INSERT INTO hard_state VALUES (1, 3, 'c2', 7);"
       "INSERT INTO snapshot VALUES (1, 5, 2, 'old-state');"
       "INSERT INTO snapshot_conf VALUES ('c1', 0), ('c2', 0), ('c3', 0), ('c4', 1);"
       "INSERT INTO entries VALUES (6, 3, 0, 'six'), (7, 3, 1, 'seven');");
  {
    auto s = RaftStorage::open(dir.path());
    EXPECT_EQ(s->get_meta(RaftStorage::kSchemaVersionKey), "3");
    EXPECT_EQ(s->get_meta("cluster"), "x");
    InitialState st = s->load();
    EXPECT_EQ(st.hard_state, (HardState{Term(3), NodeId("c2"), LogIndex(7)}));
    EXPECT_EQ(st.snapshot.index, LogIndex(5));
    EXPECT_EQ(*st.snapshot.data, "old-state");
    EXPECT_EQ(st.snapshot.conf.learners, std::set<NodeId>{NodeId("c4")});
    ASSERT_EQ(st.entries.size(), 2u);
    EXPECT_EQ(st.entries[1].data, "seven");
    EXPECT_EQ(st.entries[1].type, EntryType::kConfChange);
    // New writes after the migration carry checksums too.
    Ready rd;
    rd.entries = {Entry{Term(3), LogIndex(8), EntryType::kNormal, "eight"}};
    s->persist(rd);
  }
  {
    auto s = RaftStorage::open(dir.path());
    EXPECT_EQ(s->load().entries.size(), 3u);
    // The migrated snapshot stays inline until the next one is taken, which
    // goes to a file of its own.
    Snapshot next = s->load().snapshot;
    next.index = LogIndex(8);
    next.term = Term(3);
    next.data = std::make_shared<const std::string>("new-state");
    s->save_snapshot(next, LogIndex(7));
    EXPECT_TRUE(std::filesystem::exists(dir.sub(snapshot_file_name(LogIndex(8), Term(3)))));
  }
  EXPECT_EQ(*RaftStorage::open(dir.path())->snapshot()->data, "new-state");
}

TEST(RaftStorageSnapshotFileTest, TheRecordedSnapshotsChecksumIsKnownForItsIndexAndTermOnly) {
  // What a leader streaming the file checks the bytes against
  // (peers::TransportOptions::recorded_snapshot_crc): as persisted, and again
  // after a restart, for the recorded snapshot and no other.
  TempDir dir;
  write_log(dir.path(), 3, /*snapshot=*/true);
  auto s = RaftStorage::open(dir.path());
  EXPECT_EQ(s->recorded_snapshot_crc(LogIndex(10), Term(1)), std::nullopt) << "before load";
  auto init = s->load();
  ASSERT_EQ(init.snapshot.index, LogIndex(10));
  auto crc = s->recorded_snapshot_crc(LogIndex(10), Term(1));
  ASSERT_TRUE(crc.has_value());
  EXPECT_EQ(*crc, snapshot_crc(init.snapshot));
  // What a streaming reader computes: the meta, then the file's bytes.
  std::string file = read_snapshot_file(dir.path(), snapshot_file_name(LogIndex(10), Term(1)));
  EXPECT_EQ(*crc, crc32c_extend(snapshot_crc_of_meta(init.snapshot), file.data(), file.size()));
  EXPECT_EQ(s->recorded_snapshot_crc(LogIndex(10), Term(2)), std::nullopt);
  EXPECT_EQ(s->recorded_snapshot_crc(LogIndex(9), Term(1)), std::nullopt);

  Snapshot next = init.snapshot;
  next.index = LogIndex(12);
  next.term = Term(2);
  next.data = std::make_shared<const std::string>("A-LATER-STATE");
  s->save_snapshot(next, LogIndex(12));
  EXPECT_EQ(s->recorded_snapshot_crc(LogIndex(12), Term(2)), snapshot_crc(next));
  EXPECT_EQ(s->recorded_snapshot_crc(LogIndex(10), Term(1)), std::nullopt) << "replaced";
}

TEST(RaftStorageSnapshotFileTest, AMissingSnapshotFileStopsTheStartNamingIt) {
  TempDir dir;
  write_log(dir.path(), 2, true);
  std::filesystem::remove(dir.sub(snapshot_file_name(LogIndex(10), Term(1))));
  EXPECT_EXIT(RaftStorage::open(dir.path())->load(), ::testing::ExitedWithCode(1),
              "^FATAL storage op=load path=.*/snapshot-00000000000000000010-1.snap error=\"the snapshot file "
              "raft.db names cannot be opened: No such file or directory\"\n$");
}

TEST(RaftStorageSnapshotFileTest, OrphansAndTemporariesAreRemovedAtOpenAndOldSnapshotsOnReplace) {
  TempDir dir;
  write_log(dir.path(), 2, true);
  const std::string current = snapshot_file_name(LogIndex(10), Term(1));
  // What a crash can leave: a file renamed but never named by raft.db, and
  // an interrupted write.
  write_snapshot_file(dir.path(), snapshot_file_name(LogIndex(12), Term(2)), "orphan");
  { std::ofstream(dir.sub("snapshot-00000000000000000013-2.snap.tmp")) << "partial"; }
  {
    auto s = RaftStorage::open(dir.path());
    EXPECT_EQ(*s->load().snapshot.data, "SNAPSHOT-DATA-0123456789-state-of-the-machine");
    std::vector<std::string> left;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      std::string name = e.path().filename().string();
      if (name.rfind("snapshot-", 0) == 0) left.push_back(name);
    }
    EXPECT_EQ(left, std::vector<std::string>{current});
    // A snapshot written ahead by the one who took it (off the storage's
    // thread), then saved: the old file goes once the switch is durable,
    // with the next Ready (save_snapshot has no fsync of its own).
    Snapshot snap = s->load().snapshot;
    snap.index = LogIndex(12);
    snap.term = Term(2);
    snap.data = std::make_shared<const std::string>("state@12");
    s->write_snapshot_file(snap);
    s->save_snapshot(snap, LogIndex(11));
    EXPECT_TRUE(std::filesystem::exists(dir.sub(current)));
    Ready rd;
    rd.hard_state = s->hard_state();
    s->persist(rd);
    EXPECT_FALSE(std::filesystem::exists(dir.sub(current)));
  }
  auto s = RaftStorage::open(dir.path());
  InitialState st = s->load();
  EXPECT_EQ(st.snapshot.index, LogIndex(12));
  EXPECT_EQ(*st.snapshot.data, "state@12");
  EXPECT_TRUE(st.entries.empty());
}

TEST_F(RaftStorageCrcDeathTest, CorruptionAfterMigrationIsCaught) {
  TempDir dir;
  write_log(dir.path(), 3, false);
  exec(dir.sub("raft.db"), "UPDATE entries SET data = 'tampered' WHERE idx = 2");
  EXPECT_EXIT(RaftStorage::open(dir.path())->load(), ::testing::ExitedWithCode(1), "entry 2 fails its CRC32C");
}

}  // namespace
}  // namespace tenure::storage
