#!/usr/bin/env python3
"""Bearer tokens on the controllers (CONTRACT.md "Security"), table-driven:
every route x {no token, unknown token, each role's token} gets the status
its access level gives, at the leader and at a follower, and no refused call
changes anything (revision, shards, workers, members). Peer traffic with
peer_token elects a leader; a member with another peer token is shut out."""

import tenure_harness as th

ADMIN, AGENT, PEER, READ = "admin-secret", "agent-secret", "peer-secret", "read-secret"
ALL_TOKENS = {"admin_token": ADMIN, "agent_token": AGENT, "peer_token": PEER}

# (access, method, path, body) of every controller route.
ROUTES = [
    ("public", "GET", "/healthz", None),
    ("public", "GET", "/readyz", None),
    ("public", "GET", "/metrics", None),
    ("read", "GET", "/v1/cluster", None),
    ("read", "GET", "/v1/members", None),
    ("read", "GET", "/v1/shards", None),
    ("read", "GET", "/v1/shards/s1", None),
    ("read", "GET", "/v1/shards/s1/history", None),
    ("read", "GET", "/v1/workers", None),
    ("read", "GET", "/v1/rebalance", None),
    ("stream", "GET", "/v1/watch?since=0", None),
    ("admin", "POST", "/v1/shards", {"ids": ["new-shard"]}),
    ("admin", "POST", "/v1/shards", {"count": 3, "prefix": "p-"}),
    ("admin", "DELETE", "/v1/shards/s1", None),
    ("admin", "POST", "/v1/shards/s1/move", {"to": "w1"}),
    ("admin", "POST", "/v1/workers/w1/drain", None),
    ("admin", "POST", "/v1/workers/w1/undrain", None),
    ("admin", "DELETE", "/v1/workers/w1", None),
    ("admin", "POST", "/v1/rebalance", None),
    ("admin", "POST", "/v1/members", {"id": "c9", "address": "127.0.0.1:1"}),
    ("admin", "DELETE", "/v1/members/c3", None),
    ("admin", "POST", "/v1/members/transfer-leadership", {"to": "c3"}),
    ("agent", "POST", "/v1/workers/w1/register", {"address": "127.0.0.1:9"}),
    ("agent", "POST", "/v1/workers/w1/heartbeat", {}),
    ("agent", "POST", "/v1/workers/w1/release", {"shards": [{"shard": "s1", "epoch": 1}]}),
    ("agent", "POST", "/v1/workers/w1/leave", None),
    ("peer", "POST", "/raft/messages", b"\x00\x01"),
    ("peer", "POST", "/raft/snapshot/chunk?transfer=t&offset=0", b"x"),
    ("peer", "POST", "/raft/snapshot/done?transfer=t&total=1", b"x"),
]

CREDENTIALS = {
    "none": {},
    "unknown": {"Authorization": "Bearer nope"},
    "not bearer": {"Authorization": "Basic " + ADMIN},
    "admin prefix": {"Authorization": "Bearer " + ADMIN[:-1]},
    "admin": {"Authorization": "Bearer " + ADMIN},
    "agent": {"Authorization": "bearer " + AGENT},  # the scheme is case-insensitive
    "peer": {"Authorization": "BEARER " + PEER},
    "reader": {"Authorization": "Bearer " + READ},
}
ALLOWED = {  # access -> the roles it admits; "*" any valid token, None: open to all
    "public": None,
    "read": {"admin", "agent", "peer", "reader"},
    "stream": {"admin", "agent", "peer", "reader"},
    "admin": {"admin"},
    "agent": {"admin", "agent"},
    "peer": {"peer"},
}


def expected(access, cred):
    """The status of a call, or None for one allowed (not sent: it would change things)."""
    allowed = ALLOWED[access]
    if allowed is None:
        return 200
    if cred in allowed:
        return None if access in ("admin", "agent", "peer", "stream") else 200
    return 403 if cred in ("admin", "agent", "peer", "reader") else 401


class AuthTest(th.ClusterTestCase):

    def state(self, member):
        """What an operator would compare: revision, shards, workers, members, leader."""
        h = {"Authorization": "Bearer " + READ} if member.cluster.auth.get("read_token") else {}
        r = member.get("/v1/shards", headers=h)
        self.assertStatus(r, 200)
        owners = sorted((s["id"], s["worker"], s["epoch"], s["state"]) for s in r.json["shards"])
        workers = sorted((w["id"], w["state"]) for w in member.get("/v1/workers", headers=h).json["workers"])
        members = sorted((m["id"], m["role"]) for m in member.get("/v1/members", headers=h).json["members"])
        return r.json["revision"], owners, workers, members, member.get("/v1/cluster", headers=h).json["leader_id"]

    def start_granted(self, auth):
        c = self.make_cluster(n=3, auth=auth, worker_lease_ms=60000)
        leader = c.start()  # peers authenticate with peer_token: a leader is elected
        admin = {"Authorization": "Bearer " + ADMIN}
        th.create_shards(leader, ["s1", "s2"], headers=admin)
        self.assertStatus(leader.post("/v1/workers/w1/register", {"address": "127.0.0.1:9"},
                                      headers={"Authorization": "Bearer " + AGENT}), 200)
        # Let placement grant both shards to w1 first: nothing may change after.
        th.wait_until(lambda: all(s[1] == "w1" and s[3] == "active" for s in self.state(leader)[1]), 20,
                      "s1, s2 granted to w1")
        return c, leader

    def test_every_route_with_every_credential(self):
        c, leader = self.start_granted(dict(ALL_TOKENS, read_token=READ))
        follower = c.followers(leader)[0]
        before = self.state(leader)
        denied_before = sum(v for k, v in leader.metrics().items() if k.startswith("tenure_auth_denied_total"))
        refused = 0
        for member in (leader, follower):
            for access, method, path, body in ROUTES:
                for cred, headers in CREDENTIALS.items():
                    want = expected(access, cred)
                    if want is None:
                        continue
                    with self.subTest(member=member.id, call="%s %s" % (method, path), cred=cred):
                        r = member.request(method, path, body=body, headers=headers)
                        self.assertEqual(r.status, want, r)
                        if want == 401:
                            self.assertStatus(r, 401, "unauthorized")
                            self.assertTrue(r.headers.get("www-authenticate", "").startswith("Bearer"), r.headers)
                        elif want == 403:
                            self.assertStatus(r, 403, "forbidden")
                        if want in (401, 403):
                            refused += member is leader
                            for secret in (ADMIN, AGENT, PEER, READ):
                                self.assertNotIn(secret.encode(), r.body)
        self.assertEqual(self.state(leader), before, "a refused call changed something")
        metrics = leader.get("/metrics").body
        for secret in (ADMIN, AGENT, PEER, READ):
            self.assertNotIn(secret.encode(), metrics)
        denied = sum(v for k, v in leader.metrics().items() if k.startswith("tenure_auth_denied_total"))
        self.assertGreater(refused, 100)
        self.assertEqual(denied - denied_before, refused)
        self.assertGreater(leader.metrics().get(
            'tenure_auth_denied_total{reason="wrong_role",route="/v1/workers/{id}/register"}', 0), 0)
        self.assertTrue(leader.get("/v1/cluster", headers=CREDENTIALS["reader"]).json["auth"])

    def test_allowed_calls_work_and_reads_stay_open(self):
        c, leader = self.start_granted(ALL_TOKENS)
        follower = c.followers(leader)[0]
        for access, method, path, body in ROUTES:
            if access in ("read", "public"):
                with self.subTest(call=path):
                    self.assertStatus(follower.request(method, path), 200)
        admin = CREDENTIALS["admin"]
        # With the token it works, at the leader and through a follower.
        self.assertStatus(follower.post("/v1/shards", {"ids": ["with-token"]}, headers=admin), 201)
        self.assertStatus(leader.request("DELETE", "/v1/shards/s2", headers=admin), 200)
        self.assertEqual(sorted(th.list_shards(follower)[1]), ["s1", "with-token"])
        for cred in ("agent", "admin"):
            self.assertStatus(follower.post("/v1/workers/w1/heartbeat", {}, headers=CREDENTIALS[cred]), 200)
        self.assertStatus(follower.post("/v1/workers/w1/drain", headers=admin), 200)
        self.assertTrue(follower.get("/v1/cluster").json["auth"])

    def test_member_with_wrong_peer_token_is_shut_out(self):
        c = self.make_cluster(n=3, auth=ALL_TOKENS)
        odd = c.member("c3")
        odd.auth_override = {"peer_token": "another-secret"}
        c.start(wait_leader=False)
        majority = [c.member("c1"), c.member("c2")]
        leader = c.wait_leader(majority)
        th.create_shards(leader, ["x"], headers=CREDENTIALS["admin"])
        # c3 refuses the others' messages (and they refuse its own).
        th.wait_until(lambda: odd.metrics().get(
            'tenure_http_requests_total{code="401",method="POST",route="/raft/messages"}', 0) > 0, 10,
            "c3 refusing peer messages with 401")
        th.wait_until(lambda: leader.metrics().get(
            'tenure_auth_denied_total{reason="unknown_token",route="/raft/messages"}', 0) > 0, 10,
            "the leader refusing c3's messages with 401")
        self.assertNotEqual(odd.cluster_view()["leader_id"], leader.id)
        # It never heard a leader, so it never caught up: it serves no stale
        # state at all (docs/api.md, "Stale reads after a restart").
        r = odd.get("/v1/shards?consistency=stale")
        self.assertEqual((r.status, r.json["error"]), (503, "recovering"), r.json)
        self.assertFalse(odd.cluster_view()["caught_up"])


if __name__ == "__main__":
    th.main()
