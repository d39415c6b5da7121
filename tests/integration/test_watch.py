#!/usr/bin/env python3
"""GET /v1/watch: an ndjson stream of the changes after a revision, served by
any member from its applied state; resumable from a later revision; 410 for
a revision older than the history kept."""

import http.client
import json
import socket
import threading
import time
import unittest

import tenure_harness as th


class WatchTest(th.ClusterTestCase):

    def setUp(self):
        super().setUp()
        # Long leases: the fake worker below never heartbeats again and must
        # not be declared dead during the test.
        self.c = self.make_cluster(n=3, worker_lease_ms=120000)
        self.leader = self.c.start()
        self.follower = self.c.followers(self.leader)[0]
        # A worker for the placement loop to grant shards to (the test plays its agent).
        r = self.follower.post("/v1/workers/w1/register", {"address": "127.0.0.1:9", "zone": "z1"})
        self.assertStatus(r, 200)

    def open_watch(self, member, since, extra=""):
        w = th.WatchStream(member.address, "/v1/watch?since=%d%s" % (since, extra))
        self.addCleanup(w.close)
        return w

    def read_grants(self, w, n):
        out = []
        while len(out) < n:
            e = w.next_line()
            self.assertNotIn("error", e, "error line in the stream: %r" % e)
            if e["type"] == "grant":
                out.append(e)
        return out

    def test_stream_resume_and_filter(self):
        rev0 = th.list_shards(self.follower)[0]
        w = self.open_watch(self.follower, rev0)
        self.assertEqual(w.status, 200)
        self.assertTrue(w.headers.get("content-type", "").startswith("application/x-ndjson"), w.headers)

        th.create_shards(self.leader, ["a", "b", "c"])
        grants = self.read_grants(w, 3)
        self.assertEqual(sorted(e["shard"] for e in grants), ["a", "b", "c"])
        for e in grants:
            self.assertEqual((e["worker"], e["epoch"]), ("w1", 1), e)
            self.assertGreater(e["revision"], rev0)
        revs = [e["revision"] for e in grants]
        self.assertEqual(revs, sorted(revs))
        self.assertEqual(len(set(revs)), 3)

        # A delete: w1's grant (epoch 1) is revoked, then the shard is gone at epoch 2
        # (a change of owner to nobody raises the epoch by one).
        self.assertStatus(self.leader.delete("/v1/shards/a"), 200)
        revoke = w.next_line()
        self.assertEqual((revoke["type"], revoke["shard"], revoke["worker"], revoke["epoch"]),
                         ("revoke", "a", "w1", 1), revoke)
        deleted = w.next_line()
        self.assertEqual((deleted["type"], deleted["shard"], deleted["epoch"]), ("shard_deleted", "a", 2), deleted)
        self.assertGreater(deleted["revision"], revoke["revision"])
        self.assertGreater(deleted["revision"], revs[-1])

        # Resume from the first grant's revision, at another member: exactly the later events, in order.
        other = [m for m in self.c.all() if m.id != self.follower.id][0]
        w2 = self.open_watch(other, grants[0]["revision"])
        self.assertEqual(w2.status, 200)
        seen = []
        while not seen or seen[-1]["revision"] < deleted["revision"]:
            seen.append(w2.next_line())
        self.assertEqual([e["revision"] for e in seen[:2]], revs[1:])
        self.assertTrue(all(e["revision"] > grants[0]["revision"] for e in seen))
        self.assertEqual(seen[-1]["type"], "shard_deleted")

        # Filtered by worker: from the start, w1's stream holds exactly w1's
        # grants and the revoke, and nothing of another worker.
        w3 = self.open_watch(self.leader, rev0, "&worker=w1")
        got = []
        while not (got and got[-1]["type"] == "revoke"):
            got.append(w3.next_line())
        self.assertEqual([(e["type"], e["shard"]) for e in got],
                         [("grant", e["shard"]) for e in grants] + [("revoke", "a")])
        self.assertEqual({e["worker"] for e in got}, {"w1"})
        # A stream filtered on a worker that registers later shows its
        # registration, and none of w1's changes before it.
        w4 = self.open_watch(self.follower, rev0, "&worker=w2")
        self.assertStatus(self.leader.post("/v1/workers/w2/register", {"address": "127.0.0.1:10"}), 200)
        e = w4.next_line()
        self.assertEqual((e["type"], e["worker"], e.get("state")), ("worker", "w2", "alive"), e)
        self.assertGreater(e["revision"], deleted["revision"])

    def test_filtered_watch_from_a_revision_ahead_skips_what_is_older(self):
        # A worker's watch from a revision not reached yet: nothing at or
        # before it, then exactly the worker's later events. (The hub hands
        # a worker's watchers its new events from one pass over them; this
        # watcher must not get the ones before its `since`.)
        rev = th.list_shards(self.leader)[0]
        since = rev + 4
        ahead = self.open_watch(self.leader, since, "&worker=w1")
        everything = self.open_watch(self.leader, rev)
        seen = []
        for i in range(1, 6):
            # One shard at a time, each granted before the next is created.
            th.create_shards(self.leader, ["ahead-%d" % i])
            seen += self.read_grants(everything, 1)
        self.assertTrue(any(e["revision"] <= since for e in seen), "no grant at or before since: %r" % seen)
        later = [e for e in seen if e["revision"] > since]
        got = self.read_grants(ahead, len(later))
        self.assertEqual([e["revision"] for e in got], [e["revision"] for e in later])

    def test_each_worker_stream_is_the_whole_stream_restricted_to_its_worker(self):
        # Shards created in back-to-back batches are granted over three
        # workers while their streams are still writing earlier passes. A
        # stream that is mid-pass when new events apply catches up from its
        # worker's own log in the hub (fleet_load: rescanning every event
        # for each such stream was O(streams x events)); whatever path a
        # stream takes, it must hold exactly the unfiltered stream's events
        # of its worker, each once, in order.
        for wid in ("w2", "w3"):
            self.assertStatus(self.follower.post("/v1/workers/%s/register" % wid, {"address": "127.0.0.1:9"}), 200)
        rev = th.list_shards(self.leader)[0]
        everything = self.open_watch(self.follower, rev)
        filtered = {(m.id, wid): self.open_watch(m, rev, "&worker=" + wid)
                    for m in (self.leader, self.follower) for wid in ("w1", "w2", "w3")}
        ids = ["batch-%03d" % i for i in range(1500)]
        for k in range(0, len(ids), 50):
            th.create_shards(self.leader, ids[k:k + 50])
        th.wait_until(lambda: all(s["state"] == "active" for s in th.list_shards(self.leader)[1].values()), 30,
                      "every shard granted")
        # Then deleted from 16 threads at once: commits a millisecond or so
        # apart, each with a revoke for one worker's stream, so that some
        # land while that stream still writes the one before.
        def delete_some(part):
            for sid in part:
                self.assertStatus(self.leader.delete("/v1/shards/" + sid), 200)
        deleters = [threading.Thread(target=delete_some, args=(ids[k::16],)) for k in range(16)]
        for t in deleters:
            t.start()
        for t in deleters:
            t.join(60)
        end = th.list_shards(self.follower)[0]
        th.wait_until(lambda: self.follower.cluster_view()["revision"] >= end, 10, "the follower applied everything")
        seen = []
        while not seen or seen[-1]["revision"] < end:
            e = everything.next_line()
            if e["type"] != "progress":
                seen.append(e)
        self.assertEqual(sum(e["type"] == "grant" for e in seen), len(ids))
        self.assertEqual(sum(e["type"] == "revoke" for e in seen), len(ids))
        for (member, wid), stream in filtered.items():
            want = [e for e in seen if e.get("worker") == wid]
            self.assertGreater(len(want), 100, "placement gave %s too few shards to test anything" % wid)
            got = []
            while len(got) < len(want):
                e = stream.next_line()
                self.assertNotIn("error", e, "error line in the stream: %r" % e)
                if e["type"] != "progress":
                    got.append(e)
            self.assertEqual(got, want, "%s's stream at %s" % (wid, member))

    def test_a_slow_readers_worker_stream_is_paced_then_catches_up_whole(self):
        # A reader with a 4 KB receive buffer that reads nothing while its
        # worker is granted 20,000 shards: past 1 MiB of unsent lines the hub
        # stops making passes for it (paced) and resumes once its socket
        # takes some. Read at last, its stream must be exactly the unfiltered
        # stream's events of its worker, each once, in order (no pass lost
        # or repeated across the pause, whether it resumes from its
        # worker's log in the hub or by scanning).
        rev = th.list_shards(self.leader)[0]
        host, port = self.follower.address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=60 * th.SLOW)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.connect((host, int(port)))
        conn.sock = sock
        self.addCleanup(conn.close)
        conn.request("GET", "/v1/watch?since=%d&worker=w1" % rev)
        slow = conn.getresponse()
        self.assertEqual(slow.status, 200)
        everything = self.open_watch(self.follower, rev)
        ids = ["slow-%05d" % i for i in range(20000)]
        for k in range(0, len(ids), 2000):
            th.create_shards(self.leader, ids[k:k + 2000])
        th.wait_until(lambda: all(s["state"] == "active" for s in th.list_shards(self.leader)[1].values()), 60,
                      "every shard granted")
        end = th.list_shards(self.follower)[0]
        seen = []
        while not seen or seen[-1]["revision"] < end:
            seen.append(everything.next_line())
        want = [e for e in seen if e.get("worker") == "w1"]
        self.assertEqual(sum(e["type"] == "grant" for e in want), len(ids))
        got = []
        while len(got) < len(want):
            e = json.loads(slow.readline().decode("utf-8"))
            self.assertNotIn("error", e, "the slow stream was cut off: %r" % e)
            if e["type"] != "progress":
                got.append(e)
        self.assertEqual([e["revision"] for e in got], [e["revision"] for e in want])
        self.assertEqual(got, want)

    def test_watch_from_now_without_since(self):
        w = th.WatchStream(self.follower.address, "/v1/watch")
        self.addCleanup(w.close)
        self.assertEqual(w.status, 200)
        th.create_shards(self.leader, ["late"])
        e = self.read_grants(w, 1)[0]
        self.assertEqual(e["shard"], "late")

    def test_idle_streams_opened_together_get_their_progress_lines_apart(self):
        # An idle stream gets a progress line within 5 s of its last line,
        # after 4-5 s fixed per stream: streams that went idle together (a
        # fleet's grants delivered at once) must not all get theirs in the
        # same round (10,000 at once stalled every member, fleet_load).
        rev = th.list_shards(self.follower)[0]
        streams = [self.open_watch(self.follower, rev) for _ in range(12)]
        opened = time.monotonic()
        first = [None] * len(streams)

        def read_until_progress(k):
            while True:
                line = streams[k].response.readline()
                if not line:
                    return
                if json.loads(line.decode("utf-8")).get("type") == "progress":
                    first[k] = time.monotonic() - opened
                    return

        readers = [threading.Thread(target=read_until_progress, args=(k,), daemon=True) for k in range(len(streams))]
        for t in readers:
            t.start()
        for t in readers:
            t.join(10 * th.SLOW)
        self.assertNotIn(None, first, "a stream got no progress line")
        self.assertLess(max(first), 5.5 * th.SLOW, "a stream idle past 5 s: %r" % first)
        self.assertGreater(min(first), 3.5, "a progress line before 4 s of idleness: %r" % first)
        self.assertGreater(max(first) - min(first), 0.3, "the streams' progress lines came together: %r" % first)

    def test_compacted_revision_410(self):
        # A group that keeps only 16 events (watch_events_kept): once more
        # changes happened, a watch from an older revision gets 410 with the
        # revision to list from, and a watch from there streams again.
        c = self.make_cluster(n=3, name="small-history")
        for m in c.all():
            m.extra_yaml = "watch_events_kept: 16\n"
        leader = c.start()
        since = leader.cluster_view()["revision"]
        # 20 deletions are 20 shard_deleted events: more than the 16 kept,
        # whatever else happens meanwhile.
        th.create_shards(leader, ["x%d" % i for i in range(20)])
        for i in range(20):
            self.assertStatus(leader.delete("/v1/shards/x%d" % i), 200)
        follower = c.followers(leader)[0]
        th.wait_until(lambda: follower.cluster_view()["revision"] == leader.cluster_view()["revision"], 10,
                      "follower caught up")
        r = follower.get("/v1/watch?since=%d" % since, timeout=5)
        self.assertEqual(r.status, 410, r.body)
        body = r.json
        self.assertEqual(body["error"], "compacted")
        self.assertGreater(body["compact_revision"], since)
        w = self.open_watch(follower, body["compact_revision"])
        self.assertEqual(w.status, 200)


if __name__ == "__main__":
    th.main()
