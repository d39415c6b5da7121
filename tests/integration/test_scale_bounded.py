#!/usr/bin/env python3
"""Large operations commit, as bounded commands (issue 8), with real
processes (3 controllers, 2 tenure-agents):

- POST /v1/shards {"count": 100000, "prefix": <95 characters>} (the
  documented maximum count, ids of about 100 characters: some 10 MB of ids,
  one 1.2 MB entry that wedged the group before) answers 201 with every id,
  and every member applies it;
- the 100,000 shards are placed, 50,000 on each worker;
- a drain of a worker holding 50,000 of them moves every one to the other
  worker (graceful handoffs, epoch + 1), on every member;
- throughout, no peer request is refused and the leader never changes.
"""

import time

import fleet_harness as fh
import scale_harness as sh
import tenure_harness as th

N = 100000


class ScaleBoundedTest(fh.FleetTestCase):

    def test_create_100k_long_ids_then_drain_50k(self):
        f = self.make_fleet(agents=2, lease_ms=3000, heartbeat_ms=250,
                            controller_yaml="placement: {max_concurrent_moves: 100000}\n",
                            cluster_kw=dict(heartbeat_ms=100, election_ms=1000))
        c = f.cluster
        leader = c.leader()
        changes0 = sh.leader_changes(c)

        t0 = time.monotonic()
        r = f.ctl("POST", "/v1/shards", {"count": N, "prefix": sh.LONG_PREFIX}, timeout=120, request_timeout=60)
        t_create = time.monotonic() - t0
        self.assertStatus(r, 201)
        created = r.json["created"]
        self.assertEqual(len(created), N)
        self.assertEqual(created[0], sh.LONG_PREFIX + "0")
        self.assertEqual(max(len(x) for x in created), 100)
        sh.verbose("create %d ids of ~100 chars in one request: %.2f s (%.0f shards/s)" % (N, t_create, N / t_create))

        t_place = sh.wait_counts(f, {"w1": N // 2, "w2": N // 2}, 120, "100,000 shards placed 50,000 a worker")
        sh.wait_agents_hold(f, {"w1": N // 2, "w2": N // 2}, 60, "each agent holding its 50,000 grants")
        sh.verbose("placement of %d shards on 2 workers, on every member: %.2f s" % (N, t_place))
        before_drain = f.agent("w1").grants(timeout=10).grants

        t1 = time.monotonic()
        self.assertStatus(f.drain("w1"), 200)
        t_drain = sh.wait_counts(f, {"w1": 0, "w2": N}, 240, "w1 drained of its 50,000 shards on every member")
        sh.wait_agents_hold(f, {"w1": 0, "w2": N}, 60, "w2 holding every grant, w1 none")
        sh.verbose("drain of %d shards, on every member: %.2f s" % (N // 2, time.monotonic() - t1))
        self.assertLess(t_drain, 240)

        # Each drained shard moved once, at epoch + 1, with the reason "drain".
        held = f.agent("w2").grants(timeout=10).grants
        for sid in sorted(before_drain)[:: N // 200]:
            self.assertEqual(held[sid], before_drain[sid] + 1, sid)
            last = f.history(sid)[-1]
            self.assertEqual((last["from"], last["to"], last["epoch"], last["reason"]),
                             ("w1", "w2", before_drain[sid] + 1, "drain"), sid)

        sh.assert_steady(self, c, leader, changes0)


if __name__ == "__main__":
    th.main()
