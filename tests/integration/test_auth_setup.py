#!/usr/bin/env python3
"""Setting auth up (CONTRACT.md "Security"): partial controller tokens are
refused at start with one line naming the missing keys; tokens may come from
files (trimmed of a trailing newline); tenurectl reads its token from
--token-file or TENURE_TOKEN_FILE; an Idempotency-Key names one request, and
its reuse for another gets 422 idempotency_mismatch and changes nothing."""

import os
import subprocess

import tenure_harness as th

ADMIN, AGENT, PEER = "admin-from-file", "agent-from-file", "peer-from-file"


class AuthSetupTest(th.ClusterTestCase):

    def write(self, name, text, mode=0o600):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def run_controller(self, config_text):
        path = self.write("c.yaml", config_text)
        p = subprocess.run([th.controller_binary(), "--config", path], stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20 * th.SLOW)
        return p.returncode, p.stderr.decode(errors="replace")

    def test_partial_auth_is_refused_at_start(self):
        port = th.free_port()
        base = "node_id: c1\ndata_dir: %s\nlisten: 127.0.0.1:%d\npeers: [{id: c1, address: 127.0.0.1:%d}]\n" % (
            os.path.join(self.tmp, "data"), port, port)
        cases = [
            ("auth: {admin_token: a}\n", ['"auth.agent_token"', '"auth.peer_token"']),
            ("auth: {admin_token: a, agent_token: b}\n", ['"auth.peer_token"']),
            ("auth: {peer_token_file: %s}\n" % self.write("p", "p\n"), ['"auth.admin_token"', '"auth.agent_token"']),
            ("auth: {read_token: r}\n", ['"auth.admin_token"', '"auth.agent_token"', '"auth.peer_token"']),
        ]
        for text, missing in cases:
            with self.subTest(auth=text):
                code, err = self.run_controller(base + text)
                self.assertNotEqual(code, 0, err)
                first = err.splitlines()[0]  # the reason; --help follows
                self.assertTrue(first.startswith("tenure-controller: config "), err)
                for key in missing:
                    self.assertIn(key, first)
                self.assertFalse(os.path.exists(os.path.join(self.tmp, "data")), "data_dir created")
        code, err = self.run_controller(base + "auth: {admin_token_file: %s, agent_token: b, peer_token: c}\n" %
                                        os.path.join(self.tmp, "nope"))
        self.assertNotEqual(code, 0)
        self.assertIn("auth.admin_token_file", err)

    def test_token_files_and_tenurectl(self):
        files = {k: self.write(k, v + "\n") for k, v in
                 (("admin", ADMIN), ("agent", AGENT), ("peer", PEER))}
        c = self.make_cluster(n=3, auth={"admin_token_file": files["admin"], "agent_token_file": files["agent"],
                                         "peer_token_file": files["peer"]})
        leader = c.start()
        admin = {"Authorization": "Bearer " + ADMIN}
        self.assertStatus(leader.post("/v1/shards", {"ids": ["a"]}), 401, "unauthorized")
        self.assertStatus(leader.post("/v1/shards", {"ids": ["a"]}, headers=admin), 201)
        self.assertStatus(leader.post("/v1/workers/w1/register", {"address": "127.0.0.1:9"},
                                      headers={"Authorization": "Bearer " + AGENT}), 200)
        ctl = os.path.join(th.BIN_DIR, "tenurectl")
        endpoints = ",".join(m.address for m in c.all())
        env = dict(os.environ, TENURE_ENDPOINTS=endpoints)
        env.pop("TENURE_TOKEN", None)
        env.pop("TENURE_TOKEN_FILE", None)

        def run(*args, extra_env=None):
            p = subprocess.run([ctl] + list(args), env=dict(env, **(extra_env or {})), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=30 * th.SLOW)
            return p.returncode, p.stdout.decode(), p.stderr.decode()

        code, out, err = run("shards", "create", "b")
        self.assertNotEqual(code, 0, out)
        code, out, err = run("--token-file", files["admin"], "shards", "create", "b")
        self.assertEqual(code, 0, err)
        code, out, err = run("shards", "create", "c", extra_env={"TENURE_TOKEN_FILE": files["admin"]})
        self.assertEqual(code, 0, err)
        code, out, err = run("--token-file", os.path.join(self.tmp, "missing"), "cluster")
        self.assertEqual(code, 2)
        self.assertIn("token file", err)
        self.assertEqual(sorted(th.list_shards(leader)[1]), ["a", "b", "c"])

    def test_idempotency_key_names_one_request(self):
        c = self.make_cluster(n=3)
        leader = c.start()
        follower = c.followers(leader)[0]
        key = {"Idempotency-Key": "key-1"}
        self.assertStatus(follower.post("/v1/shards", {"ids": ["x"]}, headers=key), 201)
        rev = th.list_shards(leader)[0]
        # The same request again: the first answer, applied once (also at another member).
        r = leader.post("/v1/shards", {"ids": ["x"]}, headers=key)
        self.assertStatus(r, 201)
        self.assertEqual(r.json["created"], ["x"])
        # Another request under the same key: refused, nothing changes.
        for method, path, body in (("DELETE", "/v1/shards/x", None), ("POST", "/v1/shards", {"ids": ["y"]}),
                                   ("POST", "/v1/workers/w1/drain", None)):
            with self.subTest(call="%s %s" % (method, path)):
                self.assertStatus(follower.request(method, path, body=body, headers=key), 422, "idempotency_mismatch")
        rev2, shards = th.list_shards(leader)
        self.assertEqual((rev2, sorted(shards)), (rev, ["x"]))
        self.assertStatus(leader.request("DELETE", "/v1/shards/x", headers={"Idempotency-Key": "key-2"}), 200)


if __name__ == "__main__":
    th.main()
