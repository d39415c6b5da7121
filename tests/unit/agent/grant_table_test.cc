// Event application: grants, revokes, deletions, worker events, re-lists;
// duplicates, out-of-order events and other workers' events.
#include <gtest/gtest.h>

#include "dataplane_agent/grant_table.h"

namespace tenure::agent {
namespace {

const WorkerId kSelf("w1");
const WorkerId kOther("w2");

WatchEvent event(WatchEvent::Kind kind, uint64_t revision, const std::string& shard, const WorkerId& worker,
                 uint64_t epoch) {
  WatchEvent e;
  e.kind = kind;
  e.revision = Revision(revision);
  e.shard = ShardId(shard);
  e.worker = worker;
  e.epoch = Epoch(epoch);
  return e;
}
WatchEvent grant(uint64_t rev, const std::string& s, uint64_t epoch, const WorkerId& w = kSelf) {
  return event(WatchEvent::Kind::kGrant, rev, s, w, epoch);
}
WatchEvent revoke(uint64_t rev, const std::string& s, uint64_t epoch, const WorkerId& w = kSelf) {
  return event(WatchEvent::Kind::kRevoke, rev, s, w, epoch);
}
WatchEvent deleted(uint64_t rev, const std::string& s, uint64_t epoch) {
  return event(WatchEvent::Kind::kShardDeleted, rev, s, WorkerId(), epoch);
}
WatchEvent worker_state(uint64_t rev, const WorkerId& w, const std::string& state) {
  WatchEvent e = event(WatchEvent::Kind::kWorker, rev, "", w, 0);
  e.shard = ShardId();
  e.state = state;
  return e;
}

class GrantTableTest : public ::testing::Test {
 protected:
  /// Applies events as one batch and installs it; returns what to release.
  std::vector<ShardEpoch> apply(const std::vector<WatchEvent>& events) {
    GrantChanges c(table);
    for (const auto& e : events) c.apply_event(e, kSelf);
    table.install(c);
    return c.to_release();
  }
  FenceCode check(const std::string& s, uint64_t epoch) { return table.check(s, Epoch(epoch)).code; }
  GrantTable table;
};

TEST_F(GrantTableTest, GrantThenRevoke) {
  apply({grant(1, "a", 1)});
  EXPECT_EQ(check("a", 1), FenceCode::kOk);
  EXPECT_EQ(table.held_count(), 1u);
  auto release = apply({revoke(2, "a", 1)});
  EXPECT_EQ(check("a", 1), FenceCode::kNotOwner);
  EXPECT_EQ(table.held_count(), 0u);
  ASSERT_EQ(release.size(), 1u);
  EXPECT_EQ(release[0], (ShardEpoch{ShardId("a"), Epoch(1)}));
  EXPECT_EQ(table.revision(), Revision(2));
  // The epoch is remembered after the grant is gone.
  EXPECT_EQ(table.find("a")->max_epoch, Epoch(1));
}

TEST_F(GrantTableTest, NewerGrantReplacesOlder) {
  apply({grant(1, "a", 1), grant(5, "a", 3)});
  EXPECT_EQ(check("a", 3), FenceCode::kOk);
  EXPECT_EQ(check("a", 1), FenceCode::kStaleEpoch);
  EXPECT_EQ(table.held_count(), 1u);
}

TEST_F(GrantTableTest, DuplicateEventsChangeNothing) {
  apply({grant(1, "a", 2)});
  GrantChanges c(table);
  EXPECT_FALSE(c.grant(ShardId("a"), Epoch(2)));
  apply({revoke(2, "a", 2)});
  GrantChanges d(table);
  EXPECT_FALSE(d.drop(ShardId("a"), Epoch(2)));
  EXPECT_EQ(table.held_count(), 0u);
}

TEST_F(GrantTableTest, LateGrantAfterItsRevokeIsIgnored) {
  // Out of order: the revoke of epoch 4 is seen before the grant of 4.
  apply({revoke(7, "a", 4)});
  apply({grant(6, "a", 4)});
  EXPECT_EQ(check("a", 4), FenceCode::kNotOwner);
  EXPECT_EQ(table.held_count(), 0u);
}

TEST_F(GrantTableTest, OlderGrantAfterNewerIsIgnored) {
  apply({grant(9, "a", 5)});
  GrantChanges c(table);
  EXPECT_FALSE(c.grant(ShardId("a"), Epoch(5)));
  EXPECT_EQ(c.refused(), 0u);  // a repeat is not a refusal
  EXPECT_FALSE(c.grant(ShardId("a"), Epoch(2)));
  EXPECT_EQ(c.refused(), 1u);
  apply({grant(3, "a", 2)});
  EXPECT_EQ(check("a", 5), FenceCode::kOk);
  EXPECT_EQ(check("a", 2), FenceCode::kStaleEpoch);
}

TEST_F(GrantTableTest, RevokeOfAnOlderEpochLeavesTheNewerGrant) {
  apply({grant(5, "a", 3)});
  apply({revoke(6, "a", 2)});
  EXPECT_EQ(check("a", 3), FenceCode::kOk);
}

TEST_F(GrantTableTest, ShardDeletedDropsAndRaisesTheEpoch) {
  apply({grant(1, "a", 1)});
  // The controller revokes first (epoch moves to 2 with no owner), then deletes.
  apply({revoke(2, "a", 1), deleted(3, "a", 2)});
  EXPECT_EQ(check("a", 1), FenceCode::kStaleEpoch);
  EXPECT_EQ(table.find("a")->max_epoch, Epoch(2));
  // A deletion of a shard never seen leaves no row.
  apply({deleted(4, "zz", 9)});
  EXPECT_EQ(table.find("zz"), nullptr);
}

TEST_F(GrantTableTest, OtherWorkersEventsAreIgnored) {
  apply({grant(1, "a", 1)});
  apply({grant(2, "b", 1, kOther), revoke(3, "a", 1, kOther), worker_state(4, kOther, "dead")});
  EXPECT_EQ(check("a", 1), FenceCode::kOk);
  EXPECT_EQ(table.find("b"), nullptr);
  EXPECT_EQ(table.revision(), Revision(4));
}

TEST_F(GrantTableTest, SelfDeclaredDeadDropsEverything) {
  apply({grant(1, "a", 1), grant(2, "b", 4)});
  auto release = apply({worker_state(3, kSelf, "dead")});
  EXPECT_EQ(table.held_count(), 0u);
  EXPECT_TRUE(release.empty());  // the controllers already moved them
  EXPECT_EQ(check("b", 3), FenceCode::kStaleEpoch);
  EXPECT_EQ(check("b", 4), FenceCode::kNotOwner);
  // Alive or draining changes nothing.
  apply({grant(5, "c", 1), worker_state(6, kSelf, "draining")});
  EXPECT_EQ(table.held_count(), 1u);
}

TEST_F(GrantTableTest, ListingReplacesWhatIsHeld) {
  apply({grant(1, "a", 1), grant(2, "b", 1)});
  ShardList list;
  list.revision = Revision(40);
  list.shards = {{ShardId("b"), kSelf, Epoch(1), "active"},
                 {ShardId("c"), kSelf, Epoch(6), "active"},
                 {ShardId("d"), kSelf, Epoch(2), "handoff"}};
  GrantChanges c(table);
  c.apply_listing(list);
  table.install(c);
  EXPECT_EQ(check("a", 1), FenceCode::kNotOwner);  // gone from the list: dropped
  EXPECT_EQ(check("b", 1), FenceCode::kOk);
  EXPECT_EQ(check("c", 6), FenceCode::kOk);
  EXPECT_EQ(check("d", 2), FenceCode::kNotOwner);  // being handed off: not served
  ASSERT_EQ(c.to_release().size(), 1u);
  EXPECT_EQ(c.to_release()[0], (ShardEpoch{ShardId("d"), Epoch(2)}));
  EXPECT_EQ(table.revision(), Revision(40));
  auto held = table.held();
  ASSERT_EQ(held.size(), 2u);
  EXPECT_EQ(held[0].shard, ShardId("b"));  // sorted
  EXPECT_EQ(held[1].shard, ShardId("c"));
}

TEST_F(GrantTableTest, StaleListingCannotResurrectARevokedGrant) {
  // A heartbeat answer revoked "a" at 3; a listing read before the handoff
  // began still says active at 3. It must stay dropped.
  apply({grant(1, "a", 3)});
  GrantChanges hb(table);
  hb.revoke_for_release({ShardId("a"), Epoch(3)});
  table.install(hb);
  ShardList old;
  old.revision = Revision(1);
  old.shards = {{ShardId("a"), kSelf, Epoch(3), "active"}};
  GrantChanges c(table);
  c.apply_listing(old);
  table.install(c);
  EXPECT_EQ(check("a", 3), FenceCode::kNotOwner);
}

TEST_F(GrantTableTest, DropAllInsideABatchSeesTheBatchsGrants) {
  apply({grant(1, "a", 1)});
  GrantChanges c(table);
  c.grant(ShardId("b"), Epoch(2));
  c.drop_all();
  table.install(c);
  EXPECT_EQ(table.held_count(), 0u);
  EXPECT_EQ(c.dropped(), 2u);
}

TEST(FenceRule, CheckRecord) {
  ShardRecord held{Epoch(4), Epoch(2), true};
  EXPECT_EQ(check_record(&held, Epoch(4)).code, FenceCode::kOk);
  EXPECT_EQ(check_record(&held, Epoch(3)).code, FenceCode::kStaleEpoch);
  EXPECT_EQ(check_record(&held, Epoch(3)).current_epoch, Epoch(4));
  EXPECT_EQ(check_record(&held, Epoch(5)).code, FenceCode::kNotOwner);
  EXPECT_EQ(check_record(nullptr, Epoch(1)).code, FenceCode::kNotOwner);
  ShardRecord dropped{Epoch(4), Epoch(4), false};
  EXPECT_EQ(check_record(&dropped, Epoch(4)).code, FenceCode::kNotOwner);
}

}  // namespace
}  // namespace tenure::agent
