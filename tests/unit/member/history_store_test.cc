// Each shard's history in SQLite (member/history_store.h): reads come after
// the writes submitted before them, the newest records per shard are kept,
// a deletion drops the shard's older records, a replayed log writes the
// same records once, what was synced survives a reopen, and a lost file or
// an installed snapshot is reported as a gap rather than as a short history.
#include "member/history_store.h"

#include <gtest/gtest.h>

#include <future>

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

TEST(HistoryStore, AReadSeesEveryRecordSubmittedBeforeIt) {
  storage::testing::TempDir dir;
  HistoryStore store(dir.path(), 32);
  store.record(ShardId("s1"), rec(1, 1, "w1"));
  store.record(ShardId("s2"), rec(2, 1, "w2"));
  store.submit(Revision(2));
  store.record(ShardId("s1"), rec(3, 2, "w2"));
  store.submit(Revision(3));
  auto a = read(store, "s1");
  EXPECT_EQ(revisions(a), (std::vector<uint64_t>{1, 3}));
  EXPECT_EQ(a.records[1], rec(3, 2, "w2"));  // every field round-trips
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

}  // namespace
}  // namespace tenure::member
