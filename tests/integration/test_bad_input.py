#!/usr/bin/env python3
"""The bad-input matrix: every malformed request gets its status and a JSON
error body with the contract's code, and leaves the revision unchanged; a
bad config file or bad flags make tenure-controller exit non-zero with one
line naming the problem."""

import os
import shutil
import subprocess

import tenure_harness as th

TWO_MIB = 2 * 1024 * 1024

# (method, path, body, status, code). body: str/bytes sent as is, None for none.
API_CASES = [
    # Malformed JSON and non-object bodies.
    ("POST", "/v1/shards", '{"ids": [', 400, "bad_request"),
    ("POST", "/v1/shards", "not json", 400, "bad_request"),
    ("POST", "/v1/shards", "", 400, "bad_request"),
    ("POST", "/v1/shards", "[]", 400, "bad_request"),
    ("POST", "/v1/shards", '"ids"', 400, "bad_request"),
    ("POST", "/v1/shards", "null", 400, "bad_request"),
    ("POST", "/v1/shards", b'{"ids": ["\xff\xfe"]}', 400, "bad_request"),  # not UTF-8
    ("POST", "/v1/shards", '{"ids": ["a"]} trailing', 400, "bad_request"),
    # Wrong types.
    ("POST", "/v1/shards", '{"ids": "a"}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"ids": [1, 2]}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"ids": [["a"]]}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"ids": [null]}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"count": "3"}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"count": 1.5}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"count": true}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"count": 2, "prefix": 7}', 400, "bad_request"),
    # Out-of-range and contradictory values.
    ("POST", "/v1/shards", '{"count": 0}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"count": -1}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"count": 100001}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"count": 1e400}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"ids": []}', 400, "bad_request"),
    ("POST", "/v1/shards", "{}", 400, "bad_request"),
    ("POST", "/v1/shards", '{"ids": ["a"], "count": 1}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"ids": ["a"], "prefix": "p"}', 400, "bad_request"),
    # Bad ids.
    ("POST", "/v1/shards", '{"ids": ["has space"]}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"ids": [""]}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"ids": ["a/b"]}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"ids": ["%s"]}' % ("x" * 129), 400, "bad_request"),
    ("POST", "/v1/shards", '{"ids": ["ok", "n\\u00e9"]}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"count": 2, "prefix": "bad prefix "}', 400, "bad_request"),
    ("GET", "/v1/shards/has%20space", None, 400, "bad_request"),
    ("DELETE", "/v1/shards/has%20space", None, 400, "bad_request"),
    ("GET", "/v1/shards/%s" % ("y" * 129), None, 400, "bad_request"),
    ("POST", "/v1/members", '{"id": "bad id", "address": "127.0.0.1:1"}', 400, "bad_request"),
    ("POST", "/v1/members", '{"id": "c9", "address": "no-port"}', 400, "bad_request"),
    ("POST", "/v1/members/transfer-leadership", '{"to": 3}', 400, "bad_request"),
    ("POST", "/v1/workers/bad%20id/drain", None, 400, "bad_request"),
    # Unknown fields.
    ("POST", "/v1/shards", '{"ids": ["a"], "owner": "w1"}', 400, "bad_request"),
    ("POST", "/v1/shards", '{"count": 1, "Count": 1}', 400, "bad_request"),
    ("POST", "/v1/members", '{"id": "c9", "address": "127.0.0.1:1", "role": "voter"}', 400, "bad_request"),
    ("POST", "/v1/members/transfer-leadership", '{"to": "c2", "force": true}', 400, "bad_request"),
    # Bad query parameters.
    ("GET", "/v1/shards?consistency=sometimes", None, 400, "bad_request"),
    ("GET", "/v1/shards?worker=bad%20id", None, 400, "bad_request"),
    ("GET", "/v1/watch?since=abc", None, 400, "bad_request"),
    ("GET", "/v1/watch?since=-1", None, 400, "bad_request"),
    ("GET", "/v1/watch?since=99999999999999999999999", None, 400, "bad_request"),
    # Things that do not exist.
    ("GET", "/v1/shards/no-such-shard", None, 404, "not_found"),
    ("DELETE", "/v1/shards/no-such-shard", None, 404, "not_found"),
    ("GET", "/v1/shards/no-such-shard/history", None, 404, "not_found"),
    ("DELETE", "/v1/members/c9", None, 404, "not_found"),
    ("POST", "/v1/members/transfer-leadership", '{"to": "c9"}', 404, "not_found"),
    ("GET", "/nope", None, 404, "not_found"),
    ("GET", "/v1/shards/a/b/c", None, 404, "not_found"),
    ("GET", "/v2/cluster", None, 404, "not_found"),
    # Unknown methods on known paths.
    ("PUT", "/v1/shards", '{"ids": ["a"]}', 405, "method_not_allowed"),
    ("PATCH", "/v1/cluster", "{}", 405, "method_not_allowed"),
    ("DELETE", "/v1/shards", None, 405, "method_not_allowed"),
    ("BREW", "/v1/shards", None, 405, "method_not_allowed"),
    ("POST", "/healthz", None, 405, "method_not_allowed"),
]


class BadInputApiTest(th.ClusterTestCase):

    def setUp(self):
        super().setUp()
        self.c = self.make_cluster(n=3)
        self.leader = self.c.start()
        th.create_shards(self.leader, ["existing"])
        self.follower = self.c.followers(self.leader)[0]

    def revision(self):
        """The committed revision, read linearizably (so a bad request that
        had slipped into the log would show)."""
        rev, _ = th.list_shards(self.leader)
        return rev

    def check_error(self, r, status, code, what):
        self.assertEqual(r.status, status, "%s: expected %d, got %r" % (what, status, r))
        self.assertTrue(r.headers.get("content-type", "").startswith("application/json"), "%s: %r" % (what, r.headers))
        body = r.json
        self.assertEqual(body.get("error"), code, "%s: %r" % (what, body))
        self.assertIsInstance(body.get("message"), str, what)
        self.assertTrue(body["message"], what)
        if status == 405:  # RFC 9110 §15.5.6: a 405 lists the methods the path has
            self.assertTrue(r.headers.get("allow"), "%s: no Allow field: %r" % (what, r.headers))

    def test_api_matrix_at_leader_and_follower(self):
        for member in (self.leader, self.follower):
            for method, path, body, status, code in API_CASES:
                what = "%s %s %r at %s" % (method, path, body if body is None else body[:60], member.id)
                with self.subTest(what=what):
                    before = self.revision()
                    r = member.request(method, path, body=body)
                    self.check_error(r, status, code, what)
                    self.assertEqual(self.revision(), before, "%s changed the revision" % what)
        _, shards = th.list_shards(self.leader)
        self.assertEqual(sorted(shards), ["existing"])

    def test_two_mib_body_too_large(self):
        for member in (self.leader, self.follower):
            before = self.revision()
            # Declared 2 MiB: answered 413 from the header alone, before any body byte.
            head = ("POST /v1/shards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n" % TWO_MIB).encode()
            r = th.raw_exchange(member.address, head)
            self.check_error(r, 413, "too_large", "declared 2 MiB body at %s" % member.id)
            # A real 2 MiB JSON body (sent in full; the server may close before reading it).
            ids = '["%s"]' % '","'.join("big-%07d" % i for i in range(TWO_MIB // 14))
            body = ('{"ids": %s}' % ids).encode()
            self.assertGreaterEqual(len(body), TWO_MIB)
            head = ("POST /v1/shards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    "Content-Length: %d\r\n\r\n" % len(body)).encode()
            r = th.raw_exchange(member.address, head, body_after=body)
            self.check_error(r, 413, "too_large", "2 MiB body at %s" % member.id)
            # Chunked, with no length announced.
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 65536]), body[i:i + 65536])
                              for i in range(0, len(body), 65536)) + b"0\r\n\r\n"
            head = (b"POST /v1/shards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n")
            r = th.raw_exchange(member.address, head, body_after=chunks)
            self.check_error(r, 413, "too_large", "2 MiB chunked body at %s" % member.id)
            self.assertEqual(self.revision(), before)
            # The member still serves.
            self.assertEqual(member.get("/healthz").status, 200)

    def test_malformed_http(self):
        before = self.revision()
        r = th.raw_exchange(self.follower.address, b"GARBAGE\r\n\r\n")
        self.check_error(r, 400, "bad_request", "garbage request line")
        big = b"GET /v1/shards HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 64 * 1024 + b"\r\n\r\n"
        r = th.raw_exchange(self.follower.address, big)
        self.assertEqual(r.status, 431, r)
        self.assertEqual(r.json["error"], "header_too_large")
        self.assertEqual(self.revision(), before)


class BadConfigTest(th.ClusterTestCase):
    """tenure-controller with a bad config or bad flags exits non-zero, at
    once, with a first stderr line naming the problem."""

    def run_controller(self, *args):
        p = subprocess.run([th.controller_binary()] + list(args), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20 * th.SLOW)
        return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")

    def good_config(self, **override):
        port = th.free_port()
        fields = {
            "node_id": "c1",
            "data_dir": os.path.join(self.tmp, "data"),
            "listen": "127.0.0.1:%d" % port,
            "peers": "[{id: c1, address: 127.0.0.1:%d}]" % port,
        }
        fields.update(override)
        return "".join("%s: %s\n" % (k, v) for k, v in fields.items() if v is not None)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def check_rejected(self, config_text, must_name, what, data_dir_untouched=True):
        shutil.rmtree(os.path.join(self.tmp, "data"), ignore_errors=True)
        path = self.write("bad.yaml", config_text)
        code, out, err = self.run_controller("--config", path)
        self.assertNotEqual(code, 0, "%s: accepted (stdout %r stderr %r)" % (what, out, err))
        first = err.splitlines()[0] if err else ""
        self.assertIn(must_name, first, "%s: first stderr line %r does not name %r" % (what, first, must_name))
        # One line (CONTRACT.md): the reason, not the usage text after it.
        self.assertEqual(len(err.splitlines()), 1, "%s: stderr is not one line: %r" % (what, err))
        self.assertTrue(first.startswith("tenure-controller:"), first)
        if data_dir_untouched:
            self.assertFalse(os.path.exists(os.path.join(self.tmp, "data")), "%s: data_dir created" % what)

    def test_bad_config_files(self):
        cases = [
            ("unknown top-level key", self.good_config(bogus_key=1), "bogus_key"),
            ("unknown nested key", self.good_config(raft="{heartbeat_ms: 5}"), "raft.heartbeat_ms"),
            ("unknown key in a peer", self.good_config(peers="[{id: c1, address: '127.0.0.1:1', zone: a}]"), "zone"),
            ("wrong type (string for int)", self.good_config(raft="{election_timeout_ms: fast}"),
             "raft.election_timeout_ms"),
            ("wrong type (map for string)", self.good_config(node_id="{a: 1}"), "node_id"),
            ("wrong type (list for map)", self.good_config(auth="[a, b]"), "auth"),
            ("negative number", self.good_config(worker_lease_ms=-5), "worker_lease_ms"),
            ("missing node_id", self.good_config(node_id=None), "node_id"),
            ("missing listen", self.good_config(listen=None), "listen"),
            ("missing data_dir", self.good_config(data_dir=None), "data_dir"),
            ("missing peer address", self.good_config(peers="[{id: c1}]"), "address"),
            ("bad node id", self.good_config(node_id="'bad id'"), "node_id"),
            ("bad listen address", self.good_config(listen="nowhere"), "listen"),
            ("heartbeat not below election timeout",
             self.good_config(raft="{heartbeat_interval_ms: 500, election_timeout_ms: 500}"),
             "raft.heartbeat_interval_ms"),
            ("invalid YAML", "node_id: [c1\n", "YAML"),
        ]
        for what, text, key in cases:
            with self.subTest(what=what):
                self.check_rejected(text, key, what)
        # Known only once the (empty) data_dir was opened: it may be created.
        self.check_rejected(self.good_config(peers=None), '"peers"', "missing peers on first start",
                            data_dir_untouched=False)

    def test_unreadable_config_file(self):
        missing = os.path.join(self.tmp, "missing.yaml")
        code, _, err = self.run_controller("--config", missing)
        self.assertNotEqual(code, 0)
        self.assertIn("missing.yaml", err.splitlines()[0])
        code, _, err = self.run_controller("--config", self.tmp)  # a directory
        self.assertNotEqual(code, 0)
        self.assertIn(self.tmp, err.splitlines()[0])
        if os.geteuid() != 0:  # root reads a mode-000 file anyway
            path = self.write("noperm.yaml", self.good_config())
            os.chmod(path, 0)
            code, _, err = self.run_controller("--config", path)
            self.assertNotEqual(code, 0)
            self.assertIn("noperm.yaml", err.splitlines()[0])

    def test_bad_flags(self):
        for args, reason in [((), "--config"), (("--bogus",), "--bogus"), (("--config",), "--config needs a FILE"),
                             (("--config", "a.yaml", "extra"), "extra"),
                             (("--config", "a.yaml", "--config", "b.yaml"), "--config given twice")]:
            with self.subTest(args=args):
                code, _, err = self.run_controller(*args)
                self.assertNotEqual(code, 0, args)
                self.assertIn(reason, err.splitlines()[0], args)
                self.assertEqual(len(err.splitlines()), 1, "%r: stderr is not one line: %r" % (args, err))
        code, out, _ = self.run_controller("--help")
        self.assertEqual(code, 0)
        self.assertIn("--config", out)
        code, out, _ = self.run_controller("--version")
        self.assertEqual(code, 0)
        self.assertRegex(out, r"^tenure-controller \d+\.\d+\.\d+\n$")

    def test_listen_port_taken(self):
        """A second controller on a port already in use exits non-zero and says so."""
        c = self.make_cluster(n=1)
        leader = c.start()
        path = self.write("dup.yaml", self.good_config(listen=leader.address,
                                                       peers="[{id: c1, address: '%s'}]" % leader.address))
        code, _, err = self.run_controller("--config", path)
        self.assertNotEqual(code, 0)
        self.assertIn(leader.address, err)


if __name__ == "__main__":
    th.main()
