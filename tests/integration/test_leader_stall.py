#!/usr/bin/env python3
"""A leader that could not listen does not declare its workers dead for it
(3 controllers with an election timeout of 6 s, 3 tenure-agents,
worker_lease_ms 1000, heartbeats every 200 ms):

- the leader is stopped (SIGSTOP) for 2.5 s, past every lease but short of
  an election, then continued: its ticks ran 2.5 s late, it counts that in
  tenure_raft_stalled_seconds_total and holds every lease that much longer,
  so no worker is declared dead and no shard moves (the agents' heartbeats
  waited in the leader's sockets, not in the agents); without the hold, the
  first tick after the stop found every worker silent past its lease;
- a worker that then really dies still loses its shards after its lease.
"""

import time

import fleet_harness as fh
import tenure_harness as th

LEASE_MS = 1000
HEARTBEAT_MS = 200
STOP_S = 2.5


class LeaderStallTest(fh.FleetTestCase):

    def test_stalled_leader_holds_leases_then_a_dead_worker_still_moves(self):
        f, before = self.start_fleet(shards=30, agents=3, lease_ms=LEASE_MS, heartbeat_ms=HEARTBEAT_MS,
                                     cluster_kw=dict(heartbeat_ms=100, election_ms=6000))
        c = f.cluster
        leader = c.leader()
        term = leader.metric("tenure_raft_term")
        stalled0 = leader.metric("tenure_raft_stalled_seconds_total", 0.0)

        leader.pause()
        # The fault itself: the leader stays stopped this long (not a wait for a state).
        time.sleep(STOP_S)
        leader.resume()

        stalled = th.wait_until(
            lambda: (lambda v: v if v - stalled0 >= STOP_S * 0.8 else None)(
                leader.metric("tenure_raft_stalled_seconds_total", 0.0)),
            10, "the leader counting its stall")
        fh.verbose("stalled %.2f s counted" % (stalled - stalled0))

        # Two leases and more after the resume: nobody declared dead, nothing moved.
        deadline = time.monotonic() + 3 * LEASE_MS / 1000
        while time.monotonic() < deadline:
            states = {w: s["state"] for w, s in f.workers().items()}
            self.assertEqual(set(states.values()), {"alive"}, "a worker was declared dead: %s" % states)
            time.sleep(0.1)  # poll interval of a check that something does not happen
        self.assertEqual(c.leader().id, leader.id, "the leadership changed: the test did not test the hold")
        self.assertEqual(leader.metric("tenure_raft_term"), term)
        _, after = f.shards()
        for sid, s in sorted(before.items()):
            self.assertEqual((after[sid]["worker"], after[sid]["epoch"]), (s["worker"], s["epoch"]), sid)
        self.assertNotIn("event=lease_expired", leader.log_text())

        # A worker that really dies is still declared dead after its lease.
        victim = f.agent("w2")
        lost = {sid for sid, s in before.items() if s["worker"] == victim.id}
        self.assertTrue(lost)
        t_kill = time.monotonic()
        victim.kill()
        th.wait_until(lambda: f.workers()[victim.id]["state"] == "dead", LEASE_MS / 1000 + 5, "w2 declared dead")
        elapsed = time.monotonic() - t_kill
        self.assertGreaterEqual(elapsed, LEASE_MS / 2000, "declared dead long before its lease could run out")
        _, moved = f.shards()
        for sid in lost:
            self.assertNotEqual(moved[sid]["worker"], victim.id, sid)


if __name__ == "__main__":
    th.main()
