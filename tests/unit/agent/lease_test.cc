// Lease arithmetic with an injectable clock: valid until send time +
// lease * (1 - kMaxClockDrift) - max(kMinSafetyMargin, heartbeat interval).
#include <gtest/gtest.h>

#include <chrono>

#include "dataplane_agent/fence_state.h"
#include "dataplane_agent/lease.h"

namespace tenure::agent {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;

TEST(Lease, ConstantsAreTheDocumentedOnes) {
  EXPECT_DOUBLE_EQ(kMaxClockDrift, 0.05);
  EXPECT_EQ(kMinSafetyMargin, milliseconds(100));
}

TEST(Lease, MarginIsTheLargerOfTheMinimumAndTheHeartbeatInterval) {
  EXPECT_EQ(safety_margin(milliseconds(20)), milliseconds(100));
  EXPECT_EQ(safety_margin(milliseconds(100)), milliseconds(100));
  EXPECT_EQ(safety_margin(milliseconds(500)), milliseconds(500));
}

TEST(Lease, ValidityIsLeaseLessDriftLessMargin) {
  // 3000 * 0.95 - 500 = 2350 ms, exactly.
  EXPECT_EQ(lease_validity(milliseconds(3000), milliseconds(500)), milliseconds(2350));
  // 1000 * 0.95 - 100 = 850 ms.
  EXPECT_EQ(lease_validity(milliseconds(1000), milliseconds(50)), milliseconds(850));
  // Odd values round down, never up: 1001 * 0.95 = 950.95 ms.
  EXPECT_EQ(lease_validity(milliseconds(1001), milliseconds(50)), nanoseconds(950'950'000) - milliseconds(100));
}

TEST(Lease, TooShortALeaseIsNeverValid) {
  EXPECT_LE(lease_validity(milliseconds(500), milliseconds(500)).count(), 0);
}

TEST(Lease, CountsFromTheSendTimeNotTheAnswer) {
  ManualClock clock;
  FenceState fence(clock);
  SteadyTime sent = clock.now();
  clock.advance(milliseconds(400));  // the answer took 400 ms to come back
  fence.extend_lease(lease_deadline(sent, milliseconds(3000), milliseconds(500)));
  EXPECT_TRUE(fence.lease_valid());
  EXPECT_EQ(fence.lease_remaining(), milliseconds(2350 - 400));
  clock.advance(milliseconds(2350 - 400) - nanoseconds(1));
  EXPECT_TRUE(fence.lease_valid());
  clock.advance(nanoseconds(1));
  EXPECT_FALSE(fence.lease_valid());
  EXPECT_EQ(fence.lease_remaining(), nanoseconds(0));
}

TEST(Lease, NeverShortenedByALaterButOlderAnswer) {
  ManualClock clock;
  FenceState fence(clock);
  SteadyTime early = clock.now();
  clock.advance(milliseconds(100));
  SteadyTime late = clock.now();
  fence.extend_lease(lease_deadline(late, milliseconds(3000), milliseconds(500)));
  fence.extend_lease(lease_deadline(early, milliseconds(3000), milliseconds(500)));
  EXPECT_EQ(fence.lease_remaining(), milliseconds(2350));
}

TEST(Lease, InvalidUntilFirstExtended) {
  ManualClock clock;
  FenceState fence(clock);
  EXPECT_FALSE(fence.lease_valid());
  EXPECT_EQ(fence.check("s", Epoch(1)).code, FenceCode::kLeaseExpired);
}

using controlplane::Revision;

TEST(LeaseLedger, AnExtensionWaitsForItsRevision) {
  ManualClock clock;
  LeaseLedger ledger;
  SteadyTime t0 = clock.now();
  ledger.add(t0 + milliseconds(100), Revision(5));
  ledger.add(t0 + milliseconds(300), Revision(9));
  EXPECT_FALSE(ledger.deadline(Revision(4)));
  EXPECT_EQ(ledger.deadline(Revision(5)), t0 + milliseconds(100));
  EXPECT_EQ(ledger.deadline(Revision(8)), t0 + milliseconds(100));
  EXPECT_EQ(ledger.deadline(Revision(9)), t0 + milliseconds(300));
  EXPECT_EQ(ledger.deadline(Revision(100)), t0 + milliseconds(300));
}

TEST(LeaseLedger, AnExtensionNeedingMoreButEndingNoLaterIsDropped) {
  ManualClock clock;
  LeaseLedger ledger;
  SteadyTime t0 = clock.now();
  ledger.add(t0 + milliseconds(300), Revision(5));
  ledger.add(t0 + milliseconds(200), Revision(9));  // an older answer arriving late
  EXPECT_EQ(ledger.size(), 1u);
  EXPECT_EQ(ledger.deadline(Revision(9)), t0 + milliseconds(300));
  // A later deadline at a lower revision makes the higher one worthless.
  ledger.add(t0 + milliseconds(400), Revision(12));
  ledger.add(t0 + milliseconds(500), Revision(7));
  EXPECT_EQ(ledger.size(), 2u);
  EXPECT_EQ(ledger.deadline(Revision(5)), t0 + milliseconds(300));
  EXPECT_EQ(ledger.deadline(Revision(7)), t0 + milliseconds(500));
  EXPECT_EQ(ledger.deadline(Revision(12)), t0 + milliseconds(500));
}

TEST(LeaseLedger, ForgetsWhatRanOutAndKeepsFewEntries) {
  ManualClock clock;
  LeaseLedger ledger;
  SteadyTime t0 = clock.now();
  for (uint64_t r = 1; r <= 100; ++r) ledger.add(t0 + milliseconds(r), Revision(r));
  EXPECT_LE(ledger.size(), 32u);
  // Dropping the oldest only costs lease: what is left is the latest.
  EXPECT_EQ(ledger.deadline(Revision(100)), t0 + milliseconds(100));
  ledger.forget_expired(t0 + milliseconds(100));
  EXPECT_EQ(ledger.size(), 0u);
  EXPECT_FALSE(ledger.deadline(Revision(100)));
}

TEST(Lease, SetLeaseMayShortenIt) {
  ManualClock clock;
  FenceState fence(clock);
  fence.extend_lease(clock.now() + milliseconds(500));
  fence.extend_lease(clock.now() + milliseconds(100));  // extend never shortens
  EXPECT_EQ(fence.lease_remaining(), milliseconds(500));
  fence.set_lease(clock.now() + milliseconds(100));
  EXPECT_EQ(fence.lease_remaining(), milliseconds(100));
  fence.set_lease(clock.now() + milliseconds(700));
  EXPECT_EQ(fence.lease_remaining(), milliseconds(700));
}

}  // namespace
}  // namespace tenure::agent
