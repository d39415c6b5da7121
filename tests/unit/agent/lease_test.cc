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

}  // namespace
}  // namespace tenure::agent
