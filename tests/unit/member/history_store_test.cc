// Each shard's history in SQLite (member/history_store.h): reads come after
// the writes submitted before them, the newest records per shard are kept,
// a deletion drops the shard's older records, a replayed log writes the
// same records once, what was synced survives a reopen, and a lost file or
// an installed snapshot is reported as a gap rather than as a short history.
#include "member/history_store.h"

#include <gtest/gtest.h>

#include <future>

#include "storage/sqlite.h"
#include "tests/unit/storage/temp_dir.h"

namespace tenure::member {
namespace {

using controlplane::ChangeReason;
using controlplane::Epoch;
using controlplane::HistoryRecord;
using controlplane::Revision;
using controlplane::ShardId;
using controlplane::WorkerId;

HistoryRecord rec(uint64_t revision, uint64_t epoch, const std::string& to) {
  HistoryRecord h;
  h.revision = Revision(revision);
  h.epoch = Epoch(epoch);
  h.to = WorkerId(to);
  h.from = WorkerId(epoch > 1 ? "w-old" : "");
  h.reason = epoch > 1 ? ChangeReason::kRebalance : ChangeReason::kCreated;
  h.at_ms = 1000 + revision;
  h.prepare_ms = 7;
  h.drain_ms = 9;
  h.prepared = true;
  h.drain_timed_out = true;
  return h;
}

/// The record both old layouts' fixtures below hold for s1 at revision 8:
/// ('s1', 8, 2, 'w1', 'w2', reason 3, 1008, 7, 9, flags 6).
HistoryRecord moved_record() {
  HistoryRecord h;
  h.revision = Revision(8);
  h.epoch = Epoch(2);
  h.from = WorkerId("w1");
  h.to = WorkerId("w2");
  h.reason = ChangeReason::kRebalance;
  h.at_ms = 1008;
  h.prepare_ms = 7;
  h.drain_ms = 9;
  h.drain_timed_out = true;  // flag 2
  h.prepared = true;         // flag 4
  return h;
}

HistoryStore::Answer read(HistoryStore& store, const std::string& shard) {
  std::promise<HistoryStore::Answer> p;
  store.read(ShardId(shard), [&p](HistoryStore::Answer a) { p.set_value(std::move(a)); });
  return p.get_future().get();
}

std::vector<uint64_t> revisions(const HistoryStore::Answer& a) {
  std::vector<uint64_t> out;
  for (const auto& h : a.records) out.push_back(h.revision.value());
  return out;
}

HistoryStore::Page export_page(HistoryStore& store, uint64_t through, const std::string& after_shard,
                               uint64_t after_revision, size_t limit) {
  std::promise<HistoryStore::Page> p;
  store.export_page(Revision(through), ShardId(after_shard), Revision(after_revision), limit,
                    [&p](HistoryStore::Page page) { p.set_value(std::move(page)); });
  return p.get_future().get();
}

bool import_page(HistoryStore& store, uint64_t gap, HistoryStore::Page page, bool last) {
  std::promise<bool> p;
  store.import_page(Revision(gap), std::move(page), last, [&p](bool ok) { p.set_value(ok); });
  return p.get_future().get();
}

TEST(HistoryStore, AReadSeesEveryRecordSubmittedBeforeIt) {
  storage::testing::TempDir dir;
  HistoryStore store(dir.path(), 32);
  store.record(ShardId("s1"), rec(1, 1, "w1"));
  store.record(ShardId("s2"), rec(2, 1, "w2"));
  store.submit(Revision(2));
  HistoryRecord third = rec(3, 2, "w2");
  third.prepared = false;
  third.prepare_timed_out = true;
  third.drain_timed_out = false;
  store.record(ShardId("s1"), third);
  store.submit(Revision(3));
  auto a = read(store, "s1");
  EXPECT_EQ(revisions(a), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(a.records[0], rec(1, 1, "w1"));  // every field round-trips (the queue, the file)
  EXPECT_EQ(a.records[1], third);
  EXPECT_EQ(a.gap_through, Revision(0));
  EXPECT_EQ(revisions(read(store, "s2")), (std::vector<uint64_t>{2}));
  EXPECT_TRUE(read(store, "nope").records.empty());
  EXPECT_EQ(store.records_written(), 3u);
}

TEST(HistoryStore, KeepsTheNewestRecordsOfEachShard) {
  storage::testing::TempDir dir;
  HistoryStore store(dir.path(), 3);
  for (uint64_t r = 1; r <= 4; ++r) store.record(ShardId("s1"), rec(r, r, "w"));
  store.submit(Revision(4));
  EXPECT_EQ(revisions(read(store, "s1")), (std::vector<uint64_t>{2, 3, 4}));
  store.record(ShardId("s1"), rec(5, 5, "w"));
  store.record(ShardId("s2"), rec(6, 1, "w"));
  store.submit(Revision(6));
  EXPECT_EQ(revisions(read(store, "s1")), (std::vector<uint64_t>{3, 4, 5}));
}

// Many shards moving in one batch of applies, in no key order: each keeps
// its newest records, and what it let go of is gone from the file (counted
// in a second connection), not only from its head.
TEST(HistoryStore, ManyShardsInOneBatchKeepTheirNewestRecordsAndTheFileOnlyThose) {
  storage::testing::TempDir dir;
  {
    HistoryStore store(dir.path(), 3);
    uint64_t revision = 0;
    for (int round = 0; round < 10; ++round) {
      ++revision;
      for (int s = 49; s >= 0; --s) store.record(ShardId("shard-" + std::to_string(s)), rec(revision, round + 1, "w"));
    }
    store.submit(Revision(revision));
    for (int s = 0; s < 50; ++s) {
      ASSERT_EQ(revisions(read(store, "shard-" + std::to_string(s))), (std::vector<uint64_t>{8, 9, 10})) << s;
    }
    EXPECT_EQ(store.records_written(), 500u);
  }
  auto db = storage::Database::open(dir.path() + "/history.db");
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(db.value()->query_text("SELECT count(*) FROM records").value(), "150");
  EXPECT_EQ(db.value()->query_text("SELECT count(*) FROM heads").value(), "50");
}

// Ids at the contract's 128-character limit, many sharing a long prefix
// (as generated ids do): heads keyed by them and records round-trip.
TEST(HistoryStore, IdsOfTheLongestLengthRoundTrip) {
  storage::testing::TempDir dir;
  const std::string prefix(120, 'p');
  auto shard = [&](int s) {
    std::string id = prefix + std::to_string(10000000 + s);
    return id.substr(0, 128);
  };
  ASSERT_EQ(shard(0).size(), 128u);
  const std::string worker = std::string(127, 'w') + "x";
  {
    HistoryStore store(dir.path(), 2);
    for (uint64_t r = 1; r <= 3; ++r) {
      for (int s = 0; s < 200; ++s) store.record(ShardId(shard(s)), rec(r, r, worker));
    }
    store.submit(Revision(3));
    auto a = read(store, shard(137));
    EXPECT_EQ(revisions(a), (std::vector<uint64_t>{2, 3}));
    EXPECT_EQ(a.records[1], rec(3, 3, worker));
  }
  HistoryStore reopened(dir.path(), 2);
  reopened.opened_at(Revision(3));
  EXPECT_EQ(read(reopened, shard(199)).records[0], rec(2, 2, worker));
  EXPECT_EQ(revisions(read(reopened, shard(0))), (std::vector<uint64_t>{2, 3}));
}

// A history.db of the first layout (keyed by shard, before records were
// clustered by revision) is moved over when the store opens it: its
// records read the same, the old table is gone, and its gap is kept.
TEST(HistoryStore, AFileOfTheFirstLayoutIsMovedOverOnOpen) {
  storage::testing::TempDir dir;
  {
    auto db = storage::Database::open(dir.path() + "/history.db");
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db.value()
                    ->exec("CREATE TABLE history (shard TEXT NOT NULL, revision INTEGER NOT NULL, epoch INTEGER NOT "
                           "NULL, from_worker TEXT NOT NULL, to_worker TEXT NOT NULL, reason INTEGER NOT NULL, at_ms "
                           "INTEGER NOT NULL, prepare_ms INTEGER NOT NULL, drain_ms INTEGER NOT NULL, flags INTEGER "
                           "NOT NULL, PRIMARY KEY (shard, revision)) WITHOUT ROWID;"
                           "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
                           "INSERT INTO history VALUES ('s1', 3, 1, '', 'w1', 0, 1003, 0, 0, 0);"
                           "INSERT INTO history VALUES ('s1', 8, 2, 'w1', 'w2', 3, 1008, 7, 9, 6);"
                           "INSERT INTO history VALUES ('s2', 5, 1, '', 'w2', 0, 1005, 0, 0, 0);"
                           "INSERT INTO meta VALUES ('written_revision', 9), ('gap_through_revision', 2);")
                    .ok());
  }
  HistoryStore store(dir.path(), 32);
  store.opened_at(Revision(9));
  auto s1 = read(store, "s1");
  EXPECT_EQ(revisions(s1), (std::vector<uint64_t>{3, 8}));
  EXPECT_EQ(s1.gap_through, Revision(2));
  ASSERT_EQ(s1.records.size(), 2u);
  EXPECT_EQ(s1.records[1], moved_record());  // every field
  EXPECT_EQ(revisions(read(store, "s2")), (std::vector<uint64_t>{5}));
  store.record(ShardId("s2"), rec(10, 2, "w1"));
  store.submit(Revision(10));
  EXPECT_EQ(revisions(read(store, "s2")), (std::vector<uint64_t>{5, 10}));
  auto db = storage::Database::open(dir.path() + "/history.db");
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(db.value()->query_text("SELECT count(*) FROM sqlite_master WHERE name = 'history'").value(), "0");
}

// The layout main had for an hour before this one (heads keyed by a hash
// of the id): its records are moved over and its heads rebuilt.
TEST(HistoryStore, AFileWithHashedHeadsIsMovedOverOnOpen) {
  storage::testing::TempDir dir;
  {
    auto db = storage::Database::open(dir.path() + "/history.db");
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE(db.value()
                    ->exec("CREATE TABLE records (revision INTEGER NOT NULL, hash INTEGER NOT NULL, shard TEXT NOT "
                           "NULL, epoch INTEGER NOT NULL, from_worker TEXT NOT NULL, to_worker TEXT NOT NULL, reason "
                           "INTEGER NOT NULL, at_ms INTEGER NOT NULL, prepare_ms INTEGER NOT NULL, drain_ms INTEGER "
                           "NOT NULL, flags INTEGER NOT NULL, PRIMARY KEY (revision, hash, shard)) WITHOUT ROWID;"
                           "CREATE TABLE heads (hash INTEGER PRIMARY KEY, revisions BLOB NOT NULL);"
                           "CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
                           "INSERT INTO records VALUES (3, 77, 's1', 1, '', 'w1', 0, 1003, 0, 0, 0);"
                           "INSERT INTO records VALUES (8, 77, 's1', 2, 'w1', 'w2', 3, 1008, 7, 9, 6);"
                           "INSERT INTO records VALUES (8, 12, 's2', 1, '', 'w2', 0, 1008, 0, 0, 0);"
                           "INSERT INTO heads VALUES (77, x'0305'), (12, x'08');"
                           "INSERT INTO meta VALUES ('written_revision', 9);")
                    .ok());
  }
  HistoryStore store(dir.path(), 32);
  store.opened_at(Revision(9));
  auto s1 = read(store, "s1");
  EXPECT_EQ(revisions(s1), (std::vector<uint64_t>{3, 8}));
  EXPECT_EQ(s1.gap_through, Revision(0));
  ASSERT_EQ(s1.records.size(), 2u);
  EXPECT_EQ(s1.records[1], moved_record());
  EXPECT_EQ(revisions(read(store, "s2")), (std::vector<uint64_t>{8}));
  auto db = storage::Database::open(dir.path() + "/history.db");
  ASSERT_TRUE(db.ok());
  EXPECT_EQ(db.value()->query_text("SELECT count(*) FROM sqlite_master WHERE name = 'records_hashed'").value(), "0");
  EXPECT_EQ(db.value()->query_text("SELECT count(*) FROM pragma_table_info('heads') WHERE name = 'hash'").value(), "0");
}

TEST(HistoryStore, ADeletionDropsTheShardsOlderRecordsAndAReplayChangesNothing) {
  storage::testing::TempDir dir;
  HistoryStore store(dir.path(), 32);
  auto apply_log = [&] {
    store.record(ShardId("s1"), rec(1, 1, "w1"));
    store.record(ShardId("s1"), rec(2, 2, "w2"));
    store.submit(Revision(2));
    store.erase(ShardId("s1"), Revision(4));  // deleted; created again, granted at 5
    store.submit(Revision(4));
    store.record(ShardId("s1"), rec(5, 4, "w1"));
    store.submit(Revision(5));
  };
  apply_log();
  EXPECT_EQ(revisions(read(store, "s1")), (std::vector<uint64_t>{5}));
  // A restarted member applies the same entries again: the records written
  // before its crash are not doubled, and the new incarnation's survive.
  apply_log();
  EXPECT_EQ(revisions(read(store, "s1")), (std::vector<uint64_t>{5}));
}

TEST(HistoryStore, WhatWasSyncedSurvivesAReopenWithoutAGap) {
  storage::testing::TempDir dir;
  {
    HistoryStore store(dir.path(), 32);
    store.record(ShardId("s1"), rec(1, 1, "w1"));
    store.submit(Revision(1));
    store.record(ShardId("s1"), rec(7, 2, "w2"));
    store.submit(Revision(9));
    store.sync_through(Revision(9));
    store.sync_through(Revision(500));  // never submitted: returns, does not wait forever
  }
  HistoryStore store(dir.path(), 32);
  store.opened_at(Revision(9));  // the member's snapshot is at 9: written through it
  auto a = read(store, "s1");
  EXPECT_EQ(revisions(a), (std::vector<uint64_t>{1, 7}));
  EXPECT_EQ(a.gap_through, Revision(0));
}

// Most applies record nothing (creates, registrations): a snapshot at such
// a revision must not wait for a write that never comes, and the file is
// then written through it (no gap at the next start).
TEST(HistoryStore, ASyncThroughRevisionsThatRecordedNothingReturnsAndLeavesNoGap) {
  storage::testing::TempDir dir;
  {
    HistoryStore store(dir.path(), 32);
    store.submit(Revision(5));
    store.sync_through(Revision(5));
    store.record(ShardId("s1"), rec(6, 1, "w1"));
    store.submit(Revision(6));
    store.submit(Revision(30));
    store.sync_through(Revision(30));
  }
  HistoryStore store(dir.path(), 32);
  store.opened_at(Revision(30));
  auto a = read(store, "s1");
  EXPECT_EQ(revisions(a), (std::vector<uint64_t>{6}));
  EXPECT_EQ(a.gap_through, Revision(0));
}

/// Holds a store's writer inside a read's answer until release(), so that
/// what is submitted meanwhile queues up.
class HeldWriter {
 public:
  explicit HeldWriter(HistoryStore& store) {
    std::promise<void> entered;
    store.read(ShardId("held"), [&entered, released = released_](HistoryStore::Answer) {
      entered.set_value();
      released.wait();
    });
    entered.get_future().wait();
  }
  ~HeldWriter() { release(); }
  void release() {
    if (!done_) release_.set_value();
    done_ = true;
  }

 private:
  std::promise<void> release_;
  std::shared_future<void> released_ = release_.get_future().share();
  bool done_ = false;
};

/// What one submitted apply of `shards` records holds in the queue.
size_t queued_bytes_of(const std::vector<std::string>& shards) {
  storage::testing::TempDir dir;
  HistoryStore probe(dir.path(), 32);
  HeldWriter held(probe);
  uint64_t revision = 1;
  for (const auto& shard : shards) probe.record(ShardId(shard), rec(revision++, 1, "w1"));
  probe.submit(Revision(revision));
  return probe.counts().queued_bytes;
}

// A writer that cannot keep up must not grow the controller's memory
// without end nor stall apply: past the bound an apply's records are
// dropped and noted as a gap (its deletions are kept), to be filled from
// the leader.
TEST(HistoryStore, PastTheQueueBoundRecordsAreDroppedAsAGapButDeletionsAreKept) {
  storage::testing::TempDir dir;
  HistoryStore store(dir.path(), 32, {/*records=*/3, /*bytes=*/SIZE_MAX});
  store.record(ShardId("old"), rec(1, 1, "w1"));
  store.submit(Revision(1));
  EXPECT_EQ(revisions(read(store, "old")), (std::vector<uint64_t>{1}));
  HeldWriter held(store);
  store.record(ShardId("s1"), rec(2, 1, "w1"));
  store.record(ShardId("s2"), rec(3, 1, "w1"));
  store.submit(Revision(3));  // 2 queued
  store.record(ShardId("s1"), rec(4, 2, "w2"));
  store.record(ShardId("s3"), rec(5, 1, "w2"));
  store.submit(Revision(5));  // 2 + 2 > 3: dropped
  store.erase(ShardId("old"), Revision(6));
  store.record(ShardId("s4"), rec(7, 1, "w2"));
  store.submit(Revision(7));  // dropped too, but for the deletion
  held.release();
  auto s1 = read(store, "s1");
  EXPECT_EQ(revisions(s1), (std::vector<uint64_t>{2}));
  EXPECT_EQ(s1.gap_through, Revision(7));
  EXPECT_TRUE(read(store, "s3").records.empty());
  EXPECT_TRUE(read(store, "old").records.empty()) << "the deletion was not dropped";
  EXPECT_EQ(store.records_dropped(), 3u);
  // Below the bound again: records are written, the gap stays until filled.
  store.record(ShardId("s1"), rec(8, 3, "w1"));
  store.submit(Revision(8));
  auto after = read(store, "s1");
  EXPECT_EQ(revisions(after), (std::vector<uint64_t>{2, 8}));
  EXPECT_EQ(after.gap_through, Revision(7));
  // The leader's page fills it: what was dropped, not what was deleted since.
  HistoryStore::Page page;
  page.records.emplace_back(ShardId("s1"), rec(4, 2, "w2"));
  page.records.emplace_back(ShardId("s3"), rec(5, 1, "w2"));
  page.records.emplace_back(ShardId("s4"), rec(7, 1, "w2"));
  ASSERT_TRUE(import_page(store, 7, page, true));
  EXPECT_EQ(revisions(read(store, "s1")), (std::vector<uint64_t>{2, 4, 8}));
  EXPECT_EQ(read(store, "s1").gap_through, Revision(0));
  EXPECT_EQ(revisions(read(store, "s4")), (std::vector<uint64_t>{7}));
}

// The queue is bounded in memory as well as in records: records with long
// ids (120 characters here; the API takes up to 128) fill it several times
// sooner than short ones, so a count of records alone would let the queue
// hold several times the memory it was sized for.
TEST(HistoryStore, TheQueueBoundIsInBytesSoLongIdsQueueFewerRecords) {
  std::vector<std::string> short_ids, long_ids;
  for (int i = 0; i < 100; ++i) {
    short_ids.push_back("s" + std::to_string(i));
    long_ids.push_back(std::string(118, 'x') + std::to_string(i));
  }
  size_t short_apply = queued_bytes_of(short_ids);
  size_t long_apply = queued_bytes_of(long_ids);
  ASSERT_GT(long_apply, 4 * short_apply);
  // Room for the long apply once, and for the short one many times over.
  storage::testing::TempDir dir;
  HistoryStore store(dir.path(), 32, {/*records=*/1000, /*bytes=*/2 * long_apply - 1});
  HeldWriter held(store);
  uint64_t revision = 1;
  auto submit = [&](const std::vector<std::string>& ids) {
    for (const auto& id : ids) store.record(ShardId(id), rec(revision++, 1, "w1"));
    store.submit(Revision(revision));
  };
  submit(long_ids);  // queued
  submit(long_ids);  // past the bound: dropped
  EXPECT_EQ(store.counts().queued, 100u);
  EXPECT_EQ(store.records_dropped(), 100u);
  submit(short_ids);  // still room for this much
  EXPECT_EQ(store.counts().queued, 200u);
  EXPECT_EQ(store.records_dropped(), 100u);
  EXPECT_LT(store.counts().queued_bytes, 2 * long_apply);
  held.release();
  EXPECT_EQ(read(store, long_ids[0]).records.size(), 1u);
  EXPECT_EQ(read(store, short_ids[0]).records.size(), 1u);
  EXPECT_EQ(store.counts().queued_bytes, 0u) << "the writer gives back what it wrote";
}

// One apply larger than the whole bound is not dropped by an idle writer:
// it would otherwise never be written, however fast the disk.
TEST(HistoryStore, AnApplyLargerThanTheBoundGoesToAnIdleWriter) {
  storage::testing::TempDir dir;
  HistoryStore store(dir.path(), 32, {/*records=*/10, /*bytes=*/64});
  for (uint64_t r = 1; r <= 50; ++r) store.record(ShardId("s" + std::to_string(r)), rec(r, 1, "w1"));
  store.submit(Revision(50));
  EXPECT_EQ(revisions(read(store, "s50")), (std::vector<uint64_t>{50}));
  EXPECT_EQ(store.records_dropped(), 0u);
}

TEST(HistoryStore, ALostFileIsAGapUpToTheRestoredState) {
  storage::testing::TempDir dir;
  HistoryStore store(dir.path(), 32);
  store.opened_at(Revision(40));  // a snapshot at 40, and no file written through it
  store.record(ShardId("s1"), rec(41, 3, "w1"));
  store.submit(Revision(41));
  auto a = read(store, "s1");
  EXPECT_EQ(revisions(a), (std::vector<uint64_t>{41}));
  EXPECT_EQ(a.gap_through, Revision(40));
}

TEST(HistoryStore, AnInstalledSnapshotDropsEveryRecordAndTheGapIsKept) {
  storage::testing::TempDir dir;
  {
    HistoryStore store(dir.path(), 32);
    store.record(ShardId("gone"), rec(1, 1, "w1"));
    store.record(ShardId("s1"), rec(2, 1, "w1"));
    store.submit(Revision(2));
    store.reset(Revision(90));  // the leader's state at 90: "gone" may no longer exist
    store.record(ShardId("s1"), rec(91, 5, "w3"));
    store.submit(Revision(91));
    EXPECT_TRUE(read(store, "gone").records.empty());
    auto a = read(store, "s1");
    EXPECT_EQ(revisions(a), (std::vector<uint64_t>{91}));
    EXPECT_EQ(a.gap_through, Revision(90));
    store.sync_through(Revision(91));
  }
  HistoryStore store(dir.path(), 32);
  store.opened_at(Revision(91));
  EXPECT_EQ(read(store, "s1").gap_through, Revision(90));
}

// A member that installed the leader's snapshot at 10 copies the leader's
// records up to it, in pages, while it applies on: the pages fill the gap,
// never a shard it saw deleted, never over its own records, and the last
// page closes the gap.
TEST(HistoryStore, AGapIsFilledFromAnotherMembersPages) {
  storage::testing::TempDir leader_dir, joiner_dir;
  HistoryStore leader(leader_dir.path(), 32);
  for (uint64_t r = 1; r <= 6; ++r) leader.record(ShardId(r % 2 ? "a" : "b"), rec(r, r, "w1"));
  leader.record(ShardId("gone"), rec(7, 1, "w1"));
  leader.record(ShardId("a"), rec(12, 7, "w2"));  // after the joiner's snapshot: not exported
  leader.submit(Revision(12));

  HistoryStore joiner(joiner_dir.path(), 32);
  joiner.reset(Revision(10));
  joiner.erase(ShardId("gone"), Revision(11));  // applied before the page that still has it arrives
  joiner.record(ShardId("a"), rec(12, 7, "w2"));
  joiner.submit(Revision(12));
  EXPECT_EQ(read(joiner, "a").gap_through, Revision(10));

  auto first = export_page(leader, 10, "", 0, 3);
  EXPECT_TRUE(first.more);
  ASSERT_EQ(first.records.size(), 3u);  // a@1, b@2, a@3: revision order
  EXPECT_EQ(first.records[2].first, ShardId("a"));
  EXPECT_EQ(first.records[2].second.revision, Revision(3));
  EXPECT_EQ(first.gap_through, Revision(0));
  ASSERT_TRUE(import_page(joiner, 10, first, false));
  EXPECT_EQ(read(joiner, "a").gap_through, Revision(10));  // not the last page yet

  auto second = export_page(leader, 10, "a", 3, 3);
  ASSERT_EQ(second.records.size(), 3u);  // b@4, a@5, b@6
  auto third = export_page(leader, 10, "b", 6, 3);
  ASSERT_EQ(third.records.size(), 1u);  // gone@7
  EXPECT_FALSE(third.more);
  ASSERT_TRUE(import_page(joiner, 10, second, false));
  ASSERT_TRUE(import_page(joiner, 10, third, true));

  auto a = read(joiner, "a");
  EXPECT_EQ(revisions(a), (std::vector<uint64_t>{1, 3, 5, 12}));
  EXPECT_EQ(a.gap_through, Revision(0));
  EXPECT_EQ(a.records, read(leader, "a").records);
  EXPECT_EQ(revisions(read(joiner, "b")), (std::vector<uint64_t>{2, 4, 6}));
  EXPECT_TRUE(read(joiner, "gone").records.empty());
}

TEST(HistoryStore, APageForAGapThatChangedIsRefused) {
  storage::testing::TempDir dir;
  HistoryStore store(dir.path(), 32);
  HistoryStore::Page page;
  page.records.emplace_back(ShardId("s1"), rec(3, 1, "w1"));
  EXPECT_FALSE(import_page(store, 10, page, true));  // no gap at all
  store.reset(Revision(10));
  store.reset(Revision(20));  // a second snapshot installed while the first was being filled
  EXPECT_FALSE(import_page(store, 10, page, true));
  EXPECT_TRUE(read(store, "s1").records.empty());
  EXPECT_EQ(store.gap_through(), Revision(20));
  // A page whose exporter has a gap of its own leaves that gap here.
  page.gap_through = Revision(5);
  EXPECT_TRUE(import_page(store, 20, page, true));
  EXPECT_EQ(revisions(read(store, "s1")), (std::vector<uint64_t>{3}));
  EXPECT_EQ(store.gap_through(), Revision(5));
}

}  // namespace
}  // namespace tenure::member
