#!/usr/bin/env python3
"""Bearer tokens: with auth.admin_token set, every mutating call without the
token, or with a wrong one, gets 401 and changes nothing; with it, it works
(also forwarded by a follower). Peer traffic with peer_token set still
elects a leader, and a member with the wrong peer token is shut out."""

import tenure_harness as th

ADMIN, AGENT, PEER = "admin-secret", "agent-secret", "peer-secret"

# (method, path, body) of every mutating admin call; none may succeed untokened.
MUTATING = [
    ("POST", "/v1/shards", {"ids": ["new-shard"]}),
    ("POST", "/v1/shards", {"count": 3, "prefix": "p-"}),
    ("DELETE", "/v1/shards/s1", None),
    ("POST", "/v1/shards/s1/move", {"to": "w1"}),
    ("POST", "/v1/workers/w1/drain", None),
    ("POST", "/v1/workers/w1/undrain", None),
    ("DELETE", "/v1/workers/w1", None),
    ("POST", "/v1/rebalance", None),
    ("POST", "/v1/members", {"id": "c9", "address": "127.0.0.1:1"}),
    ("DELETE", "/v1/members/c3", None),
    ("POST", "/v1/members/transfer-leadership", {"to": "c3"}),
]


class AuthTest(th.ClusterTestCase):

    def state(self, member):
        """What an operator would compare: revision, shards, members, leader."""
        rev, shards = th.list_shards(member)
        members = sorted((m["id"], m["role"]) for m in member.get("/v1/members").json["members"])
        owners = sorted((k, v["worker"], v["epoch"], v["state"]) for k, v in shards.items())
        return rev, owners, members, member.cluster_view()["leader_id"]

    def test_admin_token_required_for_mutations(self):
        c = self.make_cluster(n=3, auth={"admin_token": ADMIN, "agent_token": AGENT, "peer_token": PEER},
                              worker_lease_ms=60000)
        leader = c.start()  # peers authenticate with peer_token: a leader is elected
        good = {"Authorization": "Bearer " + ADMIN}
        th.create_shards(leader, ["s1", "s2"], headers=good)
        r = leader.post("/v1/workers/w1/register", {"address": "127.0.0.1:9"},
                        headers={"Authorization": "Bearer " + AGENT})
        self.assertStatus(r, 200)
        follower = c.followers(leader)[0]
        # Let the placement loop grant both shards to w1 first: nothing may change after.
        th.wait_until(lambda: all(v["worker"] == "w1" and v["state"] == "active"
                                  for v in th.list_shards(leader)[1].values()), 20, "s1, s2 granted to w1")
        before = self.state(leader)

        bad_headers = [
            ("no token", {}),
            ("wrong token", {"Authorization": "Bearer nope"}),
            ("agent token", {"Authorization": "Bearer " + AGENT}),
            ("peer token", {"Authorization": "Bearer " + PEER}),
            ("not bearer", {"Authorization": "Basic " + ADMIN}),
            ("token prefix", {"Authorization": "Bearer " + ADMIN[:-1]}),
            ("token plus", {"Authorization": "Bearer " + ADMIN + "x"}),
        ]
        for member in (leader, follower):
            for method, path, body in MUTATING:
                for what, h in bad_headers:
                    with self.subTest(member=member.id, call="%s %s" % (method, path), auth=what):
                        r = member.request(method, path, body=body, headers=h)
                        self.assertStatus(r, 401, "unauthorized")
        self.assertEqual(self.state(leader), before, "a refused call changed something")

        # Reads stay open.
        self.assertStatus(follower.get("/v1/shards"), 200)
        self.assertStatus(follower.get("/v1/cluster"), 200)
        self.assertStatus(follower.get("/metrics"), 200)

        # With the token it works, at the leader and through a follower.
        r = follower.post("/v1/shards", {"ids": ["with-token"]}, headers=good)
        self.assertStatus(r, 201)
        self.assertStatus(leader.request("DELETE", "/v1/shards/s2", headers=good), 200)
        self.assertEqual(sorted(th.list_shards(follower)[1]), ["s1", "with-token"])
        # Agent calls take the agent token (or the admin's), nothing else.
        self.assertStatus(follower.post("/v1/workers/w1/heartbeat", {}, headers={}), 401, "unauthorized")
        self.assertStatus(follower.post("/v1/workers/w1/heartbeat", {},
                                        headers={"Authorization": "Bearer " + PEER}), 401, "unauthorized")
        self.assertStatus(follower.post("/v1/workers/w1/heartbeat", {},
                                        headers={"Authorization": "Bearer " + AGENT}), 200)
        self.assertStatus(follower.post("/v1/workers/w1/heartbeat", {}, headers=good), 200)

        # Peer endpoints refuse strangers.
        self.assertStatus(follower.post("/raft/messages", b"\x00\x01", headers={}), 401, "unauthorized")
        self.assertStatus(follower.post("/raft/messages", b"\x00\x01",
                                        headers={"Authorization": "Bearer " + ADMIN}), 401, "unauthorized")

    def test_member_with_wrong_peer_token_is_shut_out(self):
        c = self.make_cluster(n=3, auth={"peer_token": PEER})
        odd = c.member("c3")
        odd.auth_override = {"peer_token": "another-secret"}
        c.start(wait_leader=False)
        majority = [c.member("c1"), c.member("c2")]
        leader = c.wait_leader(majority)
        th.create_shards(leader, ["x"])
        # c3 refuses the others' messages (and they refuse its own).
        th.wait_until(lambda: odd.metrics().get(
            'tenure_http_requests_total{code="401",method="POST",route="/raft/messages"}', 0) > 0, 10,
            "c3 refusing peer messages with 401")
        th.wait_until(lambda: leader.metrics().get(
            'tenure_http_requests_total{code="401",method="POST",route="/raft/messages"}', 0) > 0, 10,
            "the leader refusing c3's messages with 401")
        self.assertNotEqual(odd.cluster_view()["leader_id"], leader.id)
        self.assertNotIn("x", th.list_shards(odd, "stale")[1])


if __name__ == "__main__":
    th.main()
