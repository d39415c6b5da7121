#!/usr/bin/env python3
"""Issue 8's scale proof for failover, with real processes: 1,000,000
shards with ids of about 100 characters on 20 workers (3 controllers, 20
tenure-agents). The busiest worker is killed (SIGKILL); every one of its
shards is granted to another worker, at epoch + 1, within its lease + 2 s,
on every member, with no leader change, no refused peer request, and every
other worker keeps its lease throughout. Then half the fleet (9 more
workers, ~470,000 shards) is killed at once: the same leader grants all
their shards to the other half, on every member, with no leader change.

Contract default Raft timing (heartbeat 100 ms, election timeout 1000 ms).
The agents run at nice 10: in production they are on the data plane's
machines; here twenty of them share two cores with the three controllers,
and at the controllers' priority they took up to 0.9 of the cores during
the failover (CI saw a leader change; docs/performance.md, "A busy leader
keeps its heartbeats").
TENURE_SCALE_SHARDS sets a smaller count for a quick try."""

import os
import time

import fleet_harness as fh
import scale_harness as sh
import tenure_harness as th

SHARDS = int(os.environ.get("TENURE_SCALE_SHARDS", "1000000"))
WORKERS = 20
LEASE_MS = 5000
REQUEST = 100000  # the documented maximum count of one create


class ScaleFailoverTest(fh.FleetTestCase):

    def test_kill_busiest_of_20_workers_with_1m_long_ids(self):
        f = self.make_fleet(agents=WORKERS, lease_ms=LEASE_MS, heartbeat_ms=500, agent_nice=10,
                            controller_yaml="placement: {max_concurrent_moves: 1000000}\n",
                            cluster_kw=dict(heartbeat_ms=100, election_ms=1000))
        c = f.cluster
        leader = c.leader()
        changes0 = sh.leader_changes(c)

        t0 = time.monotonic()
        for first in range(0, SHARDS, REQUEST):
            prefix = "%s%02d-" % (sh.LONG_PREFIX[:-4], first // REQUEST)
            r = f.ctl("POST", "/v1/shards", {"count": min(REQUEST, SHARDS - first), "prefix": prefix},
                      timeout=120, request_timeout=60)
            self.assertStatus(r, 201)
        sh.verbose("created %d shards with ~100-char ids in %.1f s" % (SHARDS, time.monotonic() - t0))
        share = SHARDS // WORKERS
        t_place = sh.wait_counts(f, {"w%d" % i: share for i in range(1, WORKERS + 1)}, 300,
                                 "1,000,000 shards placed 50,000 a worker on every member")
        sh.wait_agents_hold(f, {"w%d" % i: share for i in range(1, WORKERS + 1)}, 120,
                            "each agent holding its 50,000 grants")
        sh.verbose("placed on every member and held by every agent %.1f s after the last create; "
                   "leader RSS %.0f MiB" % (t_place, sh.rss_mib(leader)))

        victim = f.agent("w1")
        before = victim.grants(timeout=30).grants
        self.assertEqual(len(before), share)
        survivors = ["w%d" % i for i in range(2, WORKERS + 1)]

        t_kill = time.monotonic()
        victim.kill()
        # Every member shows w1 dead with no shard, and the survivors hold
        # all 1,000,000 between them, within the lease + 2 s of the kill.
        deadline = LEASE_MS / 1000.0 + 2.0

        def failed_over():
            for m in c.running():
                counts = sh.worker_counts(m)
                if counts is None:
                    return None
                for w in survivors:
                    self.assertEqual(counts[w][0], "alive", "%s lost its lease at %s: %r" % (w, m.id, counts[w]))
                if counts["w1"] != ("dead", 0):
                    return None
                if sum(counts[w][1] for w in survivors) != SHARDS:
                    return None
            return True
        th.wait_until(failed_over, deadline + 30, "w1's shards granted elsewhere on every member", interval=0.05)
        t_over = time.monotonic() - t_kill
        sh.verbose("kill -> %d shards granted elsewhere on every member: %.2f s (lease %.1f s)" %
                   (share, t_over, LEASE_MS / 1000.0))
        self.assertLessEqual(t_over, deadline, "failover took longer than the lease + 2 s")

        # Each shard moved once, at epoch + 1, for the reason "dead_worker".
        for sid in sorted(before)[:: share // 100]:
            last = f.history(sid)[-1]
            self.assertEqual((last["from"], last["epoch"], last["reason"]),
                             ("w1", before[sid] + 1, "dead_worker"), sid)
            self.assertIn(last["to"], survivors, sid)

        sh.wait_agents_hold(f, {w: (lambda n: n >= share) for w in survivors}, 60,
                            "every surviving agent holding its old grants and more")
        for m in c.running():
            counts = sh.worker_counts(m)
            for w in survivors:
                self.assertEqual(counts[w][0], "alive", "%s at %s: %r" % (w, m.id, counts[w]))
                self.assertGreaterEqual(counts[w][1], share, "%s lost shards at %s" % (w, m.id))
        sh.assert_steady(self, c, leader, changes0)

        # Then half the fleet dies at once: 9 more workers, ~470,000 shards.
        # Planned in one go this held the leader's strand past the election
        # timeout, and each new leader was deposed planning it again (a
        # livelock); in slices of 50,000 the same leader moves them all.
        dying = ["w%d" % i for i in range(2, WORKERS // 2 + 1)]
        rest = ["w%d" % i for i in range(WORKERS // 2 + 1, WORKERS + 1)]
        t_kill = time.monotonic()
        for w in dying:
            f.agent(w).kill()

        def half_failed_over():
            for m in c.running():
                counts = sh.worker_counts(m)
                if counts is None:
                    return None
                for w in rest:
                    self.assertEqual(counts[w][0], "alive", "%s lost its lease at %s: %r" % (w, m.id, counts[w]))
                if any(counts[w] != ("dead", 0) for w in dying):
                    return None
                if sum(counts[w][1] for w in rest) != SHARDS:
                    return None
            return True
        th.wait_until(half_failed_over, LEASE_MS / 1000.0 + 120, "half the fleet's shards granted to the other half "
                      "on every member", interval=0.2)
        sh.verbose("kill of %d workers -> their shards granted elsewhere on every member: %.1f s" %
                   (len(dying), time.monotonic() - t_kill))
        sh.assert_steady(self, c, leader, changes0)


if __name__ == "__main__":
    th.main()
