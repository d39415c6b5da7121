#!/usr/bin/env python3
"""tenurectl tells the truth (issue 12 §3): `cluster` and `status` show each
member's health and lag as the leader knows them, even when asked of a
follower; `workers drain --wait` and `rebalance --wait` return once the work
is done (exit 3 when their --timeout runs out first); history shows human
times; the bash completion script parses. Real controllers and agents."""

import json
import os
import subprocess

import fleet_harness as fh
import tenure_harness as th


class TenurectlTest(fh.FleetTestCase):

    def ctl(self, member, *args, timeout=120):
        cmd = [os.path.join(th.BIN_DIR, "tenurectl"), "--endpoints", member.address] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)

    def ctl_json(self, member, *args):
        out = self.ctl(member, "-o", "json", *args)
        self.assertEqual(out.returncode, 0, out.stderr)
        return json.loads(out.stdout)

    def test_cluster_and_status_tell_the_leaders_view(self):
        f, views = self.start_fleet(shards=30, agents=3)
        c = f.cluster
        leader = c.wait_leader()
        follower, other = c.followers(leader)
        # A follower's own answer: first-hand only, null for the other follower.
        raw = {m["id"]: m for m in follower.cluster_view()["members"]}
        self.assertIs(raw[follower.id]["healthy"], True)
        self.assertIs(raw[leader.id]["healthy"], True)
        self.assertIsNone(raw[other.id]["healthy"])
        self.assertIsNone(raw[other.id]["lag"])

        # tenurectl asked of that follower shows the leader's table: all healthy.
        view = self.ctl_json(follower, "cluster")
        self.assertEqual(view["members_from"], leader.id)
        self.assertEqual({m["id"]: m["healthy"] for m in view["members"]}, {m.id: True for m in c.all()})
        self.assertTrue(all(isinstance(m["lag"], int) for m in view["members"]), view["members"])
        table = self.ctl(follower, "cluster")
        self.assertEqual(table.returncode, 0, table.stderr)
        members = table.stdout[table.stdout.index("ID "):]
        self.assertIn("HEALTHY", members)
        self.assertNotIn("false", members)
        self.assertEqual(len(members.splitlines()), 4, members)

        status = self.ctl_json(follower, "status")
        self.assertEqual(status["leader"], leader.id)
        self.assertEqual(sum(status["shards_by_state"].values()), 30)
        self.assertEqual(status["workers_by_state"]["alive"], 3)
        self.assertEqual((status["answered_by"], status["caught_up"]), (follower.id, True))
        self.assertEqual(status["warnings"], [])
        text = self.ctl(follower, "status")
        self.assertIn("nothing needs a look", text.stdout)

        # The other follower stops: the leader stops reaching it, and both
        # commands say so when asked of the surviving follower.
        other.kill()

        def unhealthy_seen():
            v = self.ctl_json(follower, "cluster")
            return {m["id"]: m["healthy"] for m in v["members"]}[other.id] is False
        th.wait_until(unhealthy_seen, 20, "tenurectl cluster shows %s unhealthy" % other.id)
        status = self.ctl_json(follower, "status")
        self.assertIn("member %s is not reachable from the leader" % other.id, status["warnings"])

    def test_drain_and_rebalance_wait_until_done(self):
        f, views = self.start_fleet(shards=30, agents=3)
        leader = f.cluster.wait_leader()
        w1 = sum(1 for v in views.values() if v["worker"] == "w1")
        self.assertGreater(w1, 0)
        out = self.ctl(leader, "workers", "drain", "w1", "--wait", "--timeout", "60")
        self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
        self.assertIn("drain w1: done", out.stdout)
        self.assertIn("drain w1: %d/%d" % (w1, w1), out.stdout)  # plain progress lines off a terminal
        self.assertEqual(leader.get("/v1/workers/w1").json["shards"], 0)
        self.assertEqual(leader.get("/v1/workers/w1").json["state"], "draining")

        self.assertEqual(self.ctl(leader, "workers", "undrain", "w1").returncode, 0)
        out = self.ctl(leader, "rebalance", "--wait", "--timeout", "60")
        self.assertEqual(out.returncode, 0, out.stderr + out.stdout)
        self.assertIn("rebalance: done", out.stdout)
        dry = leader.post("/v1/rebalance?dry_run=true", headers=f.cluster.admin_headers()).json
        self.assertEqual(dry["moves_total"], 0)
        self.assertGreater(leader.get("/v1/workers/w1").json["shards"], 0)

        # Nowhere to go: with w2 and w3 draining, w1's shards cannot move.
        for w in ("w2", "w3"):
            self.assertEqual(self.ctl(leader, "workers", "drain", w).returncode, 0)
        out = self.ctl(leader, "workers", "drain", "w1", "--wait", "--timeout", "2")
        self.assertEqual(out.returncode, 3, out.stderr + out.stdout)
        self.assertIn("not done after 2 s", out.stderr)
        self.assertEqual(self.ctl(leader, "workers", "drain", "w1", "--timeout", "2").returncode, 2)
        self.assertEqual(self.ctl(leader, "workers", "drain", "w1", "--wait", "--timeout", "x").returncode, 2)
        self.assertEqual(leader.get("/v1/workers/nobody").status, 404)

    def test_history_times_and_completion(self):
        f, views = self.start_fleet(shards=4, agents=2)
        leader = f.cluster.wait_leader()
        shard = sorted(views)[0]
        out = self.ctl(leader, "shards", "history", shard)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        header = next(l for l in lines if l.startswith("REVISION"))
        self.assertTrue(header.rstrip().endswith("AT"), header)
        row = lines[lines.index(header) + 1]
        self.assertRegex(row, r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}Z")
        self.assertIn("created", row)
        doc = self.ctl_json(leader, "shards", "history", shard)
        self.assertIsInstance(doc["history"][0]["at_ms"], int)  # JSON keeps the raw field

        # An id that is not one is sent as one path segment and refused as
        # such: "s?consistency=stale" is not the list, "x/history" not the
        # history of "x".
        for bad in ("%s?consistency=stale" % shard, "%s/history" % shard, "a%2Fb"):
            out = self.ctl(leader, "shards", "get", bad)
            self.assertEqual(out.returncode, 1, (bad, out.stdout, out.stderr))
            self.assertEqual(out.stdout, "", bad)
            self.assertRegex(out.stderr, r"(400|404)", bad)

        script = self.ctl(leader, "completion", "bash")
        self.assertEqual(script.returncode, 0)
        self.assertIn("complete -F _tenurectl tenurectl", script.stdout)
        check = subprocess.run(["bash", "-n"], input=script.stdout, capture_output=True, text=True)
        self.assertEqual(check.returncode, 0, check.stderr)
        # Completing "tenurectl workers dr" offers drain.
        probe = script.stdout + '\nCOMP_WORDS=(tenurectl workers dr); COMP_CWORD=2; _tenurectl; echo "${COMPREPLY[@]}"\n'
        done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True)
        self.assertEqual(done.stdout.split(), ["drain"], done.stderr)
        self.assertEqual(self.ctl(leader, "completion", "zsh").returncode, 2)


if __name__ == "__main__":
    th.main()
