// The off-strand snapshot (controller/snapshot_maker.h): a forked child
// encodes the state as it was at start(), whatever the parent changes
// after, writes its file durably and lets go of every descriptor it
// inherited; a maker destroyed mid-way kills its child and calls nothing.
#include "member/snapshot_maker.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <fcntl.h>
#include <filesystem>
#include <mutex>
#include <optional>

#include "storage/raft_storage.h"
#include "storage/snapshot_file.h"
#include "tests/unit/storage/temp_dir.h"

namespace tenure::member {
namespace {

using consensus::LogIndex;
using consensus::NodeId;
using consensus::Snapshot;
using consensus::Term;
using namespace controlplane;

Command cmd(CommandBody body) { return Command{"", 1000, std::move(body)}; }

StateMachine state_with(int shards) {
  StateMachine sm;
  sm.apply(cmd(RegisterWorker{WorkerId("w1"), "127.0.0.1:1", "z1", 1}));
  std::vector<ShardId> ids;
  for (int i = 0; i < shards; ++i) ids.emplace_back("s-" + std::to_string(i));
  sm.apply(cmd(CreateShards{ids}));
  return sm;
}

Snapshot point_at(uint64_t index) {
  Snapshot p;
  p.index = LogIndex(index);
  p.term = Term(2);
  p.conf.voters = {NodeId("c1")};
  return p;
}

struct Waiter {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<MadeSnapshot> made;
  std::function<void(MadeSnapshot)> callback() {
    return [this](MadeSnapshot m) {
      std::lock_guard<std::mutex> lock(mu);
      made = std::move(m);
      cv.notify_all();
    };
  }
  MadeSnapshot wait() {
    std::unique_lock<std::mutex> lock(mu);
    EXPECT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [this] { return made.has_value(); }));
    return *made;
  }
};

TEST(SnapshotMaker, TheChildEncodesTheStateAsItWasAtStartAndWritesItsFile) {
  storage::testing::TempDir dir;
  auto storage = storage::RaftStorage::open(dir.path());
  StateMachine sm = state_with(20000);
  const std::string expected = sm.snapshot();
  Waiter w;
  SnapshotMaker maker(*storage);
  maker.start(sm, point_at(7), w.callback());
  // The parent goes on changing its state at once; the child has its copy.
  sm.apply(cmd(CreateShards{{ShardId("after-the-fork")}}));
  MadeSnapshot made = w.wait();
  ASSERT_NE(made.snapshot.data, nullptr);
  EXPECT_TRUE(made.forked);
  EXPECT_EQ(made.snapshot.index, LogIndex(7));
  EXPECT_EQ(made.snapshot.conf.voters, std::set<NodeId>{NodeId("c1")});
  EXPECT_EQ(*made.snapshot.data, expected);
  EXPECT_EQ(storage::read_snapshot_file(dir.path(), storage::snapshot_file_name(LogIndex(7), Term(2))), expected);
  // Saved, it is what a restart loads.
  storage->save_snapshot(made.snapshot, LogIndex(0));
  storage.reset();
  EXPECT_EQ(*storage::RaftStorage::open(dir.path())->load().snapshot.data, expected);
}

/// The targets of `pid`'s open descriptors; nullopt once it is gone.
std::optional<std::vector<std::string>> open_files(pid_t pid) {
  std::error_code ec;
  std::vector<std::string> out;
  std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec);
  if (ec) return std::nullopt;
  for (const auto& e : it) out.push_back(std::filesystem::read_symlink(e.path(), ec).string());
  return out;
}

TEST(SnapshotMaker, TheChildHoldsNoInheritedDescriptor) {
  storage::testing::TempDir dir;
  auto storage = storage::RaftStorage::open(dir.path());
  // A descriptor of the parent's, as a listening socket or the data_dir
  // LOCK would be: a child that kept it open would keep the port or the
  // lock from a restarted controller.
  const std::string probe = dir.sub("probe");
  int fd = ::open(probe.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  ASSERT_GE(fd, 0);
  StateMachine sm = state_with(200000);  // tens of milliseconds of encoding: the child is seen alive
  Waiter w;
  SnapshotMaker maker(*storage);
  maker.start(sm, point_at(3), w.callback());
  pid_t child = maker.child_pid();
  ASSERT_GT(child, 0);
  bool seen_without_probe = false;
  for (;;) {
    auto files = open_files(child);
    if (!files) break;  // exited
    bool has_probe = false, has_lock = false;
    for (const auto& f : *files) {
      has_probe |= f == probe;
      has_lock |= f == dir.sub("LOCK");
    }
    if (!has_probe && !has_lock && !files->empty()) {
      seen_without_probe = true;
      break;
    }
  }
  EXPECT_TRUE(seen_without_probe) << "the child exited before it was seen without the parent's descriptors";
  EXPECT_NE(w.wait().snapshot.data, nullptr);
  ::close(fd);
}

TEST(SnapshotMaker, DestroyedMidwayItKillsTheChildAndCallsNothing) {
  storage::testing::TempDir dir;
  auto storage = storage::RaftStorage::open(dir.path());
  StateMachine sm = state_with(200000);
  bool called = false;
  {
    SnapshotMaker maker(*storage);
    maker.start(sm, point_at(9), [&called](MadeSnapshot) { called = true; });
  }
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace tenure::member
