// The storage under the real Raft core: drive a member through the Ready
// contract (persist -> send -> apply -> advance), throw it away, and restart
// a new one from what the storage loads. The restarted member must have the
// same term, vote, log and snapshot as the one that crashed.
#include <gtest/gtest.h>

#include <deque>
#include <map>

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

/// Members on real storage, their messages delivered in order by hand.
struct Group {
  struct Member {
    std::unique_ptr<RaftStorage> storage;
    std::unique_ptr<Raft> raft;
  };
  std::map<NodeId, Member> members;
  std::deque<Message> wire;

  void add(const std::string& id, const std::string& dir, size_t resident_bytes) {
    Member m;
    m.storage = RaftStorage::open(dir);
    m.storage->bootstrap(bootstrap_state({NodeId("c1"), NodeId("c2"), NodeId("c3")}));
    RaftConfig c = config(id);
    c.max_resident_log_bytes = resident_bytes;
    c.max_bytes_per_msg = 16 << 10;  // several messages for the follower behind
    m.raft = std::make_unique<Raft>(c, m.storage->load());
    m.raft->set_entry_reader(m.storage.get());
    members[NodeId(id)] = std::move(m);
  }
  /// Readies and deliveries until quiet; messages to absent members are lost.
  void pump() {
    for (int round = 0; round < 10000; ++round) {
      bool busy = false;
      for (auto& [id, m] : members) {
        while (m.raft->has_ready()) {
          busy = true;
          Ready rd = m.raft->ready();
          m.storage->persist(rd);
          for (auto& msg : rd.early_messages) wire.push_back(std::move(msg));
          for (auto& msg : rd.messages) wire.push_back(std::move(msg));
          m.raft->advance();
        }
      }
      while (!wire.empty()) {
        busy = true;
        Message msg = std::move(wire.front());
        wire.pop_front();
        auto to = members.find(msg.to);
        if (to != members.end()) to->second.raft->step(std::move(msg));
      }
      if (!busy) return;
    }
    FAIL() << "the group did not settle";
  }
};

// The leader lets go of applied payloads; a follower that was down all
// along catches up with entries read back from the leader's raft.db.
TEST(RaftStorageDriverTest, AFollowerBehindCatchesUpFromTheLeadersFile) {
  TempDir dir;
  Group g;
  g.add("c1", dir.sub("c1"), 4 << 10);
  g.add("c2", dir.sub("c2"), 4 << 10);
  Raft& leader = *g.members[NodeId("c1")].raft;
  g.pump();  // the bootstrap configuration applied
  leader.campaign();
  g.pump();
  ASSERT_EQ(leader.role(), Role::kLeader);
  for (int i = 0; i < 300; ++i) {
    ASSERT_TRUE(leader.propose("command-" + std::to_string(i) + std::string(200, 'p')).ok());
    if (i % 20 == 19) g.pump();
  }
  g.pump();
  ASSERT_EQ(leader.log().committed(), leader.log().last_index());
  // About 66 KB committed; at most the budget (plus nothing unapplied) stays.
  EXPECT_GT(leader.log().released_through(), LogIndex(250));
  EXPECT_LE(leader.log().resident_bytes(), size_t{4} << 10);

  g.add("c3", dir.sub("c3"), 4 << 10);
  const Raft& late = *g.members[NodeId("c3")].raft;
  for (int t = 0; t < 50 && late.log().last_index() < leader.log().last_index(); ++t) {
    for (int k = 0; k < leader.config().heartbeat_ticks; ++k) leader.tick();
    g.pump();
  }
  ASSERT_EQ(late.log().last_index(), leader.log().last_index());
  for (LogIndex i = LogIndex(1); i <= leader.log().last_index(); i = i.next()) {
    ASSERT_EQ(late.log().entry(i), leader.log().entry(i)) << "at " << i;
  }
}

}  // namespace
}  // namespace tenure::storage
