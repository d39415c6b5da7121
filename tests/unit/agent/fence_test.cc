// The fence rule: each result, the order of the checks, and the lock that
// makes a fenced write atomic with respect to revocation.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "dataplane_agent/fence_state.h"

namespace tenure::agent {
namespace {

using std::chrono::milliseconds;

/// A FenceState holding s-1 at epoch 3, with s-2 seen (and dropped) at 5.
class FenceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    GrantChanges c(fence.table_for_planning());
    c.grant(ShardId("s-1"), Epoch(3));
    c.grant(ShardId("s-2"), Epoch(5));
    c.drop(ShardId("s-2"), Epoch(5));
    fence.install(c);
    fence.extend_lease(clock.now() + milliseconds(1000));
  }
  ManualClock clock;
  FenceState fence{clock};
};

TEST_F(FenceTest, HeldAtExactlyThatEpochWithValidLeaseIsOk) {
  FenceResult r = fence.check("s-1", Epoch(3));
  EXPECT_EQ(r.code, FenceCode::kOk);
  EXPECT_EQ(r.current_epoch, Epoch(3));
}

TEST_F(FenceTest, OlderEpochIsStaleWithTheCurrentOne) {
  FenceResult r = fence.check("s-1", Epoch(2));
  EXPECT_EQ(r.code, FenceCode::kStaleEpoch);
  EXPECT_EQ(r.current_epoch, Epoch(3));
  // Also for a shard no longer held: its epoch is remembered.
  EXPECT_EQ(fence.check("s-2", Epoch(4)).code, FenceCode::kStaleEpoch);
  EXPECT_EQ(fence.check("s-2", Epoch(4)).current_epoch, Epoch(5));
}

TEST_F(FenceTest, NotHeldOrNewerEpochIsNotOwner) {
  EXPECT_EQ(fence.check("s-9", Epoch(1)).code, FenceCode::kNotOwner);  // never heard of
  EXPECT_EQ(fence.check("s-2", Epoch(5)).code, FenceCode::kNotOwner);  // dropped at that epoch
  EXPECT_EQ(fence.check("s-1", Epoch(4)).code, FenceCode::kNotOwner);  // newer than held
}

TEST_F(FenceTest, LeaseIsCheckedFirst) {
  clock.advance(milliseconds(1000));  // exactly at the deadline: lapsed
  EXPECT_EQ(fence.check("s-1", Epoch(3)).code, FenceCode::kLeaseExpired);
  EXPECT_EQ(fence.check("s-1", Epoch(2)).code, FenceCode::kLeaseExpired);
  EXPECT_EQ(fence.check("s-9", Epoch(1)).code, FenceCode::kLeaseExpired);
  fence.extend_lease(clock.now() + milliseconds(10));
  EXPECT_EQ(fence.check("s-1", Epoch(3)).code, FenceCode::kOk);
}

TEST_F(FenceTest, CountsEveryResult) {
  fence.check("s-1", Epoch(3));
  fence.check("s-1", Epoch(2));
  fence.check("s-9", Epoch(1));
  fence.check("s-9", Epoch(1));
  clock.advance(milliseconds(2000));
  fence.check("s-1", Epoch(3));
  auto counts = fence.counts();
  EXPECT_EQ(counts[static_cast<size_t>(FenceCode::kOk)], 1u);
  EXPECT_EQ(counts[static_cast<size_t>(FenceCode::kStaleEpoch)], 1u);
  EXPECT_EQ(counts[static_cast<size_t>(FenceCode::kNotOwner)], 2u);
  EXPECT_EQ(counts[static_cast<size_t>(FenceCode::kLeaseExpired)], 1u);
}

TEST_F(FenceTest, StopFailsEveryCheckForGood) {
  fence.stop();
  EXPECT_EQ(fence.check("s-1", Epoch(3)).code, FenceCode::kLeaseExpired);
  fence.extend_lease(clock.now() + milliseconds(1000));
  EXPECT_EQ(fence.check("s-1", Epoch(3)).code, FenceCode::kLeaseExpired);
  EXPECT_FALSE(fence.lease_valid());
}

TEST_F(FenceTest, InvalidateLeaseFailsChecksUntilExtended) {
  fence.invalidate_lease();
  EXPECT_EQ(fence.check("s-1", Epoch(3)).code, FenceCode::kLeaseExpired);
  fence.extend_lease(clock.now() + milliseconds(5));
  EXPECT_EQ(fence.check("s-1", Epoch(3)).code, FenceCode::kOk);
}

TEST_F(FenceTest, WithFenceRunsTheWriteOnlyWhenAdmitted) {
  int writes = 0;
  EXPECT_EQ(fence.with_fence("s-1", Epoch(3), [&] { ++writes; }).code, FenceCode::kOk);
  EXPECT_EQ(fence.with_fence("s-1", Epoch(2), [&] { ++writes; }).code, FenceCode::kStaleEpoch);
  EXPECT_EQ(writes, 1);
}

TEST_F(FenceTest, WithFenceMayCheckAgainInside) {
  // Re-entrant use must not deadlock (nor take the lock twice).
  FenceResult inner;
  fence.with_fence("s-1", Epoch(3), [&] { inner = fence.check("s-1", Epoch(3)); });
  EXPECT_EQ(inner.code, FenceCode::kOk);
}

TEST_F(FenceTest, RevokeWaitsForTheWriteInFlight) {
  // A revoke (install) must not land between a write's check and its end.
  std::atomic<bool> revoker_started{false}, revoked{false};
  bool revoked_during_write = false;
  std::thread revoker;
  FenceResult r = fence.with_fence("s-1", Epoch(3), [&] {
    revoker = std::thread([&] {
      revoker_started = true;
      GrantChanges c(fence.table_for_planning());
      c.drop(ShardId("s-1"), Epoch(3));
      fence.install(c);
      revoked = true;
    });
    while (!revoker_started) std::this_thread::yield();
    // Give a broken lock every chance to let the revoke through.
    for (int i = 0; i < 20000 && !revoked_during_write; ++i) {
      revoked_during_write = revoked.load();
      std::this_thread::yield();
    }
  });
  revoker.join();
  EXPECT_EQ(r.code, FenceCode::kOk);
  EXPECT_FALSE(revoked_during_write);
  EXPECT_TRUE(revoked.load());
  EXPECT_EQ(fence.check("s-1", Epoch(3)).code, FenceCode::kNotOwner);
}

TEST(RwLock, WaitingWriterBlocksNewReaders) {
  // glibc's default rwlock prefers readers: a stream of fence checks could
  // starve a revoke. Ours must not admit new readers while a writer waits.
  RwLock lock;
  lock.lock_shared();
  std::atomic<bool> writer_in{false};
  std::thread writer([&] {
    lock.lock();
    writer_in = true;
    lock.unlock();
  });
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool reader_refused = false;
  while (!reader_refused && std::chrono::steady_clock::now() < deadline) {
    if (lock.try_lock_shared()) {
      lock.unlock_shared();
      std::this_thread::yield();
    } else {
      reader_refused = true;
    }
  }
  EXPECT_TRUE(reader_refused);
  EXPECT_FALSE(writer_in.load());
  lock.unlock_shared();
  writer.join();
  EXPECT_TRUE(writer_in.load());
}

TEST(FenceCodes, NamesAndStatuses) {
  EXPECT_EQ(to_string(FenceCode::kOk), "ok");
  EXPECT_EQ(to_string(FenceCode::kLeaseExpired), "lease_expired");
  EXPECT_EQ(to_string(FenceCode::kStaleEpoch), "stale_epoch");
  EXPECT_EQ(to_string(FenceCode::kNotOwner), "not_owner");
  EXPECT_EQ(http_status(FenceCode::kOk), 200);
  EXPECT_EQ(http_status(FenceCode::kLeaseExpired), 503);
  EXPECT_EQ(http_status(FenceCode::kStaleEpoch), 409);
  EXPECT_EQ(http_status(FenceCode::kNotOwner), 421);
}

}  // namespace
}  // namespace tenure::agent
