#!/usr/bin/env python3
"""Agent failures with real processes (3 controllers, 4 tenure-agents,
worker_lease_ms 2000, heartbeats every 250 ms):

- SIGKILL of an agent: its shards are active elsewhere at epoch + 1 within
  the lease + 1 s of the kill, the other shards keep owner and epoch, the
  history says dead_worker;
- SIGSTOP of an agent past its lease, then SIGCONT: its fenced writes are
  refused at once, it learns it lost the shards, the new owners take writes
  at epoch + 1;
- a write with a stale epoch to the new owner: 409 stale_epoch with
  current_epoch.
"""

import time

import fleet_harness as fh
import tenure_harness as th

LEASE_MS = 2000
HEARTBEAT_MS = 250


class FleetFailureTest(fh.FleetTestCase):

    def wait_moved(self, f, lost, victim, timeout):
        """Polls the surviving agents every 20 ms until each shard of `lost`
        ({shard: epoch}) is claimed by another agent at epoch + 1; returns
        {shard: new owner}."""
        survivors = [a for a in f.all() if a.id != victim.id]

        def check():
            held = {}
            for a in survivors:
                for sid, e in a.grants(timeout=1).claims().items():
                    held[sid] = (a.id, e)
            if all(held.get(sid, (None, None))[1] == e + 1 for sid, e in lost.items()):
                return {sid: held[sid][0] for sid in lost}
            return None
        return th.wait_until(check, timeout, "%s's shards claimed elsewhere at epoch + 1" % victim.id, interval=0.02)

    def test_sigkill_agent_shards_move_within_lease(self):
        f, before = self.start_fleet(lease_ms=LEASE_MS, heartbeat_ms=HEARTBEAT_MS)
        victim = f.agent("w2")
        lost = {sid: s["epoch"] for sid, s in before.items() if s["worker"] == victim.id}
        self.assertGreaterEqual(len(lost), 9, "w2 should hold about a quarter of 40 shards")
        poller = fh.GrantPoller(f).start().catch_up()

        t_kill = time.monotonic()
        victim.kill()
        new_owner = self.wait_moved(f, lost, victim, timeout=LEASE_MS / 1000 + 10)
        elapsed = time.monotonic() - t_kill
        fh.verbose("SIGKILL -> %d shards claimed elsewhere at epoch+1: %.3f s (lease %.1f s)" %
                   (len(lost), elapsed, LEASE_MS / 1000))
        # Within the lease + 1 s of the kill, and not before the lease could
        # have run out (the last heartbeat arrived at most an interval or two
        # before the kill; half the lease is a bound no healthy run gets near).
        self.assertLessEqual(elapsed, LEASE_MS / 1000 + 1.0 * th.SLOW, "failover too slow")
        self.assertGreaterEqual(elapsed, LEASE_MS / 2000, "shards moved long before the lease ran out")

        after, grants = f.wait_agreement(timeout=10)
        poller.catch_up().stop()
        for sid, e in sorted(lost.items()):
            s = after[sid]
            self.assertEqual((s["worker"], s["epoch"], s["state"]), (new_owner[sid], e + 1, "active"), sid)
            self.assertNotEqual(s["worker"], victim.id)
            last = f.history(sid)[-1]
            self.assertEqual((last["epoch"], last["from"], last["to"], last["reason"]),
                             (e + 1, victim.id, new_owner[sid], "dead_worker"), sid)
        # Every other shard untouched: same owner, same epoch.
        for sid, s in sorted(before.items()):
            if sid not in lost:
                self.assertEqual((after[sid]["worker"], after[sid]["epoch"]), (s["worker"], s["epoch"]),
                                 "%s moved though its owner lived" % sid)
        # Still balanced over the three survivors (13, 13, 14).
        counts = sorted(len(g.grants) for g in grants.values())
        self.assertEqual(counts, [13, 13, 14])
        self.assertEqual(f.workers()[victim.id]["state"], "dead")
        self.assertNoViolations(poller.violations(), "grant timeline")
        # A write fenced with the dead owner's epoch is refused by the new owner.
        sid = sorted(lost)[0]
        r = f.agent(new_owner[sid]).put(sid, "k", lost[sid], "from the dead")
        self.assertStatus(r, 409, "stale_epoch")
        self.assertEqual(r.json["current_epoch"], lost[sid] + 1)

    def test_sigstop_past_lease_then_sigcont_is_fenced_and_learns(self):
        f, before = self.start_fleet(lease_ms=LEASE_MS, heartbeat_ms=HEARTBEAT_MS)
        victim = f.agent("w3")
        lost = {sid: s["epoch"] for sid, s in before.items() if s["worker"] == victim.id}
        self.assertGreaterEqual(len(lost), 9)
        # It accepts writes while it holds them.
        for sid, e in lost.items():
            self.assertStatus(victim.put(sid, "k", e, "old-owner"), 200)
        poller = fh.GrantPoller(f).start().catch_up()

        victim.pause()
        new_owner = self.wait_moved(f, lost, victim, timeout=LEASE_MS / 1000 + 10)
        # The new owners accept writes at epoch + 1 (before the old owner
        # wakes up: afterwards a rebalance may hand shards back to it).
        for sid, e in sorted(lost.items()):
            r = f.agent(new_owner[sid]).put(sid, "k", e + 1, "new-owner")
            self.assertStatus(r, 200)
        self.assertEqual(f.workers()[victim.id]["state"], "dead")

        victim.resume()
        # Right after SIGCONT, every write fenced with its old epochs is
        # refused: 503 lease_expired while it still believes it holds them,
        # 421/409 once it has heard it lost them. Never 200.
        codes = set()
        for sid, e in sorted(lost.items()):
            r = victim.put(sid, "k", e, "zombie")
            self.assertIn((r.status, r.json.get("error")),
                          {(503, "lease_expired"), (421, "not_owner"), (409, "stale_epoch")}, sid)
            codes.add(r.json["error"])
            r = victim.fence(sid, e)
            self.assertIn(r.status, (503, 421, 409), sid)
        fh.verbose("writes at the old epoch right after SIGCONT: %s" % sorted(codes))

        # It learns: lease renewed after registering again, and none of the
        # lost shards held at the old epoch (a rebalance may give some back,
        # at a newer epoch).
        def learned():
            g = victim.grants(timeout=1)
            if not g.lease_valid:
                return None
            stale = {sid: e for sid, e in g.grants.items() if sid in lost and e <= lost[sid] + 1}
            return g if not stale else None
        th.wait_until(learned, 10, "%s re-registered, its lease renewed, its lost shards gone" % victim.id)
        self.assertIn("event=registration_lost", victim.log_text())
        for sid, e in sorted(lost.items()):
            r = victim.put(sid, "k", e, "zombie")
            self.assertIn((r.status, r.json.get("error")), {(421, "not_owner"), (409, "stale_epoch")}, sid)
            # The zombie writes never landed; the new owner's did.
            got = victim.get_data(sid, "k")
            self.assertEqual((got.status, got.body, got.headers.get("tenure-epoch")), (200, b"old-owner", str(e)))
            got = f.agent(new_owner[sid]).get_data(sid, "k")
            self.assertEqual((got.status, got.body), (200, b"new-owner"), sid)
            last = [h for h in f.history(sid) if h["epoch"] == e + 1][0]
            self.assertEqual((last["from"], last["to"], last["reason"]), (victim.id, new_owner[sid], "dead_worker"))
        f.wait_agreement(timeout=20)
        poller.catch_up().stop()
        self.assertNoViolations(poller.violations(), "grant timeline")

    def test_stale_epoch_write_to_new_owner_409(self):
        f, before = self.start_fleet(shards=8, lease_ms=LEASE_MS, heartbeat_ms=HEARTBEAT_MS)
        sid = "s-3"
        old = f.agent(before[sid]["worker"])
        new = [a for a in f.all() if a.id != old.id][0]
        self.assertEqual(before[sid]["epoch"], 1)
        self.assertStatus(old.put(sid, "k", 1, "v1"), 200)
        self.assertStatus(f.move(sid, new.id), 202)
        th.wait_until(lambda: new.grants().claims().get(sid) == 2, 10, "%s holding %s at epoch 2" % (new.id, sid),
                      interval=0.02)
        # The new owner refuses the old epoch, saying which is current.
        for r in (new.put(sid, "k", 1, "stale"), new.fence(sid, 1)):
            self.assertStatus(r, 409, "stale_epoch")
            self.assertEqual(r.json["current_epoch"], 2)
        self.assertEqual(new.get_data(sid, "k").status, 404)
        self.assertStatus(new.put(sid, "k", 2, "v2"), 200)
        self.assertEqual((new.fence(sid, 2).status, new.fence(sid, 3).status), (200, 421))
        # The old owner no longer accepts either epoch.
        self.assertStatus(old.put(sid, "k", 1, "late"), 421, "not_owner")
        self.assertStatus(old.fence(sid, 2), 421, "not_owner")
        got = old.get_data(sid, "k")
        self.assertEqual((got.status, got.body), (200, b"v1"))
        # Moved back: the store keeps the newest value, and the first owner now
        # refuses epoch 2 as stale.
        self.assertStatus(f.move(sid, old.id), 202)
        th.wait_until(lambda: old.grants().claims().get(sid) == 3, 10, "%s holding %s at epoch 3" % (old.id, sid),
                      interval=0.02)
        r = old.put(sid, "k", 2, "stale")
        self.assertStatus(r, 409, "stale_epoch")
        self.assertEqual(r.json["current_epoch"], 3)
        self.assertStatus(old.put(sid, "k", 3, "v3"), 200)
        h = f.history(sid)
        self.assertEqual([(x["epoch"], x["reason"]) for x in h], [(1, "created"), (2, "manual"), (3, "manual")])


if __name__ == "__main__":
    th.main()
