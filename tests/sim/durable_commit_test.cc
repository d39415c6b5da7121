// Regression test for a core bug tenure-sim found (seeds 583, 1186 and 1875
// of the runs that skip persisting Readies needing no fsync, as the
// controller's driver does since bf9b302; checker commit-safety).
//
// A Ready that only moves the commit index need not be persisted. But
// advance() took its hard state as persisted all the same, so the next
// Ready that appended entries (a new membership change, say) carried no
// hard state, and the durable commit index stayed behind membership changes
// the member had applied. Restarted from disk, the member came back counting
// votes in a configuration two changes old: in seed 1186, n1 (restarted
// with a durable commit of 126 though it had applied the promotion of n8 at
// 127 and the removal of n3 at 131) could be elected in {n1, n2, n3} by the
// removed but still running n3, without index 136 that {n1, n2, n8} had
// committed. Apply-time membership changes are safe only if appending an
// entry implies that every earlier membership change is durably known to be
// committed (etcd-io/etcd#7625, invariant (Append)). Now a Ready persisting
// entries or a snapshot carries the hard state again whenever the durable
// commit index lags.
#include <gtest/gtest.h>

#include "tests/sim/manual_group.h"

namespace tenure::sim {
namespace {

LogIndex last_conf_change(const RaftLog& log) {
  LogIndex found;
  for (LogIndex i = log.first_index(); i <= log.committed(); i = i.next()) {
    if (log.entry(i).type == EntryType::kConfChange) found = i;
  }
  return found;
}

TEST(DurableCommit, EntriesArePersistedWithACommitIndexCoveringEarlierMembershipChanges) {
  ManualGroup g({"a", "b", "c"}, /*skip_unsynced=*/true);
  g.raft("a").campaign();
  g.process("a");
  g.stabilize();
  ASSERT_EQ(g.raft("a").role(), Role::kLeader);

  // First change: d joins as a learner (it never answers; that is fine).
  auto to_d = [](const Message& m) { return m.to.str() == "d"; };
  ASSERT_TRUE(g.raft("a").propose_conf_change({ConfChangeType::kAddLearner, NodeId("d"), ""}).ok());
  g.process("a");
  g.stabilize(to_d);
  g.tick("a", 1);  // the followers learn the commit from a heartbeat: a Ready needing no fsync
  g.stabilize(to_d);
  LogIndex first = last_conf_change(g.raft("a").log());
  ASSERT_GT(first, LogIndex(0));
  for (const char* id : {"a", "b", "c"}) {
    ASSERT_GE(g.raft(id).log().applied(), first) << id;
    ASSERT_TRUE(g.raft(id).conf().learners.count(NodeId("d"))) << id;
  }

  // Second change, appended by the leader and then the followers: whoever
  // persists it must persist a commit index covering the first.
  ASSERT_TRUE(g.raft("a").propose_conf_change({ConfChangeType::kRemoveNode, NodeId("d"), ""}).ok());
  g.process("a");
  g.stabilize(to_d);
  for (const char* id : {"a", "b", "c"}) {
    EXPECT_GE(g.storage(id).hard_state().commit, first) << id << " persisted the second change without the first's commit";
  }

  // Restarted from disk, a member still knows the first change committed.
  g.restart("b");
  EXPECT_GE(g.raft("b").log().committed(), first);
  EXPECT_TRUE(g.raft("b").conf().learners.count(NodeId("d")) || !g.raft("b").conf().contains(NodeId("d")));
  EXPECT_EQ(g.raft("b").conf().voters.size(), 3u);
  EXPECT_GE(g.raft("b").log().applied(), first);
}

}  // namespace
}  // namespace tenure::sim
