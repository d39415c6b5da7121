#!/usr/bin/env python3
"""Paged lists (CONTRACT.md GET /v1/shards: limit, continue, each page's
revision) and the paced watch catch-up, on a real 3-member group: every
shard seen exactly once through a follower and the leader while writes run,
filters and stale reads page too, bad limits and tokens get 400 naming the
parameter, and a watch from an old revision streams every event in order.
The 1,000,000-shard version is test_scale_paging.py (label "scale")."""

import base64
import json
import os
import subprocess
import sys
import time
import unittest

import tenure_harness as th

SHARDS = 25000
BATCH = 5000


def create_many(member, count, prefix="p-"):
    ids = []
    for first in range(0, count, BATCH):
        batch = ["%s%06d" % (prefix, i) for i in range(first, min(count, first + BATCH))]
        th.create_shards(member, batch, timeout=60, per_request_timeout=30)
        ids.extend(batch)
    return ids


class PagingTest(th.ClusterTestCase):

    def setUp(self):
        super().setUp()
        self.c = self.make_cluster(n=3, worker_lease_ms=600000)
        self.leader = self.c.start()
        self.follower = self.c.followers(self.leader)[0]

    def check_all_once(self, member, expected, limit, path="/v1/shards", writer_prefix="live-"):
        """Lists every page at `member`; checks id order, page bounds, one
        revision per page that never goes back, and each expected id once."""
        seen, revisions, pages = [], [], 0
        for body in th.list_pages(member, path, "shards", limit=limit, timeout=30):
            pages += 1
            self.assertLessEqual(len(body["shards"]), limit or 1000)
            revisions.append(body["revision"])
            seen.extend(s["id"] for s in body["shards"])
        self.assertEqual(seen, sorted(seen), "pages not in id order")
        self.assertEqual(len(seen), len(set(seen)), "a shard listed twice")
        self.assertEqual(revisions, sorted(revisions), "a page older than the one before it")
        missing = set(expected) - set(seen)
        self.assertEqual(sorted(missing)[:5], [], "%d shards present throughout never listed" % len(missing))
        extra = {s for s in seen if not s.startswith(writer_prefix)} - set(expected)
        self.assertEqual(sorted(extra)[:5], [])
        return pages, seen

    def test_list_every_page_while_writes_run(self):
        ids = create_many(self.leader, SHARDS)
        term0 = self.leader.cluster_view()["term"]
        writer = th.Writer(self.c, "live-")
        writer.start()
        try:
            for member in (self.follower, self.leader):
                # Full pages of the default 1000 until the last; never an empty one.
                pages, seen = self.check_all_once(member, ids, limit=None)
                self.assertEqual(pages, (len(seen) + 999) // 1000)
                pages, seen = self.check_all_once(member, ids, limit=10000)
                self.assertEqual(pages, (len(seen) + 9999) // 10000)
                self.check_all_once(member, ids, limit=7000, path="/v1/shards?consistency=stale")
        finally:
            writer.stop()
        self.assertEqual(writer.errors, [])
        self.assertGreater(len(writer.acked), 0)
        # The writer's shards acknowledged before a listing started are in the next one.
        acked = list(writer.acked)
        _, now = th.list_shards(self.follower, limit=10000)
        self.assertEqual(sorted(set(acked) - set(now))[:5], [])
        for m in self.c.all():
            self.assertEqual(m.cluster_view()["term"], term0, "leader changed while listing")
        # The strand's time per page is visible.
        count = self.leader.metric("tenure_list_page_strand_seconds_count")
        self.assertIsNotNone(count)
        self.assertGreater(count, 0)

    def test_worker_filter_workers_and_moves_page(self):
        for w in range(12):
            r = self.leader.post("/v1/workers/w%02d/register" % w, {"address": "127.0.0.1:9", "zone": "z1"})
            self.assertStatus(r, 200)
        ids = create_many(self.leader, 3000)

        def placed():
            _, shards = th.list_shards(self.leader, limit=10000)
            return all(s["worker"] for s in shards.values()) and shards
        shards = th.wait_until(placed, 30, "every shard placed")
        by_worker = {}
        for s in shards.values():
            by_worker.setdefault(s["worker"], set()).add(s["id"])
        for w, mine in by_worker.items():
            listed = []
            for body in th.list_pages(self.follower, "/v1/shards?worker=" + w, "shards", limit=37):
                self.assertTrue(all(s["worker"] == w for s in body["shards"]), body["shards"][:3])
                listed.extend(s["id"] for s in body["shards"])
            self.assertEqual(listed, sorted(mine))
        workers = []
        for body in th.list_pages(self.follower, "/v1/workers", "workers", limit=5):
            self.assertLessEqual(len(body["workers"]), 5)
            self.assertIn("revision", body)
            workers.extend(body["workers"])
        self.assertEqual([w["id"] for w in workers], ["w%02d" % i for i in range(12)])
        self.assertEqual(sum(w["shards"] for w in workers), len(ids))
        body = next(th.list_pages(self.follower, "/v1/rebalance", "moves", limit=3))
        self.assertEqual(body["moves"], [])
        self.assertIsNone(body["continue"])
        # A placement pass's answer lists at most 10,000 moves and says how many there are.
        r = self.follower.post("/v1/rebalance?dry_run=true")
        self.assertStatus(r, 200)
        self.assertEqual(r.json["moves_total"], len(r.json["moves"]))
        self.assertTrue(r.json["dry_run"])

    def test_bad_limit_and_continue_get_400_naming_them(self):
        create_many(self.leader, 30)
        first = self.leader.get("/v1/shards?limit=10").json
        token = first["continue"]
        self.assertIsInstance(token, str)
        cases = [
            ("/v1/shards?limit=0", "limit"), ("/v1/shards?limit=10001", "limit"), ("/v1/shards?limit=-3", "limit"),
            ("/v1/shards?limit=ten", "limit"), ("/v1/shards?limit=", "limit"),
            ("/v1/workers?limit=99999", "limit"), ("/v1/rebalance?limit=0", "limit"),
            ("/v1/shards?continue=garbage", "continue"), ("/v1/shards?continue=", "continue"),
            ("/v1/shards?continue=" + token[:-2], "continue"),
            ("/v1/shards?worker=w1&continue=" + token, "continue"),   # issued without the filter
            ("/v1/workers?continue=" + token, "continue"),            # issued by another list
            ("/v1/shards?continue=" + base64.urlsafe_b64encode(
                json.dumps({"v": 1, "l": "shards", "f": "", "a": "../x", "r": 1}).encode()).decode().rstrip("="),
             "continue"),
        ]
        for path, field in cases:
            for m in (self.leader, self.follower):
                r = m.get(path)
                self.assertStatus(r, 400, "bad_request")
                self.assertIn('"%s"' % field, r.json["message"], (path, r))
        # The token works at any member, and with a different page size.
        rest = self.follower.get("/v1/shards?limit=100&continue=" + token).json
        self.assertEqual(len(rest["shards"]), 20)
        self.assertIsNone(rest["continue"])
        self.assertEqual([s["id"] for s in first["shards"] + rest["shards"]], ["p-%06d" % i for i in range(30)])

    def test_tenurectl_follows_every_page(self):
        ids = create_many(self.leader, 2500)
        ctl = os.path.join(th.BIN_DIR, "tenurectl")
        base = [ctl, "--endpoints", self.follower.address]
        out = subprocess.run(base + ["shards", "list", "--limit", "700"], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        lines = out.stdout.splitlines()
        self.assertTrue(lines[0].startswith("revision: "), lines[:3])
        header = lines.index(next(l for l in lines if l.startswith("ID ")))
        rows = [l.split()[0] for l in lines[header + 1:]]
        self.assertEqual(rows, ids)  # every page, once, in order, one header
        out = subprocess.run(base + ["-o", "json", "shards", "list", "--limit", "999"], capture_output=True,
                             text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        doc = json.loads(out.stdout)
        self.assertEqual([s["id"] for s in doc["shards"]], ids)
        self.assertIsInstance(doc["revision"], int)
        out = subprocess.run(base + ["shards", "list", "--limit", "0"], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 1)
        self.assertIn('"limit"', out.stderr)

    def test_watch_catch_up_from_an_old_revision_is_whole_and_ordered(self):
        rev0 = self.leader.cluster_view()["revision"]
        r = self.leader.post("/v1/workers/w1/register", {"address": "127.0.0.1:9", "zone": "z1"})
        self.assertStatus(r, 200)
        ids = create_many(self.leader, SHARDS)

        def placed():
            v = self.follower.cluster_view()
            return v["revision"] >= rev0 + SHARDS and v
        th.wait_until(placed, 60, "every shard granted")
        for member, extra in ((self.follower, ""), (self.leader, "&worker=w1")):
            w = th.WatchStream(member.address, "/v1/watch?since=%d%s" % (rev0, extra), timeout=30)
            self.addCleanup(w.close)
            self.assertEqual(w.status, 200)
            t0 = time.monotonic()
            grants, last = set(), rev0
            while len(grants) < SHARDS:
                e = w.next_line(timeout=30)
                self.assertNotIn("error", e, e)
                self.assertGreater(e["revision"], last, "events out of order")
                last = e["revision"]
                if e["type"] == "grant":
                    grants.add(e["shard"])
            sys.stderr.write("watch catch-up of %d grants at %s: %.2f s\n" % (SHARDS, member.id, time.monotonic() - t0))
            self.assertEqual(grants, set(ids))
            # Live events still follow the caught-up stream.
            th.create_shards(self.leader, ["after-catch-up"])
            while True:
                e = w.next_line(timeout=30)
                if e.get("shard") == "after-catch-up" and e["type"] == "grant":
                    break


if __name__ == "__main__":
    th.main()
