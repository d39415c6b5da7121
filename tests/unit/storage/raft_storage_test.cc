#include "storage/raft_storage.h"
#include "storage/snapshot_file.h"
#include "storage/sqlite.h"

#include <filesystem>
#include <set>

#include <gtest/gtest.h>

#include "tests/unit/storage/faulty_vfs.h"
#include "tests/unit/storage/temp_dir.h"

namespace tenure::storage {
namespace {

using namespace tenure::consensus;
using testing::TempDir;

Entry entry(uint64_t index, uint64_t term, std::string data = "", EntryType type = EntryType::kNormal) {
  return Entry{Term(term), LogIndex(index), type, std::move(data)};
}

std::vector<Entry> entries(uint64_t from, uint64_t to, uint64_t term) {
  std::vector<Entry> out;
  for (uint64_t i = from; i <= to; ++i) {
    out.push_back(entry(i, term, "e" + std::to_string(i) + "t" + std::to_string(term)));
  }
  return out;
}

Snapshot make_snapshot(uint64_t index, uint64_t term, std::string data) {
  Snapshot s;
  s.index = LogIndex(index);
  s.term = Term(term);
  s.conf.voters = {NodeId("c1"), NodeId("c2"), NodeId("c3")};
  s.conf.learners = {NodeId("c4")};
  s.data = std::make_shared<const std::string>(std::move(data));
  return s;
}

Ready with_entries(std::vector<Entry> es) {
  Ready rd;
  rd.entries = std::move(es);
  return rd;
}

std::vector<uint64_t> indexes(const std::vector<Entry>& es) {
  std::vector<uint64_t> out;
  for (const auto& e : es) out.push_back(e.index.value());
  return out;
}

TEST(RaftStorageTest, FreshStorageIsEmpty) {
  TempDir dir;
  auto s = RaftStorage::open(dir.sub("a/b/c1"));  // creates missing parents
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->empty());
  EXPECT_EQ(s->path(), dir.sub("a/b/c1") + "/raft.db");
  InitialState st = s->load();
  EXPECT_EQ(st.hard_state, HardState{});
  EXPECT_TRUE(st.snapshot.empty());
  EXPECT_TRUE(st.entries.empty());
  EXPECT_FALSE(s->snapshot().has_value());
  EXPECT_EQ(s->last_index(), LogIndex(0));
}

TEST(RaftStorageTest, HardStateRoundTripsAcrossRestart) {
  TempDir dir;
  {
    auto s = RaftStorage::open(dir.path());
    Ready rd;
    rd.hard_state = HardState{Term(7), NodeId("c2"), LogIndex(0)};
    s->persist(rd);
    EXPECT_FALSE(s->empty());
    rd.hard_state = HardState{Term(9), NodeId(), LogIndex(0)};
    s->persist(rd);
  }
  auto s = RaftStorage::open(dir.path());
  EXPECT_FALSE(s->empty());
  EXPECT_EQ(s->load().hard_state, (HardState{Term(9), NodeId(), LogIndex(0)}));
  EXPECT_EQ(s->hard_state(), (HardState{Term(9), NodeId(), LogIndex(0)}));
}

TEST(RaftStorageTest, EntriesRoundTripWithTypesAndBinaryData) {
  TempDir dir;
  std::string binary("a\0b\xff", 4);
  {
    auto s = RaftStorage::open(dir.path());
    Ready rd;
    rd.hard_state = HardState{Term(2), NodeId("c1"), LogIndex(2)};
    rd.entries = {entry(1, 1, "", EntryType::kConfChange), entry(2, 2, binary), entry(3, 2, "")};
    s->persist(rd);
    EXPECT_EQ(s->last_index(), LogIndex(3));
  }
  auto s = RaftStorage::open(dir.path());
  InitialState st = s->load();
  EXPECT_EQ(st.hard_state, (HardState{Term(2), NodeId("c1"), LogIndex(2)}));
  ASSERT_EQ(st.entries.size(), 3u);
  EXPECT_EQ(st.entries[0], entry(1, 1, "", EntryType::kConfChange));
  EXPECT_EQ(st.entries[1], entry(2, 2, binary));
  EXPECT_EQ(st.entries[2], entry(3, 2, ""));
  EXPECT_EQ(s->last_index(), LogIndex(3));
}

TEST(RaftStorageTest, ConflictingEntriesTruncateTheTail) {
  TempDir dir;
  auto s = RaftStorage::open(dir.path());
  s->persist(with_entries(entries(1, 10, 1)));
  // A new leader overwrites from index 6 with a shorter log (§3.5).
  s->persist(with_entries(entries(6, 7, 2)));
  InitialState st = s->load();
  EXPECT_EQ(indexes(st.entries), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(st.entries[4], entry(5, 1, "e5t1"));
  EXPECT_EQ(st.entries[5], entry(6, 2, "e6t2"));
  EXPECT_EQ(st.entries[6], entry(7, 2, "e7t2"));
  EXPECT_EQ(s->last_index(), LogIndex(7));
  // Appending at the end leaves everything before in place.
  s->persist(with_entries(entries(8, 9, 2)));
  EXPECT_EQ(indexes(s->load().entries), (std::vector<uint64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
}

TEST(RaftStorageTest, SnapshotInReadyReplacesTheLog) {
  TempDir dir;
  {
    auto s = RaftStorage::open(dir.path());
    s->persist(with_entries(entries(1, 5, 1)));
    Ready rd;
    rd.hard_state = HardState{Term(3), NodeId("c2"), LogIndex(20)};
    rd.snapshot = make_snapshot(20, 3, "state@20");
    s->persist(rd);
    EXPECT_EQ(s->last_index(), LogIndex(20));
    s->persist(with_entries(entries(21, 22, 3)));
  }
  auto s = RaftStorage::open(dir.path());
  InitialState st = s->load();
  EXPECT_EQ(st.hard_state, (HardState{Term(3), NodeId("c2"), LogIndex(20)}));
  EXPECT_EQ(st.snapshot.index, LogIndex(20));
  EXPECT_EQ(st.snapshot.term, Term(3));
  EXPECT_EQ(st.snapshot.conf, make_snapshot(0, 0, "").conf);
  ASSERT_NE(st.snapshot.data, nullptr);
  EXPECT_EQ(*st.snapshot.data, "state@20");
  EXPECT_EQ(indexes(st.entries), (std::vector<uint64_t>{21, 22}));
  EXPECT_EQ(s->last_index(), LogIndex(22));
}

TEST(RaftStorageTest, SnapshotAndEntriesInOneReady) {
  TempDir dir;
  auto s = RaftStorage::open(dir.path());
  s->persist(with_entries(entries(1, 30, 1)));
  Ready rd;
  rd.snapshot = make_snapshot(10, 1, "s10");
  rd.entries = entries(11, 12, 2);
  s->persist(rd);
  InitialState st = s->load();
  EXPECT_EQ(st.snapshot.index, LogIndex(10));
  // Entries 13..30 went with the old log even though they were past the snapshot.
  EXPECT_EQ(indexes(st.entries), (std::vector<uint64_t>{11, 12}));
}

TEST(RaftStorageTest, SaveSnapshotCompactsUpToTheGivenIndex) {
  TempDir dir;
  {
    auto s = RaftStorage::open(dir.path());
    s->persist(with_entries(entries(1, 100, 1)));
    s->save_snapshot(make_snapshot(80, 1, "s80"), LogIndex(70));
    EXPECT_EQ(s->last_index(), LogIndex(100));
    auto snap = s->snapshot();
    ASSERT_TRUE(snap.has_value());
    EXPECT_EQ(snap->index, LogIndex(80));
    EXPECT_EQ(*snap->data, "s80");
    // An older snapshot does not replace a newer one.
    s->save_snapshot(make_snapshot(60, 1, "s60"), LogIndex(60));
    EXPECT_EQ(s->snapshot()->index, LogIndex(80));
  }
  auto s = RaftStorage::open(dir.path());
  InitialState st = s->load();
  EXPECT_EQ(st.snapshot.index, LogIndex(80));
  EXPECT_EQ(*st.snapshot.data, "s80");
  ASSERT_EQ(st.entries.size(), 20u);  // only what follows the snapshot
  EXPECT_EQ(st.entries.front().index, LogIndex(81));
  EXPECT_EQ(st.entries.back().index, LogIndex(100));
  // The entries kept between compact_to and the snapshot are still stored:
  // a later snapshot at 90 compacting to 76 keeps 77.. on disk.
  s->save_snapshot(make_snapshot(90, 1, "s90"), LogIndex(76));
  EXPECT_EQ(s->load().entries.front().index, LogIndex(91));
}

// The lowest and the number of stored entry rows, read through a second
// connection (WAL: it sees what the storage committed).
std::pair<int64_t, int64_t> stored_rows(const TempDir& dir) {
  auto db = Database::open(dir.sub("raft.db"));
  EXPECT_TRUE(db.ok());
  auto st = db.value()->cached("SELECT IFNULL(MIN(idx), 0), COUNT(*) FROM entries");
  EXPECT_TRUE(st.ok());
  auto row = st.value()->step();
  EXPECT_TRUE(row.ok() && row.value());
  return {st.value()->column_int64(0), st.value()->column_int64(1)};
}

TEST(RaftStorageTest, CompactedRowsGoASliceAtATimeWithTheNextReadies) {
  TempDir dir;
  auto s = RaftStorage::open(dir.path());
  s->persist(with_entries(entries(1, 2000, 1)));
  s->save_snapshot(make_snapshot(1900, 1, "s1900"), LogIndex(1800));
  // save_snapshot itself deletes nothing: a Ready must never wait for a
  // whole compaction.
  EXPECT_EQ(stored_rows(dir), std::make_pair(int64_t{1}, int64_t{2000}));
  // Each persist deletes one slice (256 rows), beside what it writes.
  s->persist(with_entries(entries(2001, 2001, 1)));
  EXPECT_EQ(stored_rows(dir), std::make_pair(int64_t{257}, int64_t{2001 - 256}));
  for (uint64_t i = 2002; i <= 2010; ++i) s->persist(with_entries(entries(i, i, 1)));
  // 1..1800 are gone after ceil(1800 / 256) = 8 persists, and no further.
  EXPECT_EQ(stored_rows(dir), std::make_pair(int64_t{1801}, int64_t{2010 - 1800}));
  EXPECT_EQ(s->load().entries.front().index, LogIndex(1901));
}

TEST(RaftStorageTest, ACompactionCutShortByARestartIsFinishedAfterIt) {
  TempDir dir;
  {
    auto s = RaftStorage::open(dir.path());
    s->persist(with_entries(entries(1, 1000, 1)));
    s->save_snapshot(make_snapshot(900, 1, "s900"), LogIndex(800));
    s->persist(with_entries(entries(1001, 1001, 1)));  // durable; deletes 1..256 only
  }
  auto s = RaftStorage::open(dir.path());
  EXPECT_EQ(s->load().entries.front().index, LogIndex(901));
  EXPECT_EQ(stored_rows(dir).first, 257);
  // After the restart every row at or below the snapshot goes: load()
  // never reads them again.
  for (uint64_t i = 1002; i <= 1010; ++i) s->persist(with_entries(entries(i, i, 1)));
  EXPECT_EQ(stored_rows(dir), std::make_pair(int64_t{901}, int64_t{110}));
}

TEST(RaftStorageTest, SnapshotWithEmptyConfAndNoData) {
  TempDir dir;
  auto s = RaftStorage::open(dir.path());
  Snapshot snap;
  snap.index = LogIndex(5);
  snap.term = Term(2);
  Ready rd;
  rd.snapshot = snap;
  s->persist(rd);
  auto back = s->snapshot();
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->conf, ConfState{});
  ASSERT_NE(back->data, nullptr);
  EXPECT_EQ(*back->data, "");
}

TEST(RaftStorageTest, BootstrapPersistsTheInitialGroup) {
  TempDir dir;
  InitialState boot = bootstrap_state({NodeId("c1"), NodeId("c2"), NodeId("c3")});
  {
    auto s = RaftStorage::open(dir.path());
    ASSERT_TRUE(s->empty());
    s->bootstrap(boot);
    EXPECT_FALSE(s->empty());
  }
  auto s = RaftStorage::open(dir.path());
  InitialState st = s->load();
  EXPECT_EQ(st.hard_state, boot.hard_state);
  EXPECT_EQ(st.entries, boot.entries);
}

TEST(RaftStorageTest, ReadyWithNothingDurableWritesNothing) {
  TempDir dir;
  auto s = RaftStorage::open(dir.path());
  Ready rd;
  rd.committed_entries = entries(1, 2, 1);  // apply-only: nothing to persist
  s->persist(rd);
  EXPECT_TRUE(s->empty());
}

TEST(RaftStorageTest, MetaTable) {
  TempDir dir;
  {
    auto s = RaftStorage::open(dir.path());
    EXPECT_FALSE(s->get_meta("node_id").has_value());
    s->set_meta("node_id", "c1");
    s->set_meta("first_start_done", "");
    s->set_meta("node_id", "c1-renamed");
    EXPECT_EQ(s->get_meta("node_id"), "c1-renamed");
    EXPECT_TRUE(s->empty());  // meta is not Raft state
  }
  auto s = RaftStorage::open(dir.path());
  EXPECT_EQ(s->get_meta("node_id"), "c1-renamed");
  EXPECT_EQ(s->get_meta("first_start_done"), "");
  EXPECT_EQ(s->get_meta(RaftStorage::kSchemaVersionKey), std::to_string(RaftStorage::kSchemaVersion));
  EXPECT_FALSE(s->get_meta("missing").has_value());
}

std::set<std::string> snapshot_files(const std::string& dir) {
  std::set<std::string> out;
  for (const auto& f : std::filesystem::directory_iterator(dir)) {
    std::string name = f.path().filename().string();
    if (name.rfind("snapshot-", 0) == 0) out.insert(name);
  }
  return out;
}

// A snapshot this member took is switched to without an fsync of its own
// (the next Ready's makes it durable), so the older snapshot's file must
// outlive the switch until then: a crash before it leaves the database
// naming the older snapshot.
TEST(RaftStorageTest, SaveSnapshotWaitsForTheNextFsyncBeforeDroppingTheOlderFile) {
  TempDir dir;
  storage::testing::register_faulty_vfs();
  auto s = RaftStorage::open(dir.path(), RaftStorageOptions{storage::testing::kFaultyVfs});
  s->persist(with_entries(entries(1, 100, 1)));
  s->save_snapshot(make_snapshot(50, 1, "s50"), LogIndex(40));
  s->persist(with_entries(entries(101, 101, 1)));
  ASSERT_EQ(snapshot_files(dir.path()), (std::set<std::string>{snapshot_file_name(LogIndex(50), Term(1))}));

  auto next = make_snapshot(90, 1, "s90");
  s->write_snapshot_file(next);  // as the snapshot maker does, off the persist thread
  storage::testing::reset_sync_count();
  s->save_snapshot(next, LogIndex(80));
  EXPECT_EQ(storage::testing::sync_count(), 0) << "save_snapshot fsynced the database or its WAL";
  EXPECT_EQ(snapshot_files(dir.path()), (std::set<std::string>{snapshot_file_name(LogIndex(50), Term(1)),
                                                               snapshot_file_name(LogIndex(90), Term(1))}));
  EXPECT_EQ(s->snapshot()->index, LogIndex(90));

  s->persist(with_entries(entries(102, 102, 1)));
  EXPECT_EQ(storage::testing::sync_count(), 1);
  EXPECT_EQ(snapshot_files(dir.path()), (std::set<std::string>{snapshot_file_name(LogIndex(90), Term(1))}));
  s.reset();
  auto reopened = RaftStorage::open(dir.path());
  InitialState st = reopened->load();
  EXPECT_EQ(st.snapshot.index, LogIndex(90));
  EXPECT_EQ(*st.snapshot.data, "s90");
  EXPECT_EQ(st.entries.front().index, LogIndex(91));
  EXPECT_EQ(st.entries.back().index, LogIndex(102));
}

TEST(RaftStorageTest, ReadyOf256EntriesIsOneFsync) {
  TempDir dir;
  storage::testing::register_faulty_vfs();
  auto s = RaftStorage::open(dir.path(), RaftStorageOptions{storage::testing::kFaultyVfs});
  s->persist(with_entries(entries(1, 1, 1)));  // warm up: first WAL frame
  Ready rd;
  rd.hard_state = HardState{Term(1), NodeId("c1"), LogIndex(1)};
  rd.entries = entries(2, 257, 1);
  for (auto& e : rd.entries) e.data = std::string(100, 'x');
  storage::testing::reset_sync_count();
  s->persist(rd);
  EXPECT_EQ(storage::testing::sync_count(), 1);
  EXPECT_EQ(s->load().entries.size(), 257u);
}

TEST(RaftStorageTest, ManyReadiesSurviveRestart) {
  TempDir dir;
  uint64_t next = 1;
  {
    auto s = RaftStorage::open(dir.path());
    for (int round = 0; round < 50; ++round) {
      Ready rd;
      rd.hard_state = HardState{Term(1 + round / 10), NodeId("c1"), LogIndex(next - 1)};
      rd.entries = entries(next, next + 19, 1 + round / 10);
      next += 20;
      s->persist(rd);
      if (round % 10 == 9) {
        LogIndex applied(next - 5);
        s->save_snapshot(make_snapshot(applied.value(), 1 + round / 10, "s"), LogIndex(applied.value() - 10));
      }
    }
  }
  auto s = RaftStorage::open(dir.path());
  InitialState st = s->load();
  EXPECT_EQ(st.snapshot.index, LogIndex(next - 5));
  EXPECT_EQ(st.entries.size(), 4u);
  EXPECT_EQ(st.entries.back().index, LogIndex(next - 1));
  EXPECT_EQ(st.hard_state.commit, LogIndex(next - 21));
}

}  // namespace
}  // namespace tenure::storage
