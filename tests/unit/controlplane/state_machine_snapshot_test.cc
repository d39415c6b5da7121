// The snapshot decoder is a trust boundary (issue 8): a leader's snapshot is
// restored before it is made durable. Inputs that decode structurally but
// would leave the state inconsistent are refused, and a refused snapshot
// changes nothing.
#include <gtest/gtest.h>

#include "common/codec.h"
#include "controlplane/state_machine.h"

namespace tenure::controlplane {
namespace {

struct ShardRow {
  std::string id;
  uint8_t state = 1;
  uint8_t reason = 0;
};
struct EventRow {
  uint64_t revision;
  uint8_t type = 0;
};

std::string snapshot(const std::vector<ShardRow>& shards, const std::vector<EventRow>& events, uint64_t revision = 10,
                     uint8_t worker_state = 0, uint64_t compacted = 0) {
  Writer w;
  w.u8(1);
  w.varint(revision);
  w.varint(shards.size());
  for (const auto& s : shards) {
    w.str(s.id);
    w.str("w1");
    w.varint(1);
    w.u8(s.state);
    w.str("");
    w.varint(0);
    w.u8(s.reason);
    w.varint(0);
  }
  w.varint(0);  // deleted epochs
  w.varint(1);  // one worker
  w.str("w1");
  w.str("10.0.0.1:1");
  w.str("z");
  w.f64(1.0);
  w.u8(worker_state);
  w.varint(0);
  w.u8(0);
  w.varint(compacted);
  w.varint(events.size());
  for (const auto& e : events) {
    w.varint(e.revision);
    w.u8(e.type);
    w.str("s-1");
    w.str("w1");
    w.varint(1);
    w.str("");
    w.varint(0);
  }
  w.varint(0);  // request results
  w.varint(0);  // started members
  return w.take();
}

TEST(StateMachineSnapshot, AConsistentSnapshotRestores) {
  StateMachine sm;
  ASSERT_TRUE(sm.restore(snapshot({{"s-1"}, {"s-2"}}, {{5}, {6}})));
  EXPECT_EQ(sm.count(ShardState::kActive), 2u);
  EXPECT_EQ(sm.shards_of(WorkerId("w1")).size(), 2u);
  StateMachine again;
  ASSERT_TRUE(again.restore(sm.snapshot()));
  EXPECT_EQ(again.snapshot(), sm.snapshot());
}

TEST(StateMachineSnapshot, InconsistentSnapshotsAreRefusedAndChangeNothing) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"the same shard twice (counts would disagree with the map)", snapshot({{"s-1"}, {"s-1"}}, {})},
      {"a shard state out of range", snapshot({{"s-1", 9}}, {})},
      {"a change reason out of range", snapshot({{"s-1", 1, 200}}, {})},
      {"a worker state out of range", snapshot({{"s-1"}}, {}, 10, 7)},
      {"events out of order (watches binary-search them)", snapshot({{"s-1"}}, {{6}, {5}})},
      {"two events at one revision", snapshot({{"s-1"}}, {{5}, {5}})},
      {"an event past the state's revision", snapshot({{"s-1"}}, {{11}})},
      {"an event type out of range", snapshot({{"s-1"}}, {{5, 9}})},
      {"an event at or before the compacted revision", snapshot({{"s-1"}}, {{3}}, 10, 0, 3)},
      {"a compacted revision past the state's", snapshot({{"s-1"}}, {}, 10, 0, 11)},
  };
  StateMachine sm;
  ASSERT_TRUE(sm.restore(snapshot({{"keep"}}, {{1}})));
  std::string before = sm.snapshot();
  for (const auto& [what, bytes] : bad) {
    EXPECT_FALSE(sm.restore(bytes)) << what;
    EXPECT_EQ(sm.snapshot(), before) << what;
  }
}

}  // namespace
}  // namespace tenure::controlplane
