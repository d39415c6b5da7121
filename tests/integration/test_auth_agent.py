#!/usr/bin/env python3
"""The agent's own API with auth.client_token (CONTRACT.md "Security"):
PUT/GET /v1/data and POST /v1/fence need the client token, and nothing else
opens them; /v1/grants, /healthz and /metrics stay open. A refused call
changes nothing in the agent's store. An agent without a client token warns
at start and leaves its API open."""

import fleet_harness as fh
import tenure_harness as th

ADMIN, AGENT, PEER, CLIENT = "adm-1", "agt-1", "peer-1", "client-1"
# read_token too: the agents' watch and lists must work with the agent token alone.
AUTH = {"admin_token": ADMIN, "agent_token": AGENT, "peer_token": PEER, "read_token": "read-1"}

CREDENTIALS = {
    "none": {},
    "unknown": {"Authorization": "Bearer nope"},
    "agent token": {"Authorization": "Bearer " + AGENT},
    "admin token": {"Authorization": "Bearer " + ADMIN},
    "client prefix": {"Authorization": "Bearer " + CLIENT[:-1]},
    "client": {"Authorization": "bearer " + CLIENT},
}


class AgentAuthTest(fh.FleetTestCase):

    def test_client_token_guards_the_data_api(self):
        c = self.make_cluster(n=3, worker_lease_ms=3000, auth=AUTH)
        f = fh.Fleet(self.tmp, c)
        self.fleets.append(f)
        a = f.add_agent("w1", agent_token=AGENT, client_token=CLIENT)
        c.start()
        f.start()
        f.create_shards(1)
        th.wait_until(lambda: len(a.grants().grants) == 1, 20, "w1 granted its shard (heard through its watch)")
        shard, epoch = next(iter(a.grants().grants.items()))
        ok = CREDENTIALS["client"]
        put_headers = dict(ok, **{"Tenure-Epoch": str(epoch)})
        self.assertStatus(a.request("PUT", "/v1/data/%s/k" % shard, body=b"v1", headers=put_headers), 200)
        routes = [
            ("PUT", "/v1/data/%s/k" % shard, b"v2"),
            ("GET", "/v1/data/%s/k" % shard, None),
            ("POST", "/v1/fence", {"shard": shard, "epoch": epoch}),
        ]
        for method, path, body in routes:
            for cred, headers in CREDENTIALS.items():
                h = dict(headers, **{"Tenure-Epoch": str(epoch)})
                if cred == "client" and method == "PUT":
                    continue  # allowed, and it would change the store
                with self.subTest(call="%s %s" % (method, path), cred=cred):
                    r = a.request(method, path, body=body, headers=h)
                    if cred == "client":
                        self.assertStatus(r, 200)
                        continue
                    self.assertStatus(r, 401, "unauthorized")
                    self.assertTrue(r.headers.get("www-authenticate", "").startswith("Bearer"))
                    self.assertNotIn(CLIENT.encode(), r.body)
        r = a.request("GET", "/v1/data/%s/k" % shard, headers=ok)
        self.assertStatus(r, 200)
        self.assertEqual(r.body, b"v1", "a refused PUT changed the store")
        for path in ("/v1/grants", "/healthz", "/metrics"):
            self.assertStatus(a.get(path), 200)
        m = a.metrics()
        self.assertGreater(m.get('tenure_auth_denied_total{reason="missing_token",route="/v1/fence"}', 0), 0)
        self.assertNotIn(CLIENT.encode(), a.get("/metrics").body)

    def test_agent_without_tokens_warns_and_stays_open(self):
        c = self.make_cluster(n=3, worker_lease_ms=3000)
        f = fh.Fleet(self.tmp, c)
        self.fleets.append(f)
        a = f.add_agent("w1")
        c.start()
        f.start()
        self.assertIn("event=client_auth_disabled", a.log_text())
        self.assertStatus(a.request("POST", "/v1/fence", {"shard": "nope", "epoch": 1}), 421)
        self.assertFalse(c.leader().get("/v1/cluster").json["auth"])
        self.assertIn("event=auth_disabled", c.leader().log_text())


if __name__ == "__main__":
    th.main()
