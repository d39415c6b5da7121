"""Helpers of the scale tests (test_scale_*.py): a writer that times each
acknowledged write, percentiles, a process's resident memory; and fleets of
many shards with long ids observed through counts (GET /v1/workers at each
member, stale, and the agents' own metrics) rather than whole shard lists,
so that what is measured is the operation, not the listing."""

import http.client
import sys
import threading
import time

import fleet_harness as fh
import tenure_harness as th


def rss_mib(member):
    with open("/proc/%d/status" % member.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return -1.0


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(len(s) * p))]


def note(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


class TimedWriter(threading.Thread):
    """Creates one shard a request at `member`, back to back, recording each
    acknowledged write's start time (monotonic) and latency (seconds)."""

    def __init__(self, member, prefix):
        super().__init__(daemon=True, name="timed-writer")
        self.member = member
        self.prefix = prefix
        self.latencies = []
        self.started = []
        self.acked = []
        self.failures = []
        self._stop_event = threading.Event()

    def run(self):
        i = 0
        try:
            while not self._stop_event.is_set():
                sid = "%s%d" % (self.prefix, i)
                i += 1
                t0 = time.monotonic()
                try:
                    r = self.member.post("/v1/shards", {"ids": [sid]}, timeout=10)
                except (OSError, http.client.HTTPException) as e:
                    self.failures.append(repr(e))
                    continue
                if r.status == 201:
                    self.latencies.append(time.monotonic() - t0)
                    self.started.append(t0)
                    self.acked.append(sid)
                else:
                    self.failures.append(repr(r))
        finally:
            th.close_connections()

    def stop(self):
        self._stop_event.set()
        self.join(timeout=30)

    def latencies_between(self, t0, t1):
        """Latencies of the acknowledged writes that started in [t0, t1]."""
        return [lat for start, lat in zip(self.started, self.latencies) if t0 <= start <= t1]


# 95 characters; with the number, ids of 96 to 100 characters.
LONG_PREFIX = ("scale-long-id-" * 7)[:94] + "-"


def worker_counts(member):
    """{worker: (state, shards)} as `member` has applied it (stale read);
    None while it has not caught up since its start (503 recovering)."""
    r = member.get("/v1/workers?consistency=stale", timeout=10)
    if r.status == 503 and r.json.get("error") == "recovering":
        return None
    assert r.status == 200, r
    return {w["id"]: (w["state"], w["shards"]) for w in r.json["workers"]}


def wait_counts(fleet, want, timeout, what, members=None):
    """Waits until every member (default: all running) reports `want`
    ({worker: shards}) for the workers named; returns the seconds it took."""
    t0 = time.monotonic()
    members = members or fleet.cluster.running()

    def check():
        for m in members:
            got = worker_counts(m)
            if got is None or any(got.get(w, (None, None))[1] != n for w, n in want.items()):
                return None
        return True
    th.wait_until(check, timeout, what, interval=0.05)
    return time.monotonic() - t0


def agent_state(agent):
    """(lease valid, grants held) from the agent's /metrics (refreshed at
    each scrape; far cheaper than GET /v1/grants with 50,000 grants)."""
    m = agent.metrics()
    return m.get("tenure_agent_lease_valid") == 1.0, int(m.get("tenure_agent_grants", -1))


def wait_agents_hold(fleet, want, timeout, what):
    """Waits until each named agent reports a valid lease and exactly
    `want[agent]` grants (or a count `want[agent](n)` accepts); returns the
    seconds it took."""
    t0 = time.monotonic()
    pending = dict(want)

    def check():
        for aid in sorted(pending):
            valid, n = agent_state(fleet.agent(aid))
            ok = pending[aid](n) if callable(pending[aid]) else n == pending[aid]
            if valid and ok:
                del pending[aid]
        return not pending
    th.wait_until(check, timeout, what, interval=0.05)
    return time.monotonic() - t0


def group_state(cluster):
    """{member: (term, leader, commit_index, applied_index)}."""
    return {m.id: (v["term"], v["leader_id"], v["commit_index"], v["applied_index"])
            for m in cluster.running() for v in [m.cluster_view()]}


def wait_all_applied(cluster, timeout=30):
    """Waits until every member applied the same index (what the leader committed)."""
    def check():
        s = group_state(cluster)
        applied = {v[3] for v in s.values()}
        commits = {v[2] for v in s.values()}
        return s if len(applied) == 1 and applied == commits else None
    return th.wait_until(check, timeout, "every member applied what was committed")


def assert_steady(test, cluster, leader, changes0):
    """Every member applied what was committed, `leader` still leads, no
    member saw the leader change since `changes0` (leader_changes at the
    start) and no peer request was refused: the scale proofs' common end."""
    state = wait_all_applied(cluster)
    test.assertEqual({v[1] for v in state.values()}, {leader.id}, "the leader changed: %r" % state)
    test.assertEqual(leader_changes(cluster), changes0, "a member saw the leader change")
    test.assertEqual(refused_peer_requests(cluster), 0, "a peer request was refused")


def refused_peer_requests(cluster):
    """The sum of tenure_peer_requests_refused_total over every member and reason."""
    total = 0.0
    for m in cluster.running():
        for k, v in m.metrics().items():
            if k.startswith("tenure_peer_requests_refused_total"):
                total += v
    return total


def leader_changes(cluster):
    return sum(m.metric("tenure_raft_leader_changes_total", 0.0) for m in cluster.running())


verbose = fh.verbose
