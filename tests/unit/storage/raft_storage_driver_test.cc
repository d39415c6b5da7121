// The storage under the real Raft core: drive a member through the Ready
// contract (persist -> send -> apply -> advance), throw it away, and restart
// a new one from what the storage loads. The restarted member must have the
// same term, vote, log and snapshot as the one that crashed.
#include <gtest/gtest.h>

#include "consensus/raft.h"
#include "storage/raft_storage.h"
#include "tests/unit/storage/temp_dir.h"

namespace tenure::storage {
namespace {

using namespace tenure::consensus;
using testing::TempDir;

RaftConfig config(const std::string& id) {
  RaftConfig c;
  c.id = NodeId(id);
  c.random_seed = 7;
  return c;
}

// Processes every Ready; messages go nowhere (single node or a hand-fed follower).
void drive(Raft& raft, RaftStorage& storage) {
  while (raft.has_ready()) {
    Ready rd = raft.ready();
    storage.persist(rd);
    raft.advance();
  }
}

void expect_same_log(const Raft& a, const Raft& b) {
  EXPECT_EQ(a.term(), b.term());
  EXPECT_EQ(a.status().vote, b.status().vote);
  EXPECT_EQ(a.log().last_index(), b.log().last_index());
  EXPECT_EQ(a.log().snapshot().index, b.log().snapshot().index);
  EXPECT_EQ(a.log().committed(), b.log().committed());
  for (LogIndex i = b.log().first_index(); i <= b.log().last_index(); i = i.next()) {
    EXPECT_EQ(a.log().entry(i), b.log().entry(i)) << "at " << i;
  }
}

TEST(RaftStorageDriverTest, SingleNodeRestartsFromDisk) {
  TempDir dir;
  auto storage = RaftStorage::open(dir.path());
  ASSERT_TRUE(storage->empty());
  storage->bootstrap(bootstrap_state({NodeId("c1")}));
  auto raft = std::make_unique<Raft>(config("c1"), storage->load());
  drive(*raft, *storage);
  raft->campaign();
  drive(*raft, *storage);
  ASSERT_EQ(raft->role(), Role::kLeader);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(raft->propose("cmd" + std::to_string(i)).ok());
    if (i % 10 == 9) drive(*raft, *storage);
  }
  auto [snap, compact_to] = raft->compact("state-machine-bytes", 5);
  storage->save_snapshot(snap, compact_to);
  std::vector<std::string> batch;
  for (int i = 0; i < 20; ++i) batch.push_back("late" + std::to_string(i));
  ASSERT_TRUE(raft->propose_batch(batch).ok());
  drive(*raft, *storage);
  ASSERT_GT(raft->log().committed(), snap.index);

  storage.reset();  // crash: only the file survives
  storage = RaftStorage::open(dir.path());
  Raft restarted(config("c1"), storage->load());
  expect_same_log(*raft, restarted);
  EXPECT_EQ(restarted.log().snapshot().index, snap.index);
  EXPECT_EQ(*restarted.log().snapshot().data, "state-machine-bytes");
  EXPECT_EQ(restarted.conf().voters, (std::set<NodeId>{NodeId("c1")}));
}

TEST(RaftStorageDriverTest, FollowerInstallsSnapshotThenEntries) {
  TempDir dir;
  auto storage = RaftStorage::open(dir.path());
  storage->bootstrap(bootstrap_state({NodeId("c1"), NodeId("c2"), NodeId("c3")}));
  auto raft = std::make_unique<Raft>(config("c2"), storage->load());
  drive(*raft, *storage);

  Snapshot snap;
  snap.index = LogIndex(100);
  snap.term = Term(2);
  snap.conf.voters = {NodeId("c1"), NodeId("c2"), NodeId("c3")};
  snap.data = std::make_shared<const std::string>("sm@100");
  Message install;
  install.type = MessageType::kSnapshot;
  install.from = NodeId("c1");
  install.to = NodeId("c2");
  install.term = Term(2);
  install.snapshot = snap;
  raft->step(install);
  drive(*raft, *storage);

  Message append;
  append.type = MessageType::kAppend;
  append.from = NodeId("c1");
  append.to = NodeId("c2");
  append.term = Term(2);
  append.index = LogIndex(100);
  append.log_term = Term(2);
  append.commit = LogIndex(103);
  for (uint64_t i = 101; i <= 105; ++i) append.entries.push_back(Entry{Term(2), LogIndex(i), EntryType::kNormal, "x"});
  raft->step(append);
  drive(*raft, *storage);
  ASSERT_EQ(raft->log().last_index(), LogIndex(105));

  storage.reset();
  storage = RaftStorage::open(dir.path());
  InitialState st = storage->load();
  EXPECT_EQ(st.snapshot.index, LogIndex(100));
  EXPECT_EQ(st.entries.size(), 5u);
  EXPECT_EQ(st.hard_state.term, Term(2));
  EXPECT_EQ(st.hard_state.commit, LogIndex(103));
  Raft restarted(config("c2"), std::move(st));
  expect_same_log(*raft, restarted);
}

}  // namespace
}  // namespace tenure::storage
