#!/usr/bin/env python3
"""Issue 8's scale proof for reads: with 1,000,000 shards, list them all
(every page) through a follower and through the leader while writes run;
no leader change, every shard seen exactly once, and the write p99 meanwhile
is reported, with the strand's time per page (from
tenure_list_page_strand_seconds), the time to list everything and the
leader's resident memory. ctest labels "integration" and "scale" (about
15 s and 0.8 GB: docs/performance.md); TENURE_SCALE_SHARDS sets a smaller
count for a quick try.

The group runs with the contract's default timing (heartbeat 100 ms,
election 1000 ms), the setting in which whole-state lists deposed the
leader, and no snapshot during the run: taking one of 1,000,000 shards is a
strand stall of its own, measured elsewhere, not a read's."""

import os
import time

import scale_harness as sh
import tenure_harness as th

SHARDS = int(os.environ.get("TENURE_SCALE_SHARDS", "1000000"))
BATCH = 5000
PAGE = 10000


def strand_histogram(member):
    """(count, sum, {le: cumulative count}) of tenure_list_page_strand_seconds."""
    m = member.metrics()
    buckets = {}
    for k, v in m.items():
        if k.startswith("tenure_list_page_strand_seconds_bucket"):
            le = k.split('le="')[1].split('"')[0]
            buckets[float("inf") if le == "+Inf" else float(le)] = v
    return (m.get("tenure_list_page_strand_seconds_count", 0), m.get("tenure_list_page_strand_seconds_sum", 0),
            buckets)


def histogram_delta_p99(before, after):
    """The upper bound of the bucket holding the 99th percentile of the
    observations between two readings."""
    n = after[0] - before[0]
    if n <= 0:
        return float("nan")
    for le in sorted(after[2]):
        if after[2][le] - before[2].get(le, 0) >= 0.99 * n:
            return le
    return float("inf")


class ScalePagingTest(th.ClusterTestCase):

    def setUp(self):
        super().setUp()
        self.c = self.make_cluster(n=3, heartbeat_ms=100, election_ms=1000, snapshot_threshold=100000000)
        self.leader = self.c.start()
        self.follower = self.c.followers(self.leader)[0]

    def group_view(self):
        views = self.c.views()
        self.assertEqual(len(views), 3, views)
        return {(v["leader_id"], v["term"]) for v in views.values()}

    def list_everything(self, member, writer_prefix, other_prefix="base-"):
        t0 = time.monotonic()
        before = strand_histogram(member)
        count, pages, last, first_rev = 0, 0, "", None
        seen_live = set()
        for body in th.list_pages(member, "/v1/shards", "shards", limit=PAGE, timeout=30):
            pages += 1
            first_rev = body["revision"] if first_rev is None else first_rev
            for s in body["shards"]:
                sid = s["id"]
                # Id order across pages proves "at most once"; the count "at least once".
                self.assertGreater(sid, last, "out of order or listed twice: %s after %s" % (sid, last))
                last = sid
                if sid.startswith(writer_prefix):
                    seen_live.add(sid)
                elif sid.startswith("s-"):
                    count += 1
                else:
                    self.assertTrue(sid.startswith(other_prefix), sid)
        elapsed = time.monotonic() - t0
        after = strand_histogram(member)
        self.assertEqual(count, SHARDS, "shards present throughout, listed at %s" % member.id)
        n = after[0] - before[0]
        self.assertEqual(n, pages)
        mean_ms = (after[1] - before[1]) / n * 1000
        p99 = histogram_delta_p99(before, after)
        sh.note("list all at %s (%s): %d pages of %d in %.1f s; strand per page: mean %.2f ms, p99 <= %.2f ms" %
             (member.id, "leader" if member is self.leader else "follower", pages, PAGE, elapsed, mean_ms, p99 * 1000))
        return seen_live

    def test_list_a_million_shards_while_writes_run(self):
        t0 = time.monotonic()
        for first in range(0, SHARDS, BATCH):
            ids = ["s-%07d" % i for i in range(first, min(SHARDS, first + BATCH))]
            th.create_shards(self.leader, ids, timeout=120, per_request_timeout=60)
        sh.note("created %d shards in %.1f s" % (SHARDS, time.monotonic() - t0))
        commit = self.leader.cluster_view()["commit_index"]
        for m in self.c.all():
            th.wait_until(lambda: m.cluster_view()["applied_index"] >= commit, 120, "%s applied the creates" % m.id)
        before = self.group_view()
        self.assertEqual(len(before), 1, before)
        rss0 = sh.rss_mib(self.leader)

        # A baseline of the write latency without listing, then with it.
        baseline = sh.TimedWriter(self.leader, "base-")
        baseline.start()
        time.sleep(5)  # the baseline's measuring window, not a wait for a state
        baseline.stop()
        writer = sh.TimedWriter(self.leader, "live-")
        writer.start()
        try:
            seen = self.list_everything(self.follower, "live-")
            seen |= self.list_everything(self.leader, "live-")
        finally:
            writer.stop()
        rss1 = sh.rss_mib(self.leader)
        after = self.group_view()
        self.assertEqual(after, before, "the leader or term changed while listing")
        self.assertEqual(writer.failures, [], "writes failed while listing")
        self.assertGreater(len(writer.latencies), 0)
        sh.note("writes (1 shard each, back to back at the leader): without listing n=%d p50 %.1f ms p99 %.1f ms; "
             "while listing n=%d p50 %.1f ms p99 %.1f ms max %.1f ms" %
             (len(baseline.latencies), sh.percentile(baseline.latencies, 0.5) * 1000,
              sh.percentile(baseline.latencies, 0.99) * 1000, len(writer.latencies),
              sh.percentile(writer.latencies, 0.5) * 1000, sh.percentile(writer.latencies, 0.99) * 1000,
              max(writer.latencies) * 1000))
        sh.note("leader RSS %.0f MiB before listing, %.0f MiB after" % (rss0, rss1))
        # Writes acknowledged before the second listing began were in it.
        self.assertTrue(seen <= set(writer.acked), "listed a write that was never acknowledged")


if __name__ == "__main__":
    th.main()
