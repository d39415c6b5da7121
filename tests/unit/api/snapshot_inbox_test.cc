// The snapshot inbox (api/snapshot_inbox.*): chunks spooled to disk, one
// transfer per sender, a bounded number of senders, a size limit, expiry,
// and CRC32C checks per chunk and over the whole data.
#include "api/snapshot_inbox.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/crc32c.h"

namespace tenure::api {
namespace {

namespace fs = std::filesystem;
using S = SnapshotInbox::Status;

struct Dir {
  std::string path = (fs::temp_directory_path() / ("inbox-test-" + std::to_string(::getpid()))).string();
  ~Dir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  size_t files() const {
    size_t n = 0;
    for (auto it = fs::directory_iterator(path); it != fs::directory_iterator(); ++it) ++n;
    return n;
  }
};

TEST(SnapshotInbox, ReassemblesChunksFromDiskAndChecksTheWhole) {
  Dir d;
  SnapshotInbox in(d.path, {});
  std::string a = "first chunk|", b = "second chunk";
  EXPECT_EQ(in.chunk("c1", "t1", 0, a, crc32c(a)), S::kOk);
  EXPECT_EQ(in.chunk("c1", "t1", a.size(), b, crc32c(b)), S::kOk);
  EXPECT_EQ(d.files(), 1u);  // spooled, one file per sender
  std::string out;
  EXPECT_EQ(in.finish("c1", "t1", a.size() + b.size(), crc32c(a + b), out), S::kOk);
  EXPECT_EQ(out, a + b);
  EXPECT_EQ(d.files(), 0u);
  EXPECT_EQ(in.active(), 0u);
}

TEST(SnapshotInbox, RefusesCorruptChunksAndACorruptWhole) {
  Dir d;
  SnapshotInbox in(d.path, {});
  EXPECT_EQ(in.chunk("c1", "t1", 0, "abc", crc32c("abd")), S::kChecksum);
  EXPECT_EQ(in.chunk("c1", "t1", 0, "abc", std::nullopt), S::kOk);  // an older sender names no CRC
  std::string out;
  EXPECT_EQ(in.finish("c1", "t1", 3, crc32c("abd"), out), S::kChecksum);
  EXPECT_EQ(in.active(), 0u);  // gone: the leader starts over
}

TEST(SnapshotInbox, OutOfOrderUnknownAndIncompleteTransfers) {
  Dir d;
  SnapshotInbox in(d.path, {});
  std::string out;
  EXPECT_EQ(in.chunk("c1", "t1", 5, "x", std::nullopt), S::kUnknownTransfer);
  EXPECT_EQ(in.chunk("c1", "t1", 0, "xy", std::nullopt), S::kOk);
  EXPECT_EQ(in.chunk("c1", "t1", 1, "y", std::nullopt), S::kOutOfOrder);
  EXPECT_EQ(in.finish("c1", "t2", 2, std::nullopt, out), S::kUnknownTransfer);
  EXPECT_EQ(in.finish("c1", "t1", 3, std::nullopt, out), S::kOutOfOrder);
  EXPECT_EQ(in.active(), 0u);
}

TEST(SnapshotInbox, OneTransferPerSenderAndABoundedNumberOfSenders) {
  Dir d;
  SnapshotInbox in(d.path, SnapshotInboxLimits{1 << 20, 2, 60000});
  EXPECT_EQ(in.chunk("c1", "t1", 0, "a", std::nullopt), S::kOk);
  EXPECT_EQ(in.chunk("c1", "t2", 0, "b", std::nullopt), S::kOk);  // replaces t1
  EXPECT_EQ(in.chunk("c2", "u1", 0, "c", std::nullopt), S::kOk);
  EXPECT_EQ(in.chunk("forged-3", "v1", 0, "d", std::nullopt), S::kBusy);
  EXPECT_EQ(in.active(), 2u);
  EXPECT_EQ(d.files(), 2u);
  std::string out;
  EXPECT_EQ(in.finish("c1", "t2", 1, std::nullopt, out), S::kOk);
  EXPECT_EQ(out, "b");
  EXPECT_EQ(in.chunk("forged-3", "v1", 0, "d", std::nullopt), S::kOk);
}

TEST(SnapshotInbox, SizeLimit) {
  Dir d;
  SnapshotInbox in(d.path, SnapshotInboxLimits{10, 4, 60000});
  EXPECT_EQ(in.chunk("c1", "t1", 0, "0123456789", std::nullopt), S::kOk);
  EXPECT_EQ(in.chunk("c1", "t1", 10, "x", std::nullopt), S::kTooLarge);
  EXPECT_EQ(in.active(), 0u);
  EXPECT_EQ(d.files(), 0u);
}

TEST(SnapshotInbox, IdleTransfersExpire) {
  Dir d;
  SnapshotInbox in(d.path, SnapshotInboxLimits{1 << 20, 1, 1000});
  auto t0 = SnapshotInbox::Clock::now();
  EXPECT_EQ(in.chunk("c1", "t1", 0, "a", std::nullopt, t0), S::kOk);
  EXPECT_EQ(in.chunk("c2", "u1", 0, "b", std::nullopt, t0 + std::chrono::milliseconds(500)), S::kBusy);
  // c1 went silent past the timeout: its file goes, c2 gets the slot.
  EXPECT_EQ(in.chunk("c2", "u1", 0, "b", std::nullopt, t0 + std::chrono::milliseconds(1500)), S::kOk);
  EXPECT_EQ(in.expired_total(), 1u);
  std::string out;
  EXPECT_EQ(in.finish("c1", "t1", 1, std::nullopt, out, t0 + std::chrono::milliseconds(1600)), S::kUnknownTransfer);
  EXPECT_EQ(d.files(), 1u);
}

TEST(SnapshotInbox, LeftoversOfAnEarlierProcessAreRemoved) {
  Dir d;
  fs::create_directories(d.path);
  { std::ofstream(d.path + "/transfer-1-2.part") << "old"; }
  SnapshotInbox in(d.path, {});
  EXPECT_EQ(d.files(), 0u);
}

}  // namespace
}  // namespace tenure::api
