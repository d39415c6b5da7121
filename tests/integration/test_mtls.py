#!/usr/bin/env python3
"""Mutual TLS with identities bound to certificates (docs/security.md),
with certificates made by the test (openssl CLI): a cluster and agents over
mTLS elect, place and serve; a certificate from another CA, an expired one,
or none is refused at the handshake; a peer certificate naming another id,
an agent certificate calling for another worker, and a worker certificate
making operator calls get 403 and are counted; the dev cluster script runs
the whole local cluster over mTLS with token files."""

import http.client
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

import fleet_harness as fh
import tenure_certs as tc
import tenure_harness as th

ADMIN, AGENT, PEER = "adm-tls", "agt-tls", "peer-tls"
AUTH = {"admin_token": ADMIN, "agent_token": AGENT, "peer_token": PEER}
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def bearer(token):
    return {"Authorization": "Bearer " + token}


class FakeServer(threading.Thread):
    """A TLS listener presenting `leaf`'s certificate that counts connections
    and the requests that reach it (it never answers them)."""

    def __init__(self, leaf):
        super().__init__(daemon=True)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(leaf.cert, leaf.key)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.address = "127.0.0.1:%d" % self.sock.getsockname()[1]
        self.connections = self.requests = 0
        self.stopped = False

    def run(self):
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.connections += 1
            try:
                conn.settimeout(2)
                tls = self.ctx.wrap_socket(conn, server_side=True)
                if tls.recv(4096):
                    self.requests += 1
                tls.close()
            except (ssl.SSLError, OSError):
                conn.close()

    def stop(self):
        self.stopped = True
        self.join(5)
        self.sock.close()


class MtlsTest(fh.FleetTestCase):

    def setUp(self):
        super().setUp()
        self.ca = tc.CA(os.path.join(self.tmp, "pki"))
        self.admin = self.ca.issue("admin-ops", "ops", ["tenure://admin/ops"])

    def tls_cluster(self, certs=None, lease_ms=3000):
        members = certs or {i: self.ca.issue("controller-" + i, i, ["tenure://controller/" + i])
                            for i in ("c1", "c2", "c3")}
        return self.make_cluster(n=3, auth=AUTH, worker_lease_ms=lease_ms,
                                 tls={"ca": self.ca.cert, "members": members, "client": self.admin.context()})

    def call(self, member, leaf, method, path, body=None, headers=None):
        return th.http_request(member.address, method, path, body=body, headers=headers,
                               ssl_context=leaf.context(self.ca.cert))

    def assertRefusedAtHandshake(self, member, ctx, what):
        with self.assertRaises((OSError, http.client.HTTPException), msg=what):
            th.close_connections()
            th.http_request(member.address, "GET", "/healthz", ssl_context=ctx, timeout=5)
        th.close_connections()

    def test_cluster_and_agents_over_mtls(self):
        c = self.tls_cluster()
        f = fh.Fleet(self.tmp, c)
        self.fleets.append(f)
        for w in ("w1", "w2"):
            leaf = self.ca.issue("worker-" + w, w, ["tenure://worker/" + w])
            f.add_agent(w, agent_token=AGENT, tls={"leaf": leaf, "client": self.admin.context()})
        leader = c.start()
        f.start()
        ids = f.create_shards(6)
        views, _ = f.wait_agreement(timeout=30)
        self.assertEqual(sorted(views), sorted(ids))
        # An operator call through a follower: forwarded with the admin's identity.
        follower = c.followers(leader)[0]
        self.assertStatus(follower.post("/v1/shards", {"ids": ["via-follower"]}, headers=bearer(ADMIN)), 201)
        # Strangers are refused at the handshake, at controllers and agents alike.
        other_ca = tc.CA(os.path.join(self.tmp, "other"), "other-ca")
        foreign = other_ca.issue("foreign-admin", "ops", ["tenure://admin/ops"]).context(self.ca.cert)
        expired = self.ca.issue("expired-admin", "ops", ["tenure://admin/ops"], expired=True).context()
        no_cert = ssl.create_default_context(cafile=self.ca.cert)
        for target in (leader, f.agent("w1")):
            self.assertRefusedAtHandshake(target, foreign, "a certificate from another CA")
            self.assertRefusedAtHandshake(target, expired, "an expired certificate")
            self.assertRefusedAtHandshake(target, no_cert, "no certificate")
        self.assertStatus(self.call(f.agent("w1"), self.admin, "GET", "/v1/grants"), 200)
        # Certificate expiry is exported (TenureCertificateExpiry): its own and the CA's.
        expiry = {k: v for k, v in leader.metrics().items()
                  if k.startswith("tenure_tls_certificate_expiry_timestamp_seconds{")}
        self.assertEqual(sorted('role="%s"' % r in k for k in expiry for r in ("cert", "ca")).count(True), 2, expiry)
        self.assertTrue(all(v > time.time() for v in expiry.values()), expiry)

    def test_identities_are_bound(self):
        c = self.tls_cluster(lease_ms=60000)  # w1 sends no heartbeats: it must not die meanwhile
        leader = c.start()
        th.create_shards(leader, ["s1"], headers=bearer(ADMIN))
        w1 = self.ca.issue("worker-w1", "w1", ["tenure://worker/w1"])
        register = {"address": "127.0.0.1:9"}
        self.assertStatus(self.call(leader, w1, "POST", "/v1/workers/w1/register", register, bearer(AGENT)), 200)
        # Placement gives s1 to w1 first: nothing may change after.
        th.wait_until(lambda: th.list_shards(leader)[1]["s1"]["state"] == "active", 20, "s1 granted to w1")
        before = th.list_shards(leader)[0]
        # w1's certificate may not speak for w2, nor make operator calls (even with the admin token).
        for path in ("/v1/workers/w2/register", "/v1/workers/w2/heartbeat", "/v1/workers/w2/leave"):
            with self.subTest(path=path):
                self.assertStatus(self.call(leader, w1, "POST", path, register if "register" in path else {},
                                            bearer(AGENT)), 403, "forbidden")
        self.assertStatus(self.call(leader, w1, "DELETE", "/v1/shards/s1", None, bearer(ADMIN)), 403, "forbidden")
        self.assertStatus(self.call(leader, w1, "POST", "/raft/messages", b"\x00", bearer(PEER)), 403, "forbidden")
        # A peer certificate naming c9 may not send what claims to come from c1.
        c9 = self.ca.issue("controller-c9", "c9", ["tenure://controller/c9"])
        h = dict(bearer(PEER), **{"Tenure-From": "c1"})
        self.assertStatus(self.call(leader, c9, "POST", "/raft/snapshot/chunk?transfer=t&offset=0", b"x", h),
                          403, "forbidden")
        # ... not even by claiming to forward for c1 (only forwarded client calls carry another identity).
        h.update({"Tenure-Forwarded": "c9", "Tenure-Forwarded-Identity": "controller/c1"})
        self.assertStatus(self.call(leader, c9, "POST", "/raft/snapshot/chunk?transfer=t&offset=0", b"x", h),
                          403, "forbidden")
        # The admin's certificate may act for any worker.
        self.assertStatus(self.call(leader, self.admin, "POST", "/v1/workers/w1/heartbeat", {}, bearer(AGENT)), 200)
        self.assertEqual(th.list_shards(leader)[0], before, "a refused call changed something")
        m = leader.metrics()
        self.assertGreaterEqual(m.get('tenure_auth_denied_total{reason="certificate",route="/v1/workers/{id}/register"}', 0), 1)
        self.assertGreaterEqual(m.get('tenure_auth_denied_total{reason="raft_sender",route="/raft/snapshot/chunk"}', 0), 1)

    def test_member_with_another_members_certificate_is_shut_out(self):
        certs = {i: self.ca.issue("controller-" + i, i, ["tenure://controller/" + i]) for i in ("c1", "c2")}
        certs["c3"] = self.ca.issue("controller-c3-as-c2", "c2", ["tenure://controller/c2"])
        c = self.tls_cluster(certs)
        c.start(wait_leader=False)
        leader = c.wait_leader([c.member("c1"), c.member("c2")])
        th.create_shards(leader, ["x"], headers=bearer(ADMIN))
        odd = c.member("c3")
        th.wait_until(lambda: sum(v for k, v in leader.metrics().items()
                                  if k.startswith('tenure_auth_denied_total{reason="raft_sender"')) > 0, 15,
                      "c3's messages (from c3, certificate c2) refused")
        # It never heard a leader, so it never caught up: it serves no stale
        # state at all (docs/api.md, "Stale reads after a restart").
        r = odd.get("/v1/shards?consistency=stale")
        self.assertEqual((r.status, r.json["error"]), (503, "recovering"), r.json)
        self.assertFalse(odd.cluster_view()["caught_up"])

    def one_call(self, member, ctx, method, path, body=None, session=None):
        """One request on a new TLS connection, resuming `session` if given:
        (status, the session to resume next, whether this one was resumed)."""
        payload = json.dumps(body).encode() if body is not None else b""
        s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", member.port), timeout=10),
                            server_hostname="127.0.0.1", session=session)
        try:
            s.sendall(("%s %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\nConnection: close\r\n\r\n" % (method, path, ADMIN, len(payload))).encode()
                      + payload)
            answer = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
            return int(answer.split(b" ", 2)[1]), s.session, s.session_reused
        finally:
            s.close()

    def test_resumed_sessions_keep_the_identity_until_the_certificate_expires(self):
        """A client may resume a TLS session (a fraction of a full
        handshake's CPU; a fleet reconnecting to a new leader). Resumption
        with client certificates needs a session id context, without which
        OpenSSL ended such a handshake with an internal_error alert; and a
        resumed session carries the certificate verified when it began, so
        one expired since must name nobody."""
        c = self.tls_cluster()
        leader = c.start()
        ctx = self.admin.context(self.ca.cert)
        status, session, reused = self.one_call(leader, ctx, "POST", "/v1/shards", {"ids": ["r1"]})
        self.assertEqual((status, reused), (201, False))
        status, session, reused = self.one_call(leader, ctx, "POST", "/v1/shards", {"ids": ["r2"]}, session)
        self.assertEqual((status, reused), (201, True))
        # An operator certificate that expires in a few seconds.
        expires = time.time() + 6 * th.SLOW
        short = self.ca.issue("admin-short", "ops", ["tenure://admin/ops"], not_after=expires)
        short_ctx = short.context(self.ca.cert)
        status, session, reused = self.one_call(leader, short_ctx, "POST", "/v1/shards", {"ids": ["r3"]})
        self.assertEqual((status, reused), (201, False), "the certificate expired before its first use")
        th.wait_until(lambda: time.time() > expires + 1, 30, "the short certificate expired")
        status, _, reused = self.one_call(leader, short_ctx, "POST", "/v1/shards", {"ids": ["r4"]}, session)
        self.assertTrue(reused, "the server did not resume the session")
        self.assertIn(status, (401, 403), "a resumed session with an expired certificate was let in")
        self.assertEqual(sorted(th.list_shards(leader)[1]), ["r1", "r2", "r3"])

    def test_idle_tls_connections_hold_little_memory(self):
        """A controller holds a heartbeat connection and a watch stream per
        agent, idle nearly always. Over mutual TLS each cost ~84 KB with
        Asio's ssl::stream (its record buffers and a BIO pair, kept for the
        connection's life); with OpenSSL reading the socket itself and
        releasing its buffers when empty, well under half of that."""
        c = self.tls_cluster()
        leader = c.start()
        count = 300

        def rss_kib():
            with open("/proc/%d/status" % leader.proc.pid) as f:
                return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))

        ctx = self.admin.context(self.ca.cert)
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        before = rss_kib()
        held = []
        try:
            for _ in range(count):
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", leader.port), timeout=10),
                                    server_hostname="127.0.0.1")
                held.append(s)
                s.sendall(request)
                answer = b""
                while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                    chunk = s.recv(4096)
                    self.assertTrue(chunk, "the connection closed before its answer")
                    answer += chunk
                self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer[:100])
            open_now = leader.metrics().get("tenure_http_connections", 0)
            self.assertGreaterEqual(open_now, count)
            per_connection = (rss_kib() - before) * 1024 / count
        finally:
            for s in held:
                s.close()
        print("idle mutual-TLS connection at a controller: %.1f KB" % (per_connection / 1000))
        self.assertLess(per_connection, 40000, "an idle TLS connection costs %.0f bytes" % per_connection)

    def test_clients_talk_only_to_controllers(self):
        """A worker's certificate posing as a controller gets no request (and
        so no token) from tenurectl or an agent; a controller's does."""
        ctl = [os.path.join(th.BIN_DIR, "tenurectl"), "--cacert", self.ca.cert, "--cert", self.admin.cert,
               "--key", self.admin.key, "--token", ADMIN]
        impostor = FakeServer(self.ca.issue("worker-w7", "w7", ["tenure://worker/w7"]))
        genuine = FakeServer(self.ca.issue("controller-c7", "c7", ["tenure://controller/c7"]))
        for server in (impostor, genuine):
            server.start()
            self.addCleanup(server.stop)
            subprocess.run(ctl + ["--endpoints", server.address, "cluster"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=60 * th.SLOW)
        th.wait_until(lambda: genuine.requests >= 1, 10, "tenurectl's request at the controller certificate")
        self.assertGreaterEqual(impostor.connections, 1)
        self.assertEqual(impostor.requests, 0, "tenurectl sent a request to a worker's certificate")
        c = self.tls_cluster()
        f = fh.Fleet(self.tmp, c)
        self.fleets.append(f)
        w1 = self.ca.issue("worker-w1", "w1", ["tenure://worker/w1"])
        a = f.add_agent("w1", agent_token=AGENT, tls={"leaf": w1, "client": self.admin.context()})
        a.controllers = [impostor.address]
        a.start(wait_ready=False)
        th.wait_until(lambda: impostor.connections >= 3, 20, "the agent dialing the impostor")
        self.assertEqual(impostor.requests, 0, "the agent sent a request to a worker's certificate")

    def test_dev_cluster_over_mtls(self):
        base = 20000 + (os.getpid() % 200) * 50
        d = os.path.join(self.tmp, "dev")
        script = os.path.join(ROOT, "scripts", "dev-cluster.sh")
        log_path = os.path.join(self.tmp, "dev-cluster.log")

        def log_text():
            with open(log_path) as f:
                return f.read()
        log = open(log_path, "w")
        self.addCleanup(log.close)
        p = subprocess.Popen([script, "--tls", "--auth", "--no-build", "--bin", os.path.abspath(th.BIN_DIR),
                              "--agents", "2",
                              "--shards", "8", "--dir", d, "--port-base", str(base)],
                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.addCleanup(lambda: (os.killpg(p.pid, signal.SIGTERM), p.wait(60)) if p.poll() is None else None)
        th.wait_until(lambda: p.poll() is not None or "cluster is up" in log_text(), 60, "dev-cluster.sh up")
        self.assertIsNone(p.poll(), log_text())
        certs = os.path.join(d, "certs")
        ctl = [os.path.join(th.BIN_DIR, "tenurectl"), "--endpoints",
               ",".join("127.0.0.1:%d" % (base + i) for i in (1, 2, 3)), "-o", "json",
               "--cacert", os.path.join(certs, "ca.crt"), "--cert", os.path.join(certs, "admin-admin.crt"),
               "--key", os.path.join(certs, "admin-admin.key")]
        env = dict(os.environ, TENURE_TOKEN_FILE=os.path.join(d, "tokens", "admin"))

        def run(*args):
            r = subprocess.run(ctl + list(args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=30 * th.SLOW)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            return r.stdout.decode()

        self.assertIn('"auth": true', run("cluster").replace('"auth":true', '"auth": true'))
        th.wait_until(lambda: run("workers", "list").count('"alive"') == 2, 30, "both agents alive")
        run("shards", "create", "extra")
        th.wait_until(lambda: '"unassigned"' not in run("shards", "list"), 30, "every shard granted")
        self.assertEqual(oct(os.stat(os.path.join(d, "tokens", "admin")).st_mode & 0o777), "0o600")
        os.killpg(p.pid, signal.SIGTERM)
        self.assertEqual(p.wait(60), 0, log_text())


if __name__ == "__main__":
    th.main()
