// SQLite persistence: epochs survive a reopen; the fenced data store admits
// writes by the fence and refuses values older than the stored one.
#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "dataplane_agent/data_store.h"
#include "dataplane_agent/grant_store.h"
#include "tests/unit/agent/agent_test_util.h"

namespace tenure::agent {
namespace {

using testing::TempDir;

TEST(GrantStore, EpochsAndRevisionSurviveAReopen) {
  TempDir dir;
  const WorkerId self("w1");
  {
    auto store = GrantStore::open(dir.file("agent.db"), self);
    ASSERT_TRUE(store.ok()) << store.error().message;
    GrantTable table;
    GrantChanges c(table);
    c.grant(ShardId("a"), Epoch(3));
    c.grant(ShardId("b"), Epoch(9));
    c.drop(ShardId("b"), Epoch(9));
    c.advance_revision(Revision(77));
    ASSERT_TRUE(store.value()->save(c).ok());
  }
  auto store = GrantStore::open(dir.file("agent.db"), self);
  ASSERT_TRUE(store.ok()) << store.error().message;
  auto loaded = store.value()->load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.value().revision, Revision(77));
  ASSERT_EQ(loaded.value().records.size(), 2u);
  EXPECT_EQ(loaded.value().records.at("a"), (ShardRecord{Epoch(3), Epoch(0), true}));
  EXPECT_EQ(loaded.value().records.at("b"), (ShardRecord{Epoch(9), Epoch(9), false}));

  // Loaded into a table, a stale epoch is still refused after the restart.
  GrantTable table;
  table.load(loaded.value().records, loaded.value().revision);
  EXPECT_EQ(table.check("b", Epoch(8)).code, FenceCode::kStaleEpoch);
  EXPECT_EQ(table.check("b", Epoch(9)).code, FenceCode::kNotOwner);
  EXPECT_EQ(table.check("a", Epoch(3)).code, FenceCode::kOk);
}

TEST(GrantStore, LaterBatchesOverwriteRows) {
  TempDir dir;
  const WorkerId self("w1");
  auto store = GrantStore::open(dir.file("agent.db"), self);
  ASSERT_TRUE(store.ok());
  GrantTable table;
  for (uint64_t e = 1; e <= 3; ++e) {
    GrantChanges c(table);
    c.grant(ShardId("a"), Epoch(e));
    ASSERT_TRUE(store.value()->save(c).ok());
    table.install(c);
  }
  auto loaded = store.value()->load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.value().records.at("a").max_epoch, Epoch(3));
}

TEST(GrantStore, RefusesAnotherWorkersStore) {
  TempDir dir;
  ASSERT_TRUE(GrantStore::open(dir.file("agent.db"), WorkerId("w1")).ok());
  auto other = GrantStore::open(dir.file("agent.db"), WorkerId("w2"));
  ASSERT_FALSE(other.ok());
  EXPECT_EQ(other.code(), StoreErrc::kForeign);
  EXPECT_NE(other.error().message.find("w1"), std::string::npos);
}

TEST(DirLock, OneAgentPerDataDir) {
  TempDir dir;
  auto first = DirLock::acquire(dir.path());
  ASSERT_TRUE(first.ok());
  auto second = DirLock::acquire(dir.path());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.code(), StoreErrc::kLocked);
  first.value().reset();
  EXPECT_TRUE(DirLock::acquire(dir.path()).ok());
}

class DataStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GrantChanges c(fence.table_for_planning());
    c.grant(ShardId("s"), Epoch(5));
    fence.install(c);
    fence.extend_lease(clock.now() + std::chrono::seconds(10));
    auto d = DataStore::open(dir.file("data.db"), fence);
    ASSERT_TRUE(d.ok()) << d.error().message;
    data = std::move(d.value());
  }
  PutOutcome put(const std::string& shard, const std::string& key, uint64_t epoch, const std::string& value) {
    std::promise<PutOutcome> p;
    data->put(ShardId(shard), key, Epoch(epoch), value, [&](PutOutcome o) { p.set_value(std::move(o)); });
    return p.get_future().get();
  }
  TempDir dir;
  ManualClock clock;
  FenceState fence{clock};
  std::unique_ptr<DataStore> data;
};

TEST_F(DataStoreTest, FencedPutIsDurableAndReadable) {
  EXPECT_EQ(put("s", "k", 5, "v1").kind, PutOutcome::Kind::kOk);
  auto v = data->get(ShardId("s"), "k");
  ASSERT_TRUE(v.ok());
  ASSERT_TRUE(v.value().has_value());
  EXPECT_EQ(v.value()->value, "v1");
  EXPECT_EQ(v.value()->epoch, Epoch(5));
  // Reopened from disk.
  data.reset();
  auto again = DataStore::open(dir.file("data.db"), fence);
  ASSERT_TRUE(again.ok());
  auto w = again.value()->get(ShardId("s"), "k");
  ASSERT_TRUE(w.ok() && w.value().has_value());
  EXPECT_EQ(w.value()->value, "v1");
}

TEST_F(DataStoreTest, PutsRefusedByTheFenceAreNotStored) {
  auto stale = put("s", "k", 4, "old");
  EXPECT_EQ(stale.kind, PutOutcome::Kind::kFenced);
  EXPECT_EQ(stale.fence.code, FenceCode::kStaleEpoch);
  EXPECT_EQ(stale.fence.current_epoch, Epoch(5));
  EXPECT_EQ(put("other", "k", 1, "x").fence.code, FenceCode::kNotOwner);
  clock.advance(std::chrono::seconds(10));
  EXPECT_EQ(put("s", "k", 5, "late").fence.code, FenceCode::kLeaseExpired);
  auto v = data->get(ShardId("s"), "k");
  ASSERT_TRUE(v.ok());
  EXPECT_FALSE(v.value().has_value());
}

TEST_F(DataStoreTest, ValueWithANewerEpochIsNotOverwrittenByAnOlderOne) {
  // Epoch 6 wrote the value; this agent then holds the shard at 5 again
  // only in a broken world, but the store must refuse the older write anyway.
  GrantChanges up(fence.table_for_planning());
  up.grant(ShardId("s"), Epoch(6));
  fence.install(up);
  ASSERT_EQ(put("s", "k", 6, "new").kind, PutOutcome::Kind::kOk);
  // Simulate the table forgetting epoch 6 (e.g. a lost agent.db).
  GrantTable fresh;
  GrantChanges back(fresh);
  back.grant(ShardId("s"), Epoch(5));
  std::map<std::string, ShardRecord> rows(back.records().begin(), back.records().end());
  fence.load(rows, Revision(0));
  auto o = put("s", "k", 5, "old");
  EXPECT_EQ(o.kind, PutOutcome::Kind::kValueStale);
  EXPECT_EQ(o.stored_epoch, Epoch(6));
  auto v = data->get(ShardId("s"), "k");
  ASSERT_TRUE(v.ok() && v.value().has_value());
  EXPECT_EQ(v.value()->value, "new");
}

TEST_F(DataStoreTest, StoppedStoreRefusesWrites) {
  data->stop();
  auto o = put("s", "k", 5, "v");
  EXPECT_EQ(o.kind, PutOutcome::Kind::kFenced);
  EXPECT_EQ(o.fence.code, FenceCode::kLeaseExpired);
}

TEST_F(DataStoreTest, FullQueueIsOverloadedNotUnbounded) {
  auto d = DataStore::open(dir.file("small.db"), fence, /*max_queued=*/0);
  ASSERT_TRUE(d.ok());
  std::promise<PutOutcome> p;
  d.value()->put(ShardId("s"), "k", Epoch(5), "v", [&](PutOutcome o) { p.set_value(std::move(o)); });
  EXPECT_EQ(p.get_future().get().kind, PutOutcome::Kind::kOverloaded);
}

TEST_F(DataStoreTest, ValuesAreBytesKeptByteForByte) {
  // One value holding every byte value, and one value per byte (NUL, 0xFF,
  // lone UTF-8 continuation bytes...): the store keeps bytes, not text.
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  ASSERT_EQ(put("s", "all", 5, all).kind, PutOutcome::Kind::kOk);
  for (int b = 0; b < 256; ++b) {
    ASSERT_EQ(put("s", "one-" + std::to_string(b), 5, std::string(1, static_cast<char>(b))).kind,
              PutOutcome::Kind::kOk);
  }
  ASSERT_EQ(put("s", "empty", 5, "").kind, PutOutcome::Kind::kOk);
  auto v = data->get(ShardId("s"), "all");
  ASSERT_TRUE(v.ok() && v.value().has_value());
  EXPECT_EQ(v.value()->value, all);
  for (int b = 0; b < 256; ++b) {
    auto one = data->get(ShardId("s"), "one-" + std::to_string(b));
    ASSERT_TRUE(one.ok() && one.value().has_value()) << b;
    EXPECT_EQ(one.value()->value, std::string(1, static_cast<char>(b))) << b;
  }
  auto e = data->get(ShardId("s"), "empty");
  ASSERT_TRUE(e.ok() && e.value().has_value());
  EXPECT_EQ(e.value()->value, "");
}

TEST_F(DataStoreTest, AThrowingCallbackDoesNotStopTheWriter) {
  // The writer thread runs callers' callbacks: one that throws is logged and
  // the thread goes on (it used to end the process through std::terminate).
  std::promise<void> thrown;
  data->put(ShardId("s"), "k1", Epoch(5), "v1", [&](PutOutcome) {
    thrown.set_value();
    throw std::runtime_error("callback failed");
  });
  thrown.get_future().get();
  EXPECT_EQ(put("s", "k2", 5, "v2").kind, PutOutcome::Kind::kOk);
  auto v = data->get(ShardId("s"), "k1");
  ASSERT_TRUE(v.ok() && v.value().has_value());
  EXPECT_EQ(v.value()->value, "v1");
}

}  // namespace
}  // namespace tenure::agent
