// ShardIdSet (controlplane/shard_id_set.h): chunks of pointers into the
// shard map behave as a std::set<ShardId>, through splits, merges and
// chunks emptied, in both directions and for every bound.
#include "controlplane/shard_id_set.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace tenure::controlplane {
namespace {

/// The ids, as the shard map holds them (stable addresses).
class Ids {
 public:
  const ShardId& operator()(int n) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "shard-%06d", n);
    return map_.try_emplace(ShardId(buf), 0).first->first;
  }

 private:
  std::map<ShardId, int> map_;
};

void expect_same(const ShardIdSet& s, const std::set<ShardId>& model, Ids& ids, std::mt19937& rng, int universe) {
  ASSERT_EQ(s.size(), model.size());
  EXPECT_EQ(s.empty(), model.empty());
  EXPECT_EQ(std::vector<ShardId>(s.begin(), s.end()), std::vector<ShardId>(model.begin(), model.end()));
  EXPECT_EQ(std::vector<ShardId>(s.rbegin(), s.rend()), std::vector<ShardId>(model.rbegin(), model.rend()));
  std::uniform_int_distribution<int> any(-1, universe + 1);
  for (int k = 0; k < 50; ++k) {
    const ShardId& probe = ids(any(rng));
    const std::string& at = probe.str();
    EXPECT_EQ(s.count(probe), model.count(probe)) << at;
    auto lo = s.lower_bound(probe);
    auto mlo = model.lower_bound(probe);
    EXPECT_EQ(lo == s.end(), mlo == model.end()) << at;
    if (lo != s.end() && mlo != model.end()) {
      EXPECT_EQ(*lo, *mlo) << at;
    }
    auto hi = s.upper_bound(probe);
    auto mhi = model.upper_bound(probe);
    EXPECT_EQ(hi == s.end(), mhi == model.end()) << at;
    if (hi != s.end() && mhi != model.end()) {
      EXPECT_EQ(*hi, *mhi) << at;
    }
    // Walking back from a bound reaches what the model has before it.
    if (hi != s.begin()) {
      EXPECT_EQ(*std::prev(hi), *std::prev(mhi)) << at;
    }
  }
}

TEST(ShardIdSetTest, BehavesAsAnOrderedSetThroughSplitsAndMerges) {
  Ids ids;
  std::mt19937 rng(12345);
  for (int universe : {10, 300, 5000}) {
    ShardIdSet s;
    std::set<ShardId> model;
    std::uniform_int_distribution<int> pick(0, universe - 1);
    // Grow past many chunks, then shrink to nothing, then grow again: the
    // chunks split, empty, merge and come back.
    for (int phase = 0; phase < 3; ++phase) {
      int ops = universe * 3;
      double p_insert = phase == 1 ? 0.2 : 0.8;
      for (int k = 0; k < ops; ++k) {
        const ShardId& id = ids(pick(rng));
        if (std::uniform_real_distribution<double>(0, 1)(rng) < p_insert) {
          s.insert(id);
          model.insert(id);
        } else {
          s.erase(id);
          model.erase(id);
        }
        if (k % (ops / 5 + 1) == 0) expect_same(s, model, ids, rng, universe);
      }
      expect_same(s, model, ids, rng, universe);
    }
    for (int n = 0; n < universe; ++n) {
      s.erase(ids(n));
      model.erase(ids(n));
    }
    expect_same(s, model, ids, rng, universe);
    EXPECT_TRUE(s.empty());
  }
}

TEST(ShardIdSetTest, RestoredInOrderThenChangedLikeAnyOther) {
  Ids ids;
  std::mt19937 rng(7);
  ShardIdSet s;
  std::set<ShardId> model;
  for (int n = 0; n < 2000; n += 2) {
    s.insert_last(ids(n));
    model.insert(ids(n));
  }
  expect_same(s, model, ids, rng, 2000);
  for (int n = 1; n < 2000; n += 6) {  // into full chunks
    s.insert(ids(n));
    model.insert(ids(n));
  }
  for (int n = 0; n < 2000; n += 3) {
    s.erase(ids(n));
    model.erase(ids(n));
  }
  expect_same(s, model, ids, rng, 2000);
  s.insert(ids(4));  // present already: no second entry
  model.insert(ids(4));
  expect_same(s, model, ids, rng, 2000);
}

TEST(ShardIdSetTest, AnEmptySetHasNothingToIterate) {
  Ids ids;
  ShardIdSet s;
  EXPECT_EQ(s.begin(), s.end());
  EXPECT_EQ(s.rbegin(), s.rend());
  EXPECT_EQ(s.lower_bound(ids(1)), s.end());
  EXPECT_EQ(s.upper_bound(ids(1)), s.end());
  EXPECT_EQ(s.count(ids(1)), 0u);
  s.erase(ids(1));
  EXPECT_TRUE(s.empty());
}

}  // namespace
}  // namespace tenure::controlplane
