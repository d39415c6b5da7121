#!/usr/bin/env python3
"""The controller leader SIGKILLed amid reassignments, with 4 real agents
polled every 20 ms and the controllers' shard list read (linearizably) every
50 ms throughout:

- an agent is SIGKILLed, and the leader is SIGKILLed the moment it logs
  that the agent's lease expired (its failover command in flight);
- a drain moves shards one at a time (placement.max_concurrent_moves: 1),
  and the leader is SIGKILLed halfway through;
- an agent and the leader are SIGKILLed together: the new leader gives the
  agent a full lease from its own election before moving its shards;
- a drained agent is paused (its handoffs stay unconfirmed) and the leader
  is SIGKILLed while they are in flight: the new leader waits a full lease
  before granting them.

Either way: no shard ever has two owners at once (agents' timeline), epochs
only go up (agents' timeline, controllers' reads, every shard's history),
and in the end every shard is owned again, by a live agent that agrees with
the controllers.
"""

import os
import time

import fleet_harness as fh
import tenure_harness as th

LEASE_MS = 2000
HEARTBEAT_MS = 250


class FleetLeaderKillTest(fh.FleetTestCase):

    def wait_log_line(self, member, needle, offset, timeout):
        """Polls the member's log (every 5 ms, from byte `offset`) until a line
        contains `needle`; returns that line."""
        def check():
            with open(member.log_path, "rb") as f:
                f.seek(offset)
                for line in f.read().decode("utf-8", "replace").splitlines():
                    if needle in line:
                        return line
            return None
        return th.wait_until(check, timeout, "%r in %s's log" % (needle, member.id), interval=0.005)

    def check_end_state(self, f, poller, monitor, ids, t_kill):
        """Every shard owned by a running agent that agrees; no violation in
        any timeline; every history rises by one per change."""
        shards, grants = f.wait_settled(timeout=30)
        # The controllers' reads must span the kill, or they would prove little.
        th.wait_until(lambda: sum(1 for x in monitor.samples if x[0] > t_kill) >= 5, 20,
                      "the controller monitor reading after the leader kill")
        poller.catch_up().stop()
        monitor.stop()
        self.assertTrue(any(x[1] < t_kill for x in monitor.samples), "no controller read before the kill")
        self.assertEqual(sorted(shards), sorted(ids))
        self.assertNoViolations(poller.violations(), "agents' grant timeline")
        self.assertNoViolations(monitor.violations(), "controllers' reads")
        for sid in ids:
            h = f.history(sid)
            self.assertEqual(fh.history_violations(h), [], sid)
            self.assertEqual((h[-1]["epoch"], h[-1]["to"]), (shards[sid]["epoch"], shards[sid]["worker"]), sid)
        return shards, grants

    def test_leader_killed_while_failing_over_a_dead_agent(self):
        f, before = self.start_fleet(lease_ms=LEASE_MS, heartbeat_ms=HEARTBEAT_MS)
        ids = sorted(before)
        victim = f.agent("w2")
        lost = {sid: s["epoch"] for sid, s in before.items() if s["worker"] == victim.id}
        leader = f.cluster.leader()
        offset = os.path.getsize(leader.log_path)
        poller = fh.GrantPoller(f).start().catch_up()
        monitor = fh.ControllerMonitor(f.cluster).start().wait_reads()

        victim.kill()
        line = self.wait_log_line(leader, "event=lease_expired worker=%s" % victim.id, offset, LEASE_MS / 1000 + 10)
        t_kill = time.monotonic()
        leader.kill()  # its DeclareDead command may or may not have committed
        fh.verbose("leader %s killed after: %s" % (leader.id, line))
        new_leader = f.cluster.wait_leader(exclude=leader.id)
        self.assertNotEqual(new_leader.id, leader.id)

        shards, grants = self.check_end_state(f, poller, monitor, ids, t_kill)
        fh.verbose("failover decided again by the new leader: %s" % (
            "event=lease_expired worker=%s" % victim.id in new_leader.log_tail(10000)))
        # The dead agent's shards went to others exactly once (epoch + 1, reason
        # dead_worker), whichever leader decided it; nothing else moved.
        for sid, e in sorted(lost.items()):
            s = shards[sid]
            self.assertNotEqual(s["worker"], victim.id, sid)
            self.assertEqual(s["epoch"], e + 1, sid)
            last = f.history(sid)[-1]
            self.assertEqual((last["from"], last["reason"]), (victim.id, "dead_worker"), sid)
        for sid, s in sorted(before.items()):
            if sid not in lost:
                self.assertEqual((shards[sid]["worker"], shards[sid]["epoch"]), (s["worker"], s["epoch"]),
                                 "%s moved though its owner lived" % sid)
        self.assertEqual(sorted(grants), ["w1", "w3", "w4"])
        # The killed leader comes back and agrees.
        leader.start()
        th.wait_until(lambda: th.list_shards(leader)[1] == {k: v for k, v in f.shards()[1].items()}, 20,
                      "the restarted %s serving the same shards" % leader.id)

    def test_agent_and_leader_killed_together_new_leader_gives_a_full_lease(self):
        # The new leader knows nobody's last heartbeat: it must count every
        # worker's lease from its own election, so the dead agent's shards move
        # no earlier than a full lease after the old leader died.
        f, before = self.start_fleet(lease_ms=LEASE_MS, heartbeat_ms=HEARTBEAT_MS)
        ids = sorted(before)
        victim = f.agent("w1")
        lost = {sid: s["epoch"] for sid, s in before.items() if s["worker"] == victim.id}
        leader = f.cluster.leader()
        poller = fh.GrantPoller(f).start().catch_up()
        monitor = fh.ControllerMonitor(f.cluster).start().wait_reads()

        victim.kill()
        t_kill = time.monotonic()
        wall_kill_ms = time.time() * 1000
        leader.kill()
        survivors = [a for a in f.all() if a.id != victim.id]

        def moved():
            held = {}
            for a in survivors:
                held.update({sid: e for sid, e in a.grants(timeout=1).claims().items()})
            return all(held.get(sid) == e + 1 for sid, e in lost.items())
        th.wait_until(moved, LEASE_MS / 1000 + 15, "w1's shards claimed elsewhere", interval=0.02)
        elapsed = time.monotonic() - t_kill
        fh.verbose("agent and leader killed -> shards claimed elsewhere after %.3f s" % elapsed)
        self.assertGreaterEqual(elapsed, LEASE_MS / 1000, "moved before a full lease from the new leader's election")
        shards, _ = self.check_end_state(f, poller, monitor, ids, t_kill)
        for sid, e in sorted(lost.items()):
            last = f.history(sid)[-1]
            self.assertEqual((last["epoch"], last["from"], last["reason"]), (e + 1, victim.id, "dead_worker"), sid)
            # Decided (stamped with the deciding leader's wall clock) a full
            # lease after the old leader died, at the earliest.
            self.assertGreaterEqual(last["at_ms"], wall_kill_ms + LEASE_MS, sid)
            self.assertEqual(shards[sid]["epoch"], e + 1, sid)

    def test_leader_killed_halfway_through_a_drain(self):
        f, before = self.start_fleet(lease_ms=LEASE_MS, heartbeat_ms=HEARTBEAT_MS,
                                     controller_yaml="placement: {max_concurrent_moves: 1}\n")
        ids = sorted(before)
        drained = f.agent("w3")
        moving = {sid: s["epoch"] for sid, s in before.items() if s["worker"] == drained.id}
        self.assertGreaterEqual(len(moving), 9)
        poller = fh.GrantPoller(f).start().catch_up()
        monitor = fh.ControllerMonitor(f.cluster).start().wait_reads()

        leader = f.cluster.leader()
        r = f.drain(drained.id)
        self.assertStatus(r, 200)
        self.assertEqual(r.json["state"], "draining")
        # Halfway: some shards left, some still to go.
        half = len(moving) // 2
        th.wait_until(lambda: len(drained.grants(timeout=1).grants) <= len(moving) - half, 20,
                      "%s drained halfway" % drained.id, interval=0.02)
        t_kill = time.monotonic()
        leader.kill()
        left = len(drained.grants(timeout=2).grants)
        fh.verbose("leader %s killed with %d of %d shards still on %s" % (leader.id, left, len(moving), drained.id))
        self.assertGreater(left, 0, "the drain was over before the leader was killed")
        f.cluster.wait_leader(exclude=leader.id)

        th.wait_until(lambda: not drained.grants(timeout=1).grants, 30, "%s drained" % drained.id, interval=0.02)
        fh.verbose("drain finished %.2f s after the leader kill" % (time.monotonic() - t_kill))
        shards, grants = self.check_end_state(f, poller, monitor, ids, t_kill)
        for sid, e in sorted(moving.items()):
            s = shards[sid]
            self.assertNotEqual(s["worker"], drained.id, sid)
            self.assertEqual(s["epoch"], e + 1, "%s moved more than once" % sid)
            last = f.history(sid)[-1]
            self.assertEqual((last["from"], last["reason"]), (drained.id, "drain"), sid)
        w = f.workers()[drained.id]
        self.assertEqual((w["state"], w["shards"]), ("draining", 0))
        self.assertEqual(len(grants[drained.id].grants), 0)

    def test_unconfirmed_handoffs_across_a_leader_change(self):
        # The drained agent is paused, so its handoffs stay unconfirmed; the
        # leader is killed while they are in flight. The new leader must wait
        # a full lease from its own election before granting them (the old
        # owner might still be serving), then grant each at epoch + 1.
        f, before = self.start_fleet(lease_ms=LEASE_MS, heartbeat_ms=HEARTBEAT_MS)
        ids = sorted(before)
        drained = f.agent("w4")
        moving = {sid: s["epoch"] for sid, s in before.items() if s["worker"] == drained.id}
        poller = fh.GrantPoller(f).start().catch_up()
        monitor = fh.ControllerMonitor(f.cluster).start().wait_reads()
        leader = f.cluster.leader()

        drained.pause()
        self.assertStatus(f.drain(drained.id), 200)

        def in_flight():
            r = leader.get("/v1/rebalance", timeout=2)
            return {m["shard"] for m in r.json["moves"]} == set(moving) if r.status == 200 else False
        th.wait_until(in_flight, 10, "every handoff off %s in flight" % drained.id, interval=0.02)
        t_kill = time.monotonic()
        wall_kill_ms = time.time() * 1000
        leader.kill()
        fh.verbose("leader %s killed at %s" % (leader.id, time.strftime("%H:%M:%S", time.gmtime(wall_kill_ms / 1000))
                                                + ".%03d" % (wall_kill_ms % 1000)))
        f.cluster.wait_leader(exclude=leader.id)
        fh.verbose("new leader seen after %.3f s" % (time.monotonic() - t_kill))

        survivors = [a for a in f.all() if a.id != drained.id]

        def moved():
            held = {}
            for a in survivors:
                held.update(a.grants(timeout=1).claims())
            return all(held.get(sid) == e + 1 for sid, e in moving.items())
        th.wait_until(moved, LEASE_MS / 1000 + 15, "the paused agent's shards claimed elsewhere", interval=0.02)
        elapsed = time.monotonic() - t_kill
        fh.verbose("unconfirmed handoffs completed %.3f s after the leader kill" % elapsed)
        self.assertGreaterEqual(elapsed, LEASE_MS / 1000, "granted before a full lease from the new leader's election")
        for sid, e in sorted(moving.items()):
            last = f.history(sid)[-1]
            # Completed as a drain (waited out) or taken as the dead worker's,
            # whichever the new leader decided first; never early.
            self.assertEqual((last["epoch"], last["from"]), (e + 1, drained.id), sid)
            self.assertIn(last["reason"], ("drain", "dead_worker"), sid)
            self.assertGreaterEqual(last["at_ms"], wall_kill_ms + LEASE_MS, sid)

        # The old owner wakes up: it serves none of them (its lease lapsed
        # while it was paused), and learns it lost them.
        drained.resume()
        for sid, e in sorted(moving.items())[:3]:
            r = drained.put(sid, "k", e, "zombie")
            self.assertIn(r.status, (503, 421, 409), sid)
        shards, _ = self.check_end_state(f, poller, monitor, ids, t_kill)
        for sid in moving:
            self.assertGreater(shards[sid]["epoch"], moving[sid], sid)
        fh.verbose("reasons: %s; %s now %s" % (sorted({f.history(s)[-1]["reason"] for s in moving}), drained.id,
                                               f.workers()[drained.id]))


if __name__ == "__main__":
    th.main()
