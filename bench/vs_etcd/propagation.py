"""Change propagation for bench/vs-etcd.

etcd: a v3 gateway watch stream (POST /v3/watch) on one key, held on member
0; each round puts a new value at the leader and times from sending the put
to the event's arrival on the stream.

Tenure: two real tenure-agents (workers w1 and w2) and this script's own
GET /v1/watch stream on member 0. One shard is moved back and forth between
the workers; each round sends POST /v1/shards/{id}/move {"to": other} to the
leader and times, on the stream, from sending it to
  - the `revoke` event (the move's first committed change: the owner's
    grant is withdrawn; one Raft commit, as etcd's put), and
  - the `grant` event to the target (the whole handoff: revoke, the old
    owner's agent confirms its release, then the grant commits).
Besides, the agents' own tenure_agent_grant_delay_seconds histograms (from
a grant's proposal at the leader to its arrival at the agent) are read
before and after each pass; only their bucket of the median is known.

Timing uses one process's monotonic clock; every round waits for its grant.
(The contract's agent→program callbacks, app.url, are not implemented by
tenure-agent yet, so the arrival at a data-plane program cannot be timed.)
"""
import base64
import http.client
import json
import os
import queue
import subprocess
import threading
import time

import groups

AGENT_PORTS = (27191, 27192)
SHARD = "prop0"
ETCD_FIG = "propagation {p}: etcd put→watch event / Tenure move→revoke event"
ACK_FIG = "(for reference) {p}: etcd put→its answer / Tenure move→its 202 answer, same rounds"
HANDOFF_FIG = "Tenure only: move→grant event at the target (whole handoff), {p}"
# Both systems send the write's answer once its entry committed and applied
# at the leader, so the event's arrival less the answer's is the fan-out
# after the commit (the "grant's commit to its arrival"), from the
# same rounds; negative when the event came first.
AFTER_FIG = "commit→event: the event's arrival less the put's / move's answer, {p}"


class _Stream:
    """A long-lived HTTP response read line by line on a thread; each line is queued with its arrival time."""

    def __init__(self, address, method, path, body):
        host, port = address.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=None)
        self.conn.request(method, path, body=None if body is None else json.dumps(body).encode(),
                          headers={"Content-Type": "application/json"})
        self.resp = self.conn.getresponse()
        if self.resp.status != 200:
            raise RuntimeError(f"stream {path} at {address}: HTTP {self.resp.status}")
        self.lines = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                self.lines.put((time.monotonic(), line))
        except Exception:  # noqa: BLE001 - close() from another thread ends the read in any of several ways
            pass
        self.lines.put(None)

    def next(self, timeout):
        item = self.lines.get(timeout=timeout)
        if item is None:
            raise RuntimeError("stream ended")
        return item

    def close(self):
        try:
            self.conn.sock.shutdown(2)
        except OSError:
            pass
        self.conn.close()




def _delay_histogram(address):
    """An agent's tenure_agent_grant_delay_seconds: ({le: cumulative count}, sum in seconds)."""
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=2)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    buckets, total = {}, 0.0
    prefix = 'tenure_agent_grant_delay_seconds_bucket{le="'
    for line in text.splitlines():
        if line.startswith(prefix):
            le, count = line[len(prefix):].split('"}')
            buckets[float(le)] = float(count)
        elif line.startswith("tenure_agent_grant_delay_seconds_sum"):
            total = float(line.split()[-1])
    return buckets, total


def agent_delay(before, after):
    """Over the grants the agents received between two readings: (upper bound in ms of the
    median's bucket, mean in ms, count). Both ends of each delay are wall clocks in whole
    milliseconds, so single delays are off by up to 1 ms but the mean is not biased."""
    les = sorted(after[0][0])
    diff = [(le, sum(a[0].get(le, 0) for a in after) - sum(b[0].get(le, 0) for b in before)) for le in les]
    count = diff[-1][1] if diff else 0
    if count <= 0:
        return None, None, 0
    mean_ms = 1e3 * (sum(a[1] for a in after) - sum(b[1] for b in before)) / count
    median_le = next((le * 1e3 for le, c in diff if c >= count / 2), None)
    return median_le, mean_ms, int(count)


class Propagation:
    def __init__(self, work, args, tenure):
        self.a = args
        self.agents = []
        self.addresses = [f"127.0.0.1:{p}" for p in AGENT_PORTS]
        for n, address in enumerate(self.addresses):
            wid = f"w{n + 1}"
            d = os.path.join(work, f"agent-{wid}")
            os.makedirs(d, exist_ok=True)
            cfg = os.path.join(d, f"{wid}.yaml")
            with open(cfg, "w") as f:
                f.write(f"worker_id: {wid}\nlisten: {address}\ncontrollers: [{', '.join(tenure.client)}]\n"
                        f"data_dir: {d}/data\nheartbeat_interval_ms: 500\n")
            log = open(os.path.join(d, f"{wid}.log"), "ab")
            self.agents.append(subprocess.Popen([os.path.join(args.bin, "tenure-agent"), "--config", cfg],
                                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                start_new_session=True))
            log.close()
        self._wait_workers_alive(tenure)
        status, _ = groups.http_call(tenure.client[tenure.leader()], "POST", "/v1/shards", {"ids": [SHARD]}, timeout=5)
        if status != 201:
            raise RuntimeError(f"Tenure: create {SHARD} answered {status}")
        # With one shard and two workers either may hold it (each is within
        # one of its share of a half): placement leaves a moved shard where
        # the move put it, and each round moves it to the other worker.
        self.owner = self._wait_owner(tenure)
        self.agent_fig = {}
        self.conflicts = 0  # moves answered 409 and retried

    def _wait_workers_alive(self, tenure):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, j = groups.http_call(tenure.client[tenure.leader()], "GET", "/v1/workers")
            alive = {w["id"] for w in (j or {}).get("workers", []) if w["state"] == "alive"}
            if status == 200 and {"w1", "w2"} <= alive:
                return
            time.sleep(0.05)  # polling interval
        raise RuntimeError("the tenure-agents did not register within 30 s")

    def _wait_owner(self, tenure):
        """Waits until the shard is actively held; returns its worker."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, j = groups.http_call(tenure.client[tenure.leader()], "GET", f"/v1/shards/{SHARD}")
            if status == 200 and j["state"] == "active" and j["worker"]:
                return j["worker"]
            time.sleep(0.02)  # polling interval
        raise RuntimeError(f"Tenure: {SHARD} was not granted within 30 s")

    def stop(self):
        for a in self.agents:
            if a.poll() is None:
                a.terminate()
        for a in self.agents:
            try:
                a.wait(15)
            except subprocess.TimeoutExpired:
                a.kill()
                a.wait()

    def etcd_pass(self, g, n):
        key = base64.b64encode(b"propkey").decode()
        stream = _Stream(g.client[0], "POST", "/v3/watch", {"create_request": {"key": key}})
        out = {ETCD_FIG: [], ACK_FIG: [], AFTER_FIG: []}
        try:
            stream.next(5)  # the "created" message
            host, port = g.client[g.leader()].rsplit(":", 1)
            conn = http.client.HTTPConnection(host, int(port), timeout=5)
            for i in range(self.a.propagation_rounds):
                value = base64.b64encode(f"v{n}-{i}".encode()).decode()
                t0 = time.monotonic()
                conn.request("POST", "/v3/kv/put", body=json.dumps({"key": key, "value": value}).encode(),
                             headers={"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                acked = time.monotonic()
                while True:
                    t1, line = stream.next(5)
                    events = json.loads(line).get("result", {}).get("events", [])
                    if any(e.get("kv", {}).get("value") == value for e in events):
                        break
                out[ETCD_FIG].append(1e3 * (t1 - t0))
                out[ACK_FIG].append(1e3 * (acked - t0))
                out[AFTER_FIG].append(1e3 * (t1 - acked))
            conn.close()
        finally:
            stream.close()
        return out

    def _move(self, conn, target):
        """POST /v1/shards/{id}/move; (when it was sent, when its answer came): the accepted one, after retries."""
        for _ in range(100):
            t0 = time.monotonic()
            conn.request("POST", f"/v1/shards/{SHARD}/move", body=json.dumps({"to": target}).encode(),
                         headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            answer = resp.read()
            acked = time.monotonic()
            # 409 "shard changed while the move was planned; retry" or "already being
            # handed off": the leader had not yet applied the last grant this script
            # saw on member 0's stream (a majority can commit it while the leader's
            # own fsync runs, and a follower may apply it first).
            if resp.status != 409 or (b"retry" not in answer and b"already being handed off" not in answer):
                break
            self.conflicts += 1
        if resp.status != 202:
            raise RuntimeError(f"Tenure: move of {SHARD} to {target} answered {resp.status} {answer!r}")
        return t0, acked

    @staticmethod
    def _wait_grant(stream, worker, t0):
        """Reads the stream until SHARD is granted to worker; (first revoke's arrival, the grant's)."""
        revoked = None
        while True:
            t1, line = stream.next(10)
            e = json.loads(line)
            if e.get("shard") != SHARD:
                continue
            if e.get("type") == "revoke" and revoked is None:
                revoked = t1
            if e.get("type") == "grant" and e.get("worker") == worker:
                return revoked, t1

    def tenure_pass(self, g, n):
        host, port = g.client[g.leader()].rsplit(":", 1)
        _, view = groups.http_call(g.client[g.leader()], "GET", "/v1/cluster")
        stream = _Stream(g.client[0], "GET", f"/v1/watch?since={view['revision']}", None)
        out = {ETCD_FIG: [], ACK_FIG: [], AFTER_FIG: [], HANDOFF_FIG: []}
        before = [_delay_histogram(a) for a in self.addresses]
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        try:
            for _ in range(self.a.propagation_rounds):
                target = "w2" if self.owner == "w1" else "w1"
                t0, acked = self._move(conn, target)
                revoked, granted = self._wait_grant(stream, target, t0)
                self.owner = target
                out[ETCD_FIG].append(1e3 * (revoked - t0))
                out[HANDOFF_FIG].append(1e3 * (granted - t0))
                out[ACK_FIG].append(1e3 * (acked - t0))
                out[AFTER_FIG].append(1e3 * (revoked - acked))
        finally:
            conn.close()
            stream.close()
        self.agent_fig.setdefault("passes", []).append(
            agent_delay(before, [_delay_histogram(a) for a in self.addresses]))
        return out
