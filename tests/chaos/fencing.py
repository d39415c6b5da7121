"""Fenced writes through the agents, and their checker.

`FencedWriter` clients ask a random agent for its grants (GET /v1/grants),
pick one of its pool shards and PUT /v1/data/{shard}/{key} with the epoch
the agent listed (a fresh key each time, so every acknowledged write can be
read back); one write in six is a probe at the epoch before, which the fence
must refuse once the agent has seen the newer one.

The checker (`check`): for every shard,
- no two agents accepted writes at the same epoch;
- no write was accepted at an epoch lower than that of a write acknowledged
  before it was sent (by any agent: a lower epoch accepted after a higher one
  was in use is the split brain fencing exists to prevent);
- an accepted write's (shard, epoch) was granted to the agent that accepted
  it, as far as the watch saw the grants;
- every acknowledged write is readable at the end, at the agent that
  accepted it, with its value and epoch.

Planted fault `fence-accept-stale`: the writer's shim records a refused
probe (409 stale_epoch) as accepted, as an agent that accepted the previous
epoch would. Stdlib only.
"""

import http.client
import random
import threading
import time

from history import Anomaly
from tenure_net import close_connections, http_request


class FencedWriter(threading.Thread):
    def __init__(self, idx, seed, fleet, clock, prefix, plant=(), think=0.02):
        super().__init__(daemon=True, name="fenced-writer-%d" % idx)
        self.idx = idx
        self.rng = random.Random("fenced-%s-%d" % (seed, idx))
        self.fleet = fleet
        self.clock = clock
        self.prefix = prefix
        self.plant = set(plant)
        self.think = think
        self.writes = []  # dicts, see _write
        self.errors = []
        self._halt = threading.Event()
        self._n = 0

    def stop(self):
        self._halt.set()
        self.join(timeout=30)

    def run(self):
        try:
            while not self._halt.is_set():
                try:
                    self._one()
                except Exception as e:  # a client bug must not pass silently
                    self.errors.append(repr(e))
                self._halt.wait(self.rng.uniform(0, 2 * self.think))  # the client's pace
        finally:
            close_connections()

    def _one(self):
        agents = self.fleet.all()
        a = agents[self.rng.randrange(len(agents))]
        probe = self.rng.random() < 1 / 6.0
        pick = self.rng.random()
        if not a.alive() or a.paused:
            return
        try:
            r = http_request(a.address, "GET", "/v1/grants", timeout=1.0)
        except (OSError, http.client.HTTPException):
            return
        if r.status != 200:
            return
        g = r.json
        mine = sorted((s["shard"], s["epoch"]) for s in g["grants"] if s["shard"].startswith(self.prefix))
        if not mine:
            return
        shard, epoch = mine[int(pick * len(mine)) % len(mine)]
        if probe:
            if epoch <= 1:
                return
            epoch -= 1
        self._n += 1
        key = "f%d-%d" % (self.idx, self._n)
        value = "v%d-%d-e%d" % (self.idx, self._n, epoch)
        w = {"agent": a.id, "shard": shard, "key": key, "value": value, "epoch": epoch, "probe": probe,
             "t_call": self.clock.now(), "t_ret": None, "status": None, "error": None,
             "lease_valid": g["lease_valid"]}
        self.writes.append(w)
        try:
            r = http_request(a.address, "PUT", "/v1/data/%s/%s" % (shard, key), body=value.encode(),
                             headers={"Tenure-Epoch": str(epoch), "Content-Type": "application/octet-stream"},
                             timeout=2.0)
        except (OSError, http.client.HTTPException) as e:
            w["error"] = repr(e)[:80]
            return
        w["t_ret"] = self.clock.now()
        w["status"] = r.status
        if r.status != 200:
            try:
                w["error"] = r.json.get("error")
            except ValueError:
                w["error"] = "status %d" % r.status
            if "fence-accept-stale" in self.plant and r.status == 409 and w["error"] == "stale_epoch":
                w["status"] = 200  # the planted bug: a refused stale write recorded as accepted
                w["planted"] = True


def read_back(fleet, writes, limit=3000):
    """GET every acknowledged write (up to `limit`, the latest first) at the
    agent that accepted it; returns [(write, status, body, epoch header)]."""
    acked = [w for w in writes if w["status"] == 200][-limit:]
    out = []
    for w in acked:
        a = fleet.agent(w["agent"])
        r = None
        for _ in range(3):
            try:
                r = http_request(a.address, "GET", "/v1/data/%s/%s" % (w["shard"], w["key"]), timeout=3.0)
                break
            except (OSError, http.client.HTTPException):
                time.sleep(0.2)  # a polling interval: the agent may be restarting
        out.append((w, r.status if r else None, r.body.decode("utf-8", "replace") if r else None,
                    r.headers.get("tenure-epoch") if r else None))
    close_connections()
    return out


def check(writes, reference, complete, readback):
    """`reference`: the watch's {revision: event}; `complete`: whether it holds
    every grant of the run (the watchers' union covers it all)."""
    out = []
    acked = [w for w in writes if w["status"] == 200]
    owners = {}
    for w in acked:
        owners.setdefault((w["shard"], w["epoch"]), {}).setdefault(w["agent"], w)
    for (shard, epoch), by_agent in sorted(owners.items()):
        if len(by_agent) > 1:
            out.append("%s: epoch %d accepted by %s" % (shard, epoch, sorted(by_agent)))
    granted = {}
    for ev in reference.values():
        if ev.get("type") == "grant":
            granted[(ev["shard"], ev["epoch"])] = ev["worker"]
    for (shard, epoch), by_agent in sorted(owners.items()):
        for agent in by_agent:
            g = granted.get((shard, epoch))
            if g is not None and g != agent:
                out.append("%s: %s accepted a write at epoch %d, which was granted to %s" % (shard, agent, epoch, g))
            elif g is None and complete:
                out.append("%s: %s accepted a write at epoch %d, never granted (per the watch)" % (shard, agent, epoch))
    out.extend(_epoch_order(acked))
    for w, status, body, epoch in readback:
        if status != 200 or body != w["value"] or epoch != str(w["epoch"]):
            out.append("%s/%s acknowledged by %s at epoch %d (%.3f): read back %s %r epoch %s" % (
                w["shard"], w["key"], w["agent"], w["epoch"], w["t_ret"], status, (body or "")[:40], epoch))
    return out


def _epoch_order(acked):
    """A write sent after another was acknowledged must not be accepted at a
    lower epoch of the same shard."""
    out = []
    by_shard = {}
    for w in acked:
        by_shard.setdefault(w["shard"], []).append(w)
    for shard, ws in sorted(by_shard.items()):
        by_ret = sorted(ws, key=lambda w: w["t_ret"])
        best, j = None, 0
        for b in sorted(ws, key=lambda w: w["t_call"]):
            while j < len(by_ret) and by_ret[j]["t_ret"] < b["t_call"]:
                if best is None or by_ret[j]["epoch"] > best["epoch"]:
                    best = by_ret[j]
                j += 1
            if best is not None and b["epoch"] < best["epoch"]:
                out.append(Anomaly(
                    "%s: %s accepted epoch %d (sent %.3f) after %s's write at epoch %d was acknowledged (%.3f)" % (
                        shard, b["agent"], b["epoch"], b["t_call"], best["agent"], best["epoch"], best["t_ret"]),
                    best["t_call"], b["t_ret"]))
    return out
