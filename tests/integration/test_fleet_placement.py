#!/usr/bin/env python3
"""Placement with real agents: 3 controllers and 4 tenure-agent processes.
Every shard is active on exactly one agent, each agent holds within one
shard of its capacity-weighted fair share, and what the agents serve
(/v1/grants) is what the controllers say (/v1/shards): same worker, same
epoch."""

import math

import fleet_harness as fh
import tenure_harness as th


class FleetPlacementTest(fh.FleetTestCase):

    def wait_balanced(self, fleet, capacities, timeout=30):
        """Waits until the controllers and agents agree and every agent holds
        its fair share (floor or ceiling); returns (shards, grants)."""
        def check():
            problems, shards, grants = fleet.disagreements()
            if problems:
                return None
            want = fh.fair_shares(capacities, len(shards))
            counts = {w: len(grants[w].grants) for w in capacities if w in grants}
            if all(w in counts and math.floor(x) <= counts[w] <= math.ceil(x) for w, x in want.items()):
                return shards, grants
            return None
        return th.wait_until(check, timeout, "agreement and a balanced placement over %r" % capacities)

    def check_balanced(self, fleet, shards, grants, capacities):
        """Every shard on exactly one agent, each within one of its fair share."""
        holders = {}
        for wid, g in grants.items():
            self.assertTrue(g.lease_valid, wid)
            for sid, e in g.grants.items():
                holders.setdefault(sid, []).append((wid, e))
        self.assertEqual(sorted(holders), sorted(shards), "shards held by some agent")
        for sid, hs in sorted(holders.items()):
            self.assertEqual(len(hs), 1, "%s held by %s" % (sid, hs))
            self.assertEqual(hs[0], (shards[sid]["worker"], shards[sid]["epoch"]), sid)
        share = fh.fair_shares(capacities, len(shards))
        counts = {wid: len(g.grants) for wid, g in grants.items()}
        for wid, exact in sorted(share.items()):
            self.assertTrue(math.floor(exact) <= counts[wid] <= math.ceil(exact),
                            "%s holds %d shards, fair share %.2f (all: %r)" % (wid, counts[wid], exact, counts))
        # The controllers' worker list says the same.
        workers = fleet.workers()
        for wid in capacities:
            self.assertEqual(workers[wid]["state"], "alive", wid)
            self.assertEqual(workers[wid]["shards"], counts[wid], wid)
        return counts

    def test_all_shards_assigned_balanced_and_agreed(self):
        f = self.make_fleet(agents=4)
        ids = f.create_shards(40)
        caps = {a.id: 1.0 for a in f.all()}
        shards, grants = self.wait_balanced(f, caps, timeout=20)
        self.assertEqual(sorted(shards), sorted(ids))
        counts = self.check_balanced(f, shards, grants, caps)
        self.assertEqual(sorted(counts.values()), [10, 10, 10, 10])
        # First placement: every shard's first owner got epoch 1, reason created.
        for sid in ids:
            self.assertEqual(shards[sid]["epoch"], 1, sid)
        h = f.history("s-7")
        self.assertEqual([(x["epoch"], x["from"], x["reason"]) for x in h], [(1, None, "created")])
        self.assertEqual(h[0]["to"], shards["s-7"]["worker"])
        # The fence agrees with the listing: the owner says ok at its epoch,
        # every other agent says not_owner.
        for sid in ("s-0", "s-13", "s-39"):
            owner = shards[sid]["worker"]
            for a in f.all():
                r = a.fence(sid, 1)
                if a.id == owner:
                    self.assertEqual((r.status, r.json), (200, {"ok": True}), a.id)
                else:
                    self.assertStatus(r, 421, "not_owner")
        # The agents' metrics count what they hold.
        for a in f.all():
            met = a.metrics()
            self.assertEqual(met.get("tenure_agent_grants"), float(counts[a.id]), a.id)
            self.assertEqual(met.get("tenure_agent_lease_valid"), 1.0, a.id)

    def test_capacity_weighted_with_a_capacity_2_agent(self):
        # Shards exist before any agent: the first agent to register gets them
        # all, the next ones take their share through handoffs (rebalance).
        f = self.make_fleet(agents=4, capacities=[2, 1, 1, 1], start=False)
        f.cluster.start()
        ids = f.create_shards(40)
        f.start()
        caps = {"w1": 2.0, "w2": 1.0, "w3": 1.0, "w4": 1.0}
        shards, grants = self.wait_balanced(f, caps, timeout=30)
        self.assertEqual(sorted(shards), sorted(ids))
        counts = self.check_balanced(f, shards, grants, caps)
        self.assertEqual(counts, {"w1": 16, "w2": 8, "w3": 8, "w4": 8})
        # Epochs rose by exactly one per owner change, as the history says.
        for sid in ids:
            h = f.history(sid)
            self.assertEqual(fh.history_violations(h), [], sid)
            self.assertEqual(h[-1]["epoch"], shards[sid]["epoch"], sid)
            self.assertEqual(h[-1]["to"], shards[sid]["worker"], sid)
            self.assertIn(h[-1]["reason"], ("created", "rebalance"), sid)

    def test_capacity_change_on_reregistration(self):
        # An agent restarted with a higher capacity (same data_dir) gets a
        # larger share: 40 shards, capacities 1,1,1,1 then w4 at 5 -> 5/8.
        f = self.make_fleet(agents=4)
        f.create_shards(40)
        self.wait_balanced(f, {a.id: 1.0 for a in f.all()}, timeout=20)
        w4 = f.agent("w4")
        w4.kill()
        w4.capacity = 5
        w4.start()
        caps = {"w1": 1.0, "w2": 1.0, "w3": 1.0, "w4": 5.0}
        shards, grants = self.wait_balanced(f, caps, timeout=30)
        counts = self.check_balanced(f, shards, grants, caps)
        self.assertEqual(counts["w4"], 25)

    def test_agents_need_the_agent_token(self):
        # With auth set, agents holding the agent token register and get
        # shards; one with a wrong token is refused (401), never ready, and
        # gets nothing, while the others take all the shards.
        auth = {"admin_token": "adm-1", "agent_token": "agt-1", "peer_token": "peer-1"}
        f = self.make_fleet(agents=3, auth=auth, start=False)
        intruder = f.add_agent("w9", zone="z1", heartbeat_ms=250, agent_token="wrong")
        f.cluster.start()
        f.start(agents=[f.agent(w) for w in ("w1", "w2", "w3")])
        intruder.start(wait_ready=False)
        ids = f.create_shards(30)
        shards, grants = f.wait_agreement(timeout=20, agents=[f.agent(w) for w in ("w1", "w2", "w3")])
        self.assertEqual(sorted(shards), sorted(ids))
        self.assertEqual(sorted(len(g.grants) for g in grants.values()), [10, 10, 10])
        th.wait_until(lambda: "status=401" in intruder.log_text(), 10, "w9's registration refused with 401")
        g = intruder.grants()
        self.assertEqual((g.lease_valid, g.grants), (False, {}))
        self.assertEqual(intruder.get("/readyz").status, 503)
        self.assertNotIn("w9", f.workers())


if __name__ == "__main__":
    th.main()
