#!/usr/bin/env python3
"""Hostile input (issue 8 §7): a table of malformed, oversized and absurd
requests to every route of the controllers and the agents, and garbage to
the peer routes. Each gets a 4xx (503 only where the contract says so), and
afterwards every process is alive, the group commits through every member,
/metrics did not grow with the junk, and killed-and-restarted members come
back."""

import random
import socket
import time

import fleet_harness as fh
import tenure_harness as th

TEN_MIB = 10 * 1024 * 1024
WATCH_CAP = 8


def req(method, path, body=b"", headers=None):
    """Raw request bytes: method and path go out exactly as given (bytes)."""
    if isinstance(method, str):
        method = method.encode()
    if isinstance(path, str):
        path = path.encode()
    if isinstance(body, str):
        body = body.encode()
    head = [method + b" " + path + b" HTTP/1.1", b"Host: x", b"Connection: close"]
    for k, v in (headers or {}).items():
        head.append((k.encode() if isinstance(k, str) else k) + b": " + (v.encode() if isinstance(v, str) else v))
    if body or method in (b"POST", b"PUT"):
        head.append(b"Content-Type: application/json")
        head.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def controller_cases():
    """(what, raw request) to every controller route; each must get a 4xx."""
    big = b"9" * 400
    c = [
        # POST /v1/shards: bad JSON, wrong types, huge and negative numbers, bad UTF-8.
        ("create: not JSON", req("POST", "/v1/shards", "{{{")),
        ("create: truncated", req("POST", "/v1/shards", '{"ids": ["a", ')),
        ("create: ids a number", req("POST", "/v1/shards", '{"ids": 7}')),
        ("create: count huge", req("POST", "/v1/shards", b'{"count": ' + big + b'}')),
        ("create: count 2^64", req("POST", "/v1/shards", '{"count": 18446744073709551616}')),
        ("create: count negative", req("POST", "/v1/shards", '{"count": -5}')),
        ("create: count float", req("POST", "/v1/shards", '{"count": 1e300}')),
        ("create: invalid UTF-8 in body", req("POST", "/v1/shards", b'{"ids": ["\xff\xfe\xfd"]}')),
        ("create: NUL in id", req("POST", "/v1/shards", '{"ids": ["a\\u0000b"]}')),
        ("create: deep nesting", req("POST", "/v1/shards", "[" * 50000 + "]" * 50000)),
        ("create: 100k ids of junk", req("POST", "/v1/shards", '{"ids": [' + ",".join(["1"] * 100000) + "]}")),
        # Lists: bad query values.
        ("list: limit negative", req("GET", "/v1/shards?limit=-1")),
        ("list: limit huge", req("GET", "/v1/shards?limit=" + "9" * 50)),
        ("list: continue garbage", req("GET", "/v1/shards?continue=%00%FF%FE")),
        ("list: continue base64 junk", req("GET", "/v1/shards?continue=AAAAAAAAAAAA")),
        ("list: worker not UTF-8", req("GET", "/v1/shards?worker=%FF")),
        ("workers: limit junk", req("GET", "/v1/workers?limit=abc")),
        # Ids in paths.
        ("get: id not UTF-8", req("GET", "/v1/shards/%FF")),
        ("get: id too long", req("GET", "/v1/shards/" + "x" * 129)),
        ("get: id with NUL", req("GET", "/v1/shards/a%00b")),
        ("delete: bad id", req("DELETE", "/v1/shards/%C0%AF")),
        ("history: bad id", req("GET", "/v1/shards/bad%20id/history")),
        ("move: to a number", req("POST", "/v1/shards/s-0/move", '{"to": 5}')),
        ("move: not JSON", req("POST", "/v1/shards/s-0/move", "\x00\x01\x02")),
        ("move: bad shard", req("POST", "/v1/shards/%FF%FF/move", '{"to": "w1"}')),
        # Workers and the agents' calls.
        ("drain: bad id", req("POST", "/v1/workers/%FF/drain")),
        ("undrain: body an array", req("POST", "/v1/workers/w1/undrain", "[]")),
        ("forget: bad id", req("DELETE", "/v1/workers/bad%20id")),
        ("register: address a number", req("POST", "/v1/workers/w9/register", '{"address": 5}')),
        ("register: address 300 bytes", req("POST", "/v1/workers/w9/register",
                                            '{"address": "%s:1"}' % ("h" * 300))),
        ("register: address without port", req("POST", "/v1/workers/w9/register", '{"address": "nohost"}')),
        ("register: capacity negative", req("POST", "/v1/workers/w9/register",
                                            '{"address": "127.0.0.1:1", "capacity": -1}')),
        ("register: capacity huge", req("POST", "/v1/workers/w9/register",
                                        b'{"address": "127.0.0.1:1", "capacity": ' + big + b'}')),
        ("register: zone control chars", req("POST", "/v1/workers/w9/register",
                                             '{"address": "127.0.0.1:1", "zone": "a\\u0001b"}')),
        ("register: unknown field", req("POST", "/v1/workers/w9/register",
                                        '{"address": "127.0.0.1:1", "admin": true}')),
        ("heartbeat: revision negative", req("POST", "/v1/workers/w1/heartbeat", '{"revision": -1}')),
        ("heartbeat: revision a string", req("POST", "/v1/workers/w1/heartbeat", '{"revision": "x"}')),
        ("release: shards a string", req("POST", "/v1/workers/w1/release", '{"shards": "x"}')),
        ("release: bad items", req("POST", "/v1/workers/w1/release", '{"shards": [{"shard": 1}]}')),
        ("prepared: shards an object", req("POST", "/v1/workers/w1/prepared", '{"shards": {}}')),
        ("prepared: epoch negative", req("POST", "/v1/workers/w1/prepared",
                                         '{"shards": [{"shard": "s-1", "epoch": -2}]}')),
        ("prepared: shard id 129 chars", req("POST", "/v1/workers/w1/prepared",
                                             '{"shards": [{"shard": "%s", "epoch": 2}]}' % ("s" * 129))),
        ("prepared: 100,001 items", req("POST", "/v1/workers/w1/prepared",
                                        '{"shards": [%s]}' % ",".join(['{"shard":"a","epoch":1}'] * 100001))),
        ("register: prepares a string", req("POST", "/v1/workers/w9/register",
                                            '{"address": "127.0.0.1:1", "prepares": "yes"}')),
        ("leave: bad id", req("POST", "/v1/workers/%FF/leave")),
        ("rebalance: dry_run junk", req("POST", "/v1/rebalance?dry_run=maybe")),
        # Watch and membership.
        ("watch: since junk", req("GET", "/v1/watch?since=abc")),
        ("watch: worker not UTF-8", req("GET", "/v1/watch?worker=%FF")),
        ("members: id a list", req("POST", "/v1/members", '{"id": [], "address": "127.0.0.1:1"}')),
        ("members: remove bad id", req("DELETE", "/v1/members/bad%20id")),
        ("transfer: to an object", req("POST", "/v1/members/transfer-leadership", '{"to": {}}')),
        # Methods, sizes, framing.
        ("PATCH /v1/cluster", req("PATCH", "/v1/cluster", "{}")),
        ("unknown method", req("BREW", "/v1/shards")),
        ("unknown method, unknown path", req("XYZZY", "/nowhere")),
        ("invalid UTF-8 in a header", req("GET", "/v1/cluster", headers={"X-Junk": b"\xff\xfe"})),
        ("invalid UTF-8 in Idempotency-Key", req("POST", "/v1/shards", '{"ids": ["hk"]}',
                                                 headers={"Idempotency-Key": b"\xc0\xaf"})),
        ("100 KB header", req("GET", "/v1/cluster", headers={"X-Big": "a" * 100 * 1024})),
        ("100 KB URL", req("GET", "/v1/shards/" + "u" * 100 * 1024)),
        # Garbage ends with an empty line: the parser waits for a header's end
        # (bytes without one are a slow client, closed after the read timeout).
        ("raw garbage", bytes(random.Random(7).getrandbits(8) for _ in range(4096)) + b"\r\n\r\n"),
        ("no request line", b"\r\n\r\n\r\n\r\n"),
        ("bad Content-Length", b"POST /v1/shards HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n"),
        ("two Content-Lengths", b"POST /v1/shards HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                                b"Content-Length: 3\r\n\r\n{}"),
        ("bad chunk size", b"POST /v1/shards HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        # The peer routes: garbage and truncated bodies.
        ("raft messages: garbage", req("POST", "/raft/messages", bytes(range(256)) * 8)),
        ("raft messages: truncated", req("POST", "/raft/messages", b"\x02\x00\x00")),
        ("raft messages: empty", req("POST", "/raft/messages", b"")),
        ("snapshot chunk: no params", req("POST", "/raft/snapshot/chunk", b"abc")),
        ("snapshot chunk: offset junk", req("POST", "/raft/snapshot/chunk?transfer=t&offset=-1", b"abc",
                                            headers={"Tenure-From": "c9"})),
        ("snapshot done: garbage meta", req("POST", "/raft/snapshot/done?transfer=t&total=3", b"\xff" * 64,
                                            headers={"Tenure-From": "c9"})),
    ]
    return c


def agent_cases(shard, epoch):
    """(what, raw request) to every agent route; each must get a 4xx."""
    e = {"Tenure-Epoch": str(epoch)}
    return [
        ("put: key not UTF-8, right epoch", req("PUT", "/v1/data/%s/%%FF" % shard, "v", headers=e)),
        ("put: key overlong UTF-8", req("PUT", "/v1/data/%s/%%C0%%AF" % shard, "v", headers=e)),
        ("get: key not UTF-8", req("GET", "/v1/data/%s/%%FF" % shard)),
        ("put: no epoch", req("PUT", "/v1/data/%s/k" % shard, "v")),
        ("put: epoch negative", req("PUT", "/v1/data/%s/k" % shard, "v", headers={"Tenure-Epoch": "-1"})),
        ("put: epoch 2^64", req("PUT", "/v1/data/%s/k" % shard, "v",
                                headers={"Tenure-Epoch": "18446744073709551616"})),
        ("put: epoch not UTF-8", req("PUT", "/v1/data/%s/k" % shard, "v", headers={"Tenure-Epoch": b"\xff"})),
        ("put: key 2000 bytes", req("PUT", "/v1/data/%s/%s" % (shard, "k" * 2000), "v", headers=e)),
        ("put: bad shard", req("PUT", "/v1/data/bad%20shard/k", "v", headers=e)),
        ("fence: not JSON", req("POST", "/v1/fence", "{")),
        ("fence: epoch huge", req("POST", "/v1/fence", '{"shard": "%s", "epoch": 1e400}' % shard)),
        ("fence: epoch negative", req("POST", "/v1/fence", '{"shard": "%s", "epoch": -1}' % shard)),
        ("fence: shard a list", req("POST", "/v1/fence", '{"shard": [], "epoch": 1}')),
        ("fence: invalid UTF-8", req("POST", "/v1/fence", b'{"shard": "\xff", "epoch": 1}')),
        ("grants: unknown method", req("BREW", "/v1/grants")),
        ("grants: POST", req("POST", "/v1/grants", "{}")),
        ("unknown path", req("GET", "/v1/nothing")),
        ("100 KB header", req("GET", "/v1/grants", headers={"X-Big": "a" * 100 * 1024})),
        ("raw garbage", bytes(random.Random(8).getrandbits(8) for _ in range(4096)) + b"\r\n\r\n"),
    ]


class HostileTest(fh.FleetTestCase):

    def setUp(self):
        super().setUp()
        self.fleet, _ = self.start_fleet(shards=8, agents=2,
                                         controller_yaml="limits: {max_watch_streams: %d}\n" % WATCH_CAP)
        self.cluster = self.fleet.cluster

    def check_4xx(self, address, what, raw, body_after=None, allowed=()):
        try:
            r = th.raw_exchange(address, raw, body_after=body_after)
        except OSError as e:
            self.fail("%s at %s: no answer (%s)" % (what, address, e))
        ok = 400 <= r.status < 500 or r.status in allowed
        self.assertTrue(ok, "%s at %s: %r" % (what, address, r))
        if r.body:
            self.assertIn(b'"error"', r.body, "%s: not a JSON error: %r" % (what, r))
        return r

    def metric_lines(self, member):
        return len(member.get("/metrics", timeout=5).body.splitlines())

    def test_every_route_refuses_junk_and_the_group_survives(self):
        leader = self.cluster.stable_leader()
        follower = self.cluster.followers(leader)[0]
        rev_before, _ = th.list_shards(leader)
        for member in (leader, follower):
            for what, raw in controller_cases():
                with self.subTest(member=member.id, what=what):
                    self.check_4xx(member.address, what, raw)
            with self.subTest(member=member.id, what="10 MiB body"):
                head = (b"POST /v1/shards HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % TEN_MIB)
                r = self.check_4xx(member.address, "10 MiB body", head, body_after=b"[" * TEN_MIB)
                self.assertEqual(r.status, 413)
        rev_after, _ = th.list_shards(leader)
        self.assertEqual(rev_after, rev_before, "a refused request changed the state")

        for agent in self.fleet.running():
            grants = agent.get("/v1/grants").json["grants"]
            self.assertTrue(grants, "%s holds nothing" % agent.id)
            shard, epoch = grants[0]["shard"], grants[0]["epoch"]
            for what, raw in agent_cases(shard, epoch):
                with self.subTest(agent=agent.id, what=what):
                    self.check_4xx(agent.address, what, raw)
            with self.subTest(agent=agent.id, what="10 MiB value"):
                head = (b"PUT /v1/data/%s/big HTTP/1.1\r\nHost: x\r\nTenure-Epoch: %d\r\n"
                        b"Content-Length: %d\r\n\r\n" % (shard.encode(), epoch, TEN_MIB))
                r = self.check_4xx(agent.address, "10 MiB value", head, body_after=b"v" * TEN_MIB)
                self.assertEqual(r.status, 413)
            self.assertEqual(agent.get_data(shard, "big").status, 404)

        # Random methods do not grow /metrics: the method label is a closed set
        # (before the fix, 300 of them added 329 lines).
        self.check_4xx(follower.address, "method FIRST", req("FIRST", "/v1/shards"))
        self.metric_lines(follower)  # a scrape's own series shows from the next scrape on
        before_lines = self.metric_lines(follower)
        rnd = random.Random(42)
        for _ in range(300):
            m = "".join(rnd.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rnd.randint(3, 12)))
            self.check_4xx(follower.address, "method " + m, req(m, "/v1/shards"))
        grown = self.metric_lines(follower) - before_lines
        self.assertLessEqual(grown, 0, "/metrics grew by %d lines with 300 random methods" % grown)

        self.check_everyone_alive_and_committing()

    def test_slowloris_and_watch_cap(self):
        leader = self.cluster.stable_leader()
        follower = self.cluster.followers(leader)[0]
        host, port = follower.address.rsplit(":", 1)
        # Slow clients: partial requests that never finish are closed after
        # the read timeout, and the member serves others meanwhile.
        slow = []
        for _ in range(20):
            s = socket.create_connection((host, int(port)), timeout=5)
            s.sendall(b"GET /v1/cluster HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            slow.append(s)
        self.assertEqual(follower.get("/healthz").status, 200)
        deadline = time.monotonic() + 30 * th.SLOW
        for s in slow:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                while s.recv(4096):
                    pass  # whatever it says, it must end with a close
            except socket.timeout:
                self.fail("a partial request held its connection past the read timeout")
            except OSError:
                pass
            s.close()

        # Watch streams are capped per member: past the cap, 503 busy with Retry-After.
        watches, refused = [], None
        for _ in range(WATCH_CAP + 1):
            s = socket.create_connection((host, int(port)), timeout=10)
            s.sendall(b"GET /v1/watch HTTP/1.1\r\nHost: x\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    break
                head += chunk
            if head.startswith(b"HTTP/1.1 503"):
                refused = head
                s.close()
                break
            self.assertTrue(head.startswith(b"HTTP/1.1 200"), head[:200])
            watches.append(s)
        self.assertIsNotNone(refused, "%d watches and no refusal" % len(watches))
        self.assertIn(b"busy", refused)
        self.assertIn(b"retry-after: 1", refused.lower())
        self.assertEqual(follower.metric("tenure_watch_streams_max"), WATCH_CAP)
        self.assertGreaterEqual(follower.metric("tenure_watch_streams_refused_total"), 1)
        for s in watches:
            s.close()
        th.wait_until(lambda: follower.metric("tenure_watch_streams") < WATCH_CAP, 10, "closed watches forgotten")
        self.check_everyone_alive_and_committing()

    def check_everyone_alive_and_committing(self):
        for p in list(self.cluster.all()) + list(self.fleet.all()):
            self.assertTrue(p.alive(), "%s died:\n%s" % (p.id, p.log_tail()))
        for m in self.cluster.all():
            self.assertEqual(m.metric("tenure_escaped_exceptions_total"), 0, m.id)
        # The group commits through every member (followers forward).
        for i, m in enumerate(self.cluster.all()):
            th.create_shards(m, ["after-%s-%d" % (m.id, i)])
        # A follower and an agent killed and restarted come back.
        leader = self.cluster.stable_leader()
        follower = self.cluster.followers(leader)[0]
        follower.kill()
        follower.start()
        agent = self.fleet.running()[0]
        agent.kill()
        agent.restart()
        th.create_shards(follower, ["after-restart"])
        self.fleet.wait_agreement(timeout=30)


if __name__ == "__main__":
    th.main()
