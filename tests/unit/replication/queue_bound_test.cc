#include "replication/queue_bound.h"

#include <gtest/gtest.h>

namespace tenure::replication {
namespace {

TEST(QueueBound, RefusesPastTheCount) {
  QueueBound q(3, 1000);
  EXPECT_TRUE(q.admit(1));
  EXPECT_TRUE(q.admit(1));
  EXPECT_TRUE(q.admit(1));
  EXPECT_FALSE(q.admit(1));
  EXPECT_EQ(q.count(), 3u);
  q.reset();
  EXPECT_TRUE(q.admit(1));
}

TEST(QueueBound, RefusesPastTheBytes) {
  QueueBound q(100, 10);
  EXPECT_TRUE(q.admit(6));
  EXPECT_FALSE(q.admit(5));
  EXPECT_TRUE(q.admit(4));
  EXPECT_EQ(q.bytes(), 10u);
  EXPECT_FALSE(q.admit(0 + 1));
}

TEST(QueueBound, AnEmptyQueueAdmitsOneItemOfAnySize) {
  QueueBound q(1, 10);
  EXPECT_TRUE(q.admit(1 << 20));
  EXPECT_FALSE(q.admit(1));
}

}  // namespace
}  // namespace tenure::replication
