#!/usr/bin/env python3
"""A member's own view must not go back across a restart (issue 13: "the
revision never goes back on any member, across restarts"): after SIGKILL
and restart with the same data_dir, its stale reads answer from a state at
least as new as the one it answered from before, and its GET /v1/cluster
says caught_up false until it does.

Found by the chaos suite (docs/testing-chaos.md, "Findings"): the commit
index is made durable only with a Ready that persists something else, so a
restarted member replayed its log to an older commit index than it had
applied, and served that older state (term 0 and revision 0 before it had
recovered its log). A restarted member now refuses stale reads (503
recovering) and reports caught_up false until a linearizable read it
started after its start has completed (member/raft_node.h, caught_up())."""

import time

import tenure_harness as th


class RestartViewsTest(th.ClusterTestCase):

    def test_view_does_not_go_back_across_a_restart(self):
        c = self.make_cluster(n=3)
        leader = c.start()
        th.create_shards(leader, ["r%d" % i for i in range(300)])
        follower = c.followers(leader)[0]
        refused = 0
        for attempt in range(5):
            th.create_shards(leader, ["a%d-%d" % (attempt, i) for i in range(50)])
            th.wait_until(lambda: follower.cluster_view()["caught_up"] and
                          follower.cluster_view()["revision"] == leader.cluster_view()["revision"], 10,
                          "the follower caught up and applied every write")
            before = follower.cluster_view()
            follower.kill()
            follower.start()
            # Every stale read from the first answer until the member says
            # it caught up, and the first after: none may be older, and
            # /v1/cluster may report an older revision only with caught_up
            # false.
            deadline = time.monotonic() + 10 * th.SLOW
            caught_up = False
            while time.monotonic() < deadline and not caught_up:
                v = follower.cluster_view()
                r = follower.get("/v1/shards?consistency=stale&limit=1", timeout=5)
                if r.status == 503:
                    self.assertEqual(r.json["error"], "recovering", r.json)
                    refused += 1
                else:
                    self.assertEqual(r.status, 200, r.json)
                    self.assertGreaterEqual(r.json["revision"], before["revision"],
                                            "restart %d: a stale read went back" % (attempt + 1))
                if v["caught_up"]:
                    self.assertGreaterEqual(v["revision"], before["revision"], v)
                    self.assertGreaterEqual(v["term"], before["term"], v)
                    caught_up = r.status == 200
            self.assertTrue(caught_up, "restart %d: the member never caught up" % (attempt + 1))
        # The window exists: without the gate these reads were answered from
        # the older state (a check that the test reaches it, not a timing).
        print("stale reads refused while recovering: %d over 5 restarts" % refused)


if __name__ == "__main__":
    th.main()
