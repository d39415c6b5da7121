#!/usr/bin/env python3
"""A minority cut off through the per-link proxies (or frozen with SIGSTOP):
it cannot commit, the majority keeps or elects a leader and goes on, and
after healing the minority catches up."""

import os
import time

import tenure_harness as th

VERBOSE = os.environ.get("TENURE_INTEG_VERBOSE") == "1"


class PartitionTest(th.ClusterTestCase):

    def assert_cannot_commit(self, member, sid):
        """A write sent to `member` directly fails with 503 (never 201), and a
        linearizable read there fails too rather than answering stale."""
        t0 = time.monotonic()
        r = member.post("/v1/shards", {"ids": [sid]}, timeout=20)
        if VERBOSE:
            print("write at cut-off %s: %r after %.2fs" % (member.id, r, time.monotonic() - t0))
        self.assertEqual(r.status, 503, "write at cut-off %s: %r" % (member.id, r))
        self.assertIn(r.json["error"], ("no_leader", "timeout"), r)
        self.assertIn("retry-after", r.headers)
        rr = member.get("/v1/shards", timeout=20)
        self.assertEqual(rr.status, 503, "linearizable read at cut-off %s: %r" % (member.id, rr))

    def assert_caught_up(self, c, member, expected_ids, absent_ids):
        leader = c.wait_leader()
        commit = leader.cluster_view()["commit_index"]
        th.wait_until(lambda: member.cluster_view()["applied_index"] >= commit, 20,
                      "%s applied up to %d after healing" % (member.id, commit))
        _, stale = th.list_shards(member, "stale")
        self.assertEqual(sorted(set(expected_ids) - set(stale)), [], "missing at %s after healing" % member.id)
        for m in c.all():
            _, lin = th.list_shards(m)
            self.assertEqual(sorted(set(absent_ids) & set(lin)), [],
                             "a write refused while cut off was applied (seen at %s)" % m.id)

    def test_isolated_follower_cannot_commit_majority_goes_on(self):
        c = self.make_cluster(n=3)
        leader = c.start()
        th.create_shards(leader, ["before"])
        victim = c.followers(leader)[0]
        others = [m for m in c.all() if m.id != victim.id]
        c.isolate(victim.id, "refuse")

        self.assert_cannot_commit(victim, "from-isolated")
        # An operator sees it: it no longer knows a leader and is not ready.
        th.wait_until(lambda: victim.get("/readyz").status == 503, 10, "%s /readyz 503 while cut off" % victim.id)
        self.assertIsNone(victim.cluster_view()["leader_id"])
        # The majority has a leader and goes on, through both of its members.
        majority_leader = c.wait_leader(others)
        during = ["during-%d" % i for i in range(10)]
        for i, sid in enumerate(during):
            th.create_shards(others[i % 2], [sid])
        self.assertLess(victim.cluster_view()["revision"], majority_leader.cluster_view()["revision"])

        c.heal_all()
        self.assert_caught_up(c, victim, ["before"] + during, ["from-isolated"])
        th.wait_until(lambda: victim.get("/readyz").status == 200, 10, "%s ready again" % victim.id)
        th.create_shards(victim, ["after-heal"])

    def test_isolated_leader_cannot_commit_majority_elects_new_leader(self):
        c = self.make_cluster(n=3)
        old = c.start()
        th.create_shards(old, ["before"])
        majority = c.followers(old)
        term = old.cluster_view()["term"]
        # Blackhole: connections hang instead of failing (the senders time out).
        c.isolate(old.id, "blackhole")

        new = c.wait_leader(majority, exclude=old.id)
        self.assertGreater(new.cluster_view()["term"], term)
        during = ["during-%d" % i for i in range(10)]
        for i, sid in enumerate(during):
            th.create_shards(majority[i % 2], [sid])
        # The old leader, alone, cannot commit what it is asked directly.
        self.assert_cannot_commit(old, "from-old-leader")

        c.heal_all()
        self.assert_caught_up(c, old, ["before"] + during, ["from-old-leader"])
        self.assertNotEqual(old.cluster_view()["leader_id"], None)
        th.create_shards(old, ["after-heal"])

    def test_one_way_cut_from_leader(self):
        """Only leader -> F is cut: F hears nothing from the leader but can
        still reach it. Writes keep committing (leader + the other follower)."""
        c = self.make_cluster(n=3)
        leader = c.start()
        f, other = c.followers(leader)
        c.cut(leader.id, f.id, "refuse")
        ids = ["oneway-%d" % i for i in range(10)]
        for i, sid in enumerate(ids):
            th.create_shards(leader if i % 2 else other, [sid])
        c.heal(leader.id, f.id)
        self.assert_caught_up(c, f, ids, [])

    def test_paused_leader_sigstop(self):
        c = self.make_cluster(n=3)
        old = c.start()
        th.create_shards(old, ["before"])
        old.pause()
        majority = [m for m in c.all() if m.id != old.id]
        new = c.wait_leader(majority, exclude=old.id)
        during = ["during-%d" % i for i in range(10)]
        for sid in during:
            th.create_shards(new, [sid])
        old.resume()
        # It steps down on hearing the higher term and catches up.
        th.wait_until(lambda: old.cluster_view()["leader_id"] not in (None, old.id), 20,
                      "%s follows the new leader after SIGCONT" % old.id)
        self.assert_caught_up(c, old, ["before"] + during, [])


if __name__ == "__main__":
    th.main()
