#!/usr/bin/env python3
"""A healthy 3-member group: one leader, health endpoints and metrics, writes
through a follower, linearizable reads at followers, leadership transfer."""

import http.server
import threading

import tenure_harness as th


class BasicsTest(th.ClusterTestCase):

    def test_one_leader_elected_and_health(self):
        c = self.make_cluster(n=3)
        leader = c.start()
        # Exactly one member reports itself leader; all agree on leader_id and term.
        views = c.views()
        self.assertEqual(sorted(views), ["c1", "c2", "c3"])
        self.assertEqual({v["leader_id"] for v in views.values()}, {leader.id})
        self.assertEqual(len({v["term"] for v in views.values()}), 1)
        self.assertGreaterEqual(views[leader.id]["term"], 1)
        for v in views.values():
            roles = {m["id"]: m["role"] for m in v["members"]}
            self.assertEqual(sorted(roles), ["c1", "c2", "c3"], v)
        leader_roles = {m["id"]: m["role"] for m in views[leader.id]["members"]}
        self.assertEqual(sorted(r for r in leader_roles.values()), ["follower", "follower", "leader"])
        self.assertEqual(leader_roles[leader.id], "leader")
        # Every member is healthy and, once it has applied what was committed, ready.
        for m in c.all():
            self.assertStatus(m.get("/healthz"), 200)
            th.wait_until(lambda: m.get("/readyz").status == 200, 10, "%s ready" % m.id)
            ready = m.get("/readyz").json
            self.assertTrue(ready["ready"])
            self.assertEqual(ready["leader_id"], leader.id)
        # Metrics: term, indexes, leadership; exactly one member has is_leader 1.
        is_leader = {}
        for m in c.all():
            met = m.metrics()
            for name in ("tenure_raft_term", "tenure_raft_commit_index", "tenure_raft_applied_index",
                         "tenure_raft_log_payload_bytes", "tenure_raft_log_entries_read_back_total", "tenure_raft_is_leader", "tenure_raft_leader_changes_total", "tenure_revision"):
                self.assertIn(name, met, "%s missing on %s" % (name, m.id))
            self.assertEqual(met["tenure_raft_term"], views[leader.id]["term"])
            self.assertGreaterEqual(met["tenure_raft_commit_index"], 3)  # the 3 bootstrap entries
            self.assertGreaterEqual(met["tenure_raft_leader_changes_total"], 1)
            is_leader[m.id] = met["tenure_raft_is_leader"]
            self.assertTrue(any(k.startswith("tenure_http_requests_total{") for k in met), m.id)
        self.assertEqual(is_leader, {k: (1.0 if k == leader.id else 0.0) for k in is_leader})

    def test_group_starts_when_a_members_port_was_taken(self):
        # free_port() releases the port it found: under parallel tests another
        # process may take it before the member binds, and that process may
        # be another test's server, answering /healthz as ours would (a CI
        # run saw an agent's start pass for served that way). The member
        # moves to another port and its peers follow it through their proxies.
        c = self.make_cluster(n=3)
        taken = c.member("c2").port

        class Healthy(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        blocker = http.server.ThreadingHTTPServer(("127.0.0.1", taken), Healthy)
        threading.Thread(target=blocker.serve_forever, daemon=True).start()
        try:
            leader = c.start()
        finally:
            blocker.shutdown()
            blocker.server_close()
        self.assertIsNotNone(leader)
        self.assertNotEqual(c.member("c2").port, taken)
        self.assertIn("cannot listen", c.member("c2").log_text())
        self.assertEqual(len(c.in_group()), 3)

    def test_write_through_follower_visible_everywhere(self):
        c = self.make_cluster(n=3)
        leader = c.start()
        follower = c.followers(leader)[0]
        before = follower.cluster_view()["revision"]
        r = follower.post("/v1/shards", {"ids": ["a", "b", "c"]})
        self.assertStatus(r, 201)
        body = r.json
        self.assertEqual(sorted(body["created"]), ["a", "b", "c"])
        self.assertEqual(body["existing"], [])
        self.assertGreater(body["revision"], before)
        # Creating again leaves them as they are.
        again = self.assertStatus(follower.post("/v1/shards", {"ids": ["a", "d"]}), 201).json
        self.assertEqual(again["created"], ["d"])
        self.assertEqual(again["existing"], ["a"])
        # Visible at every member: linearizable by default, and (once applied) stale reads too.
        for m in c.all():
            rev, shards = th.list_shards(m)
            self.assertEqual(sorted(shards), ["a", "b", "c", "d"], m.id)
            self.assertGreaterEqual(rev, again["revision"])
            one = self.assertStatus(m.get("/v1/shards/b"), 200).json
            self.assertEqual((one["id"], one["worker"], one["epoch"], one["state"]), ("b", None, 0, "unassigned"))
            th.wait_until(lambda: set(th.list_shards(m, "stale")[1]) == {"a", "b", "c", "d"}, 10,
                          "stale read at %s showing the writes" % m.id)

    def test_retried_request_applies_once(self):
        """A client that retries with the same Idempotency-Key (at any member)
        gets the first answer again, and nothing is applied twice."""
        c = self.make_cluster(n=3)
        leader = c.start()
        a, b = c.followers(leader)
        key = {"Idempotency-Key": "retry-1"}
        first = self.assertStatus(a.post("/v1/shards", {"ids": ["once"]}, headers=key), 201).json
        self.assertEqual(first["created"], ["once"])
        self.assertStatus(leader.delete("/v1/shards/once"), 200)
        rev = th.list_shards(leader)[0]
        for m in (b, leader, a):
            again = self.assertStatus(m.post("/v1/shards", {"ids": ["once"]}, headers=key), 201).json
            self.assertEqual(again, first, "retry at %s" % m.id)
        # The retry did not create the shard again, nor change anything.
        self.assertStatus(b.get("/v1/shards/once"), 404, "not_found")
        self.assertEqual(th.list_shards(leader)[0], rev)

    def test_linearizable_read_at_follower_sees_acknowledged_write(self):
        c = self.make_cluster(n=3)
        leader = c.start()
        members = c.all()
        for i in range(60):
            writer = members[i % 3]
            reader = members[(i + 1) % 3]  # always a different member; mostly a follower
            sid = "lin-%d" % i
            self.assertStatus(writer.post("/v1/shards", {"ids": [sid]}), 201)
            r = reader.get("/v1/shards/" + sid)
            self.assertEqual(r.status, 200, "read of %s at %s right after its ack at %s: %r" %
                             (sid, reader.id, writer.id, r))
        # The leader stayed the same all along (no election hid anything).
        self.assertEqual(c.leader().id, leader.id)

    def test_leadership_transfer(self):
        c = self.make_cluster(n=3)
        leader = c.start()
        for target in c.followers(leader)[:1] + [leader]:
            current = c.leader()
            if current.id == target.id:
                # Transfer back to the first leader from whoever leads now.
                target = [m for m in c.followers(current)][0]
            term_before = current.cluster_view()["term"]
            # Asked at a member that is not the leader: it is forwarded.
            asked = [m for m in c.all() if m.id != current.id and m.id != target.id][0]
            r = asked.post("/v1/members/transfer-leadership", {"to": target.id})
            self.assertStatus(r, 202)
            self.assertEqual(r.json["to"], target.id)
            # The transfer is asynchronous (202): wait for the group to agree on the target.
            new = c.wait_leader_is(target.id, timeout=10)
            self.assertGreater(new.cluster_view()["term"], term_before)
            # The new leader takes writes.
            th.create_shards(new, ["after-transfer-to-" + target.id])
        # Transfer to an unknown member: 404, no change of leader.
        current = c.leader()
        self.assertStatus(current.post("/v1/members/transfer-leadership", {"to": "nobody"}), 404, "not_found")
        self.assertEqual(c.leader().id, current.id)


if __name__ == "__main__":
    th.main()
