// The leader's per-follower flow control (etcd-io/raft tracker/progress.go):
// probe, replicate and snapshot states, the in-flight window, and how
// acknowledgements and rejections move next and match.
#include "consensus/progress.h"

#include <gtest/gtest.h>

namespace tenure::consensus {
namespace {

Progress at(ProgressState state, uint64_t match, uint64_t next, size_t window = 4) {
  Progress p(window);
  p.match = LogIndex(match);
  p.next = LogIndex(next);
  p.state = state;
  return p;
}

TEST(Inflights, WindowIsBoundedAndFreedInOrder) {
  Inflights in(3);
  EXPECT_FALSE(in.full());
  in.add(LogIndex(5));
  in.add(LogIndex(7));
  EXPECT_FALSE(in.full());
  in.add(LogIndex(9));
  EXPECT_TRUE(in.full());
  EXPECT_EQ(in.count(), 3u);
  in.free_le(LogIndex(6));  // frees 5 only
  EXPECT_EQ(in.count(), 2u);
  EXPECT_FALSE(in.full());
  in.free_le(LogIndex(7));
  EXPECT_EQ(in.count(), 1u);
  in.free_le(LogIndex(3));  // stale ack frees nothing
  EXPECT_EQ(in.count(), 1u);
  in.free_first();
  EXPECT_EQ(in.count(), 0u);
  in.free_first();  // harmless when empty
  in.add(LogIndex(10));
  in.reset();
  EXPECT_EQ(in.count(), 0u);
}

TEST(Progress, ProbeSendsOneAppendAtATime) {
  Progress p = at(ProgressState::kProbe, 0, 5);
  EXPECT_FALSE(p.paused());
  p.sent_append(true, LogIndex(8));
  EXPECT_TRUE(p.paused());
  // Probing does not move next optimistically: the answer decides.
  EXPECT_EQ(p.next, LogIndex(5));
  EXPECT_EQ(p.inflights.count(), 0u);
  // An empty probe pauses too.
  Progress q = at(ProgressState::kProbe, 0, 5);
  q.sent_append(false, LogIndex(4));
  EXPECT_TRUE(q.paused());
}

TEST(Progress, ReplicatePipelinesUpToTheWindow) {
  Progress p = at(ProgressState::kReplicate, 4, 5, /*window=*/2);
  p.sent_append(true, LogIndex(6));
  EXPECT_EQ(p.next, LogIndex(7));
  EXPECT_FALSE(p.paused());
  p.sent_append(true, LogIndex(9));
  EXPECT_EQ(p.next, LogIndex(10));
  EXPECT_TRUE(p.paused());  // window of 2 is full
  // An empty append (commit update) takes no slot and does not move next.
  p.sent_append(false, LogIndex(9));
  EXPECT_EQ(p.inflights.count(), 2u);
  EXPECT_EQ(p.next, LogIndex(10));
  p.inflights.free_le(LogIndex(6));
  EXPECT_FALSE(p.paused());
}

TEST(Progress, SnapshotStateIsAlwaysPaused) {
  Progress p = at(ProgressState::kReplicate, 4, 9);
  p.inflights.add(LogIndex(8));
  p.become_snapshot(LogIndex(20));
  EXPECT_EQ(p.state, ProgressState::kSnapshot);
  EXPECT_EQ(p.pending_snapshot, LogIndex(20));
  EXPECT_EQ(p.inflights.count(), 0u);
  EXPECT_TRUE(p.paused());
}

TEST(Progress, BecomeProbeRestartsAfterMatch) {
  Progress p = at(ProgressState::kReplicate, 4, 12);
  p.inflights.add(LogIndex(11));
  p.become_probe();
  EXPECT_EQ(p.state, ProgressState::kProbe);
  EXPECT_EQ(p.next, LogIndex(5));
  EXPECT_EQ(p.inflights.count(), 0u);
  EXPECT_FALSE(p.probe_sent);
}

TEST(Progress, BecomeProbeFromSnapshotResumesAfterTheSnapshot) {
  Progress p = at(ProgressState::kProbe, 4, 5);
  p.become_snapshot(LogIndex(20));
  p.become_probe();
  EXPECT_EQ(p.next, LogIndex(21));
  EXPECT_EQ(p.pending_snapshot, LogIndex(0));
  // A snapshot reported as not delivered (pending cleared) resumes after match.
  Progress q = at(ProgressState::kProbe, 4, 5);
  q.become_snapshot(LogIndex(20));
  q.pending_snapshot = LogIndex(0);
  q.become_probe();
  EXPECT_EQ(q.next, LogIndex(5));
}

TEST(Progress, BecomeReplicateStartsAfterMatch) {
  Progress p = at(ProgressState::kProbe, 7, 3);
  p.probe_sent = true;
  p.become_replicate();
  EXPECT_EQ(p.state, ProgressState::kReplicate);
  EXPECT_EQ(p.next, LogIndex(8));
  EXPECT_FALSE(p.paused());
}

TEST(Progress, MaybeUpdateMovesMatchForwardOnly) {
  Progress p = at(ProgressState::kProbe, 3, 4);
  p.probe_sent = true;
  EXPECT_TRUE(p.maybe_update(LogIndex(6)));
  EXPECT_EQ(p.match, LogIndex(6));
  EXPECT_EQ(p.next, LogIndex(7));
  EXPECT_FALSE(p.probe_sent);  // an acknowledgement unpauses the probe
  // A stale (reordered) acknowledgement moves nothing back.
  EXPECT_FALSE(p.maybe_update(LogIndex(5)));
  EXPECT_EQ(p.match, LogIndex(6));
  EXPECT_EQ(p.next, LogIndex(7));
  // next never goes back even when acks trail the pipeline.
  Progress r = at(ProgressState::kReplicate, 3, 10);
  EXPECT_TRUE(r.maybe_update(LogIndex(5)));
  EXPECT_EQ(r.next, LogIndex(10));
}

TEST(Progress, MaybeDecreaseToInReplicateIgnoresStaleRejections) {
  Progress p = at(ProgressState::kReplicate, 5, 10);
  // Rejection of an append at or below match: a late duplicate, ignored.
  EXPECT_FALSE(p.maybe_decrease_to(LogIndex(5), LogIndex(2)));
  EXPECT_EQ(p.next, LogIndex(10));
  EXPECT_FALSE(p.maybe_decrease_to(LogIndex(3), LogIndex(2)));
  // A real rejection falls back to just after match.
  EXPECT_TRUE(p.maybe_decrease_to(LogIndex(8), LogIndex(7)));
  EXPECT_EQ(p.next, LogIndex(6));
}

TEST(Progress, MaybeDecreaseToInProbeUsesHintButNotBelowMatch) {
  // Only the answer to the last probe (prev = next-1) counts.
  Progress p = at(ProgressState::kProbe, 0, 10);
  p.probe_sent = true;
  EXPECT_FALSE(p.maybe_decrease_to(LogIndex(5), LogIndex(2)));
  EXPECT_EQ(p.next, LogIndex(10));
  EXPECT_TRUE(p.probe_sent);
  // The follower's hint jumps over a whole run of entries at once.
  EXPECT_TRUE(p.maybe_decrease_to(LogIndex(9), LogIndex(3)));
  EXPECT_EQ(p.next, LogIndex(4));
  EXPECT_FALSE(p.probe_sent);
  // A hint beyond the rejected index cannot move next forward.
  Progress q = at(ProgressState::kProbe, 0, 10);
  EXPECT_TRUE(q.maybe_decrease_to(LogIndex(9), LogIndex(50)));
  EXPECT_EQ(q.next, LogIndex(9));
  // Never below what is known to match.
  Progress r = at(ProgressState::kProbe, 6, 10);
  EXPECT_TRUE(r.maybe_decrease_to(LogIndex(9), LogIndex(0)));
  EXPECT_EQ(r.next, LogIndex(7));
  // Never below index 1.
  Progress s = at(ProgressState::kProbe, 0, 1);
  EXPECT_TRUE(s.maybe_decrease_to(LogIndex(0), LogIndex(0)));
  EXPECT_EQ(s.next, LogIndex(1));
}

TEST(Progress, StateNames) {
  EXPECT_STREQ(to_string(ProgressState::kProbe), "probe");
  EXPECT_STREQ(to_string(ProgressState::kReplicate), "replicate");
  EXPECT_STREQ(to_string(ProgressState::kSnapshot), "snapshot");
}

}  // namespace
}  // namespace tenure::consensus
