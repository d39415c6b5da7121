"""The chaos run's clients: register clients (create, delete, move, read
shards through any member, linearizable and stale, with Idempotency-Key
retries after timeouts), watchers (from revision 0, from now, cut and
resumed, lagging into 410 -> list -> resume) and a monitor of every
member's own view (GET /v1/cluster). Everything they see goes into the
history (history.py) or the watch sessions (watch_check.py).

Planted faults (`plant`, to prove the checkers on the real system):
- `stale-read`: the read shim answers a linearizable read of a shard with the
  answer it got before, once the shard's answer has changed (as a follower
  serving a "linearizable" read from its own old state would);
- `drop-watch-event`: a watcher drops the first event of every session it
  resumes.
Stdlib only.
"""

import http.client
import json
import random
import socket
import threading
import time
import urllib.parse
import uuid

from history import History
from tenure_net import close_connections, http_request

TIMEOUT = 3.0  # per request: a fault should leave operations open, not hang them


def _classify_error(e):
    """A request that failed without an answer: refused connections were never
    sent (no effect); anything else may have been applied."""
    return "fail" if isinstance(e, ConnectionRefusedError) else "info"


class Clock:
    def __init__(self, t0):
        self.t0 = t0

    def now(self):
        return time.monotonic() - self.t0


class RegisterClient(threading.Thread):
    """One client: a seeded sequence of operations on a small pool of shards,
    each sent to a random member (followers forward)."""

    MIX = (("create", 25), ("delete", 8), ("move", 15), ("read", 25), ("read_stale", 10), ("list", 10),
           ("list_stale", 7))

    def __init__(self, idx, seed, cluster, workers, pool, history, clock, samples, plant=(), think=0.01):
        super().__init__(daemon=True, name="client-%d" % idx)
        self.idx = idx
        self.rng = random.Random("client-%s-%d" % (seed, idx))
        self.cluster = cluster
        self.workers = workers
        self.pool = pool
        self.prefix = pool[0].rsplit("-", 1)[0] + "-"
        self.history = history
        self.clock = clock
        self.samples = samples  # per-member revisions seen by stale reads
        self.plant = set(plant)
        self.think = think  # mean pause between operations (s)
        self.reads = []  # {shard, revision, exists, worker, epoch, state, kind, op}
        self._halt = threading.Event()
        self._seen = {}  # the planted stale-read shim: shard -> last real answer
        self._lies = {}  # shard -> the old answer the next read will get
        self.errors = []

    def stop(self):
        self._halt.set()

    def run(self):
        choices = [f for f, w in self.MIX for _ in range(w)]
        try:
            while not self._halt.is_set():
                f = self.rng.choice(choices)
                shard = self.rng.choice(self.pool)
                keyed = self.rng.random() < 0.7
                target = self.rng.random()
                try:
                    getattr(self, "_op_" + f)(shard, keyed, target)
                except Exception as e:  # a client bug must not pass silently
                    self.errors.append("%s %s: %r" % (f, shard, e))
                self._halt.wait(self.rng.uniform(0, 2 * self.think))  # the client's pace, not a wait for a state
        finally:
            close_connections()

    def _member(self, draw, k=0):
        ms = self.cluster.all()
        return ms[(int(draw * len(ms)) + k) % len(ms)]

    def _send(self, draw, method, path, body=None, key=None, attempts=1):
        """Sends to a member; with a key, a lost answer is retried (same key)
        at the next members, up to `attempts`. Returns (response or None,
        member, note)."""
        headers = {"Idempotency-Key": key} if key else {}
        note, m = None, None
        # What the outcome is when no attempt answers: the note of the first
        # attempt that may have reached a member. A refused connection never
        # did; a timeout, a reset or a 503 may have been applied, and a later
        # refused retry must not make the operation look never sent (chaos
        # seed 1 in CI: a delete timed out at one member, its retry was
        # refused by a killed one, and it was recorded as a failure though
        # the shard was gone).
        uncertain = None
        for k in range(attempts):
            m = self._member(draw, k)
            try:
                r = http_request(m.address, method, path, body=body, headers=headers, timeout=TIMEOUT)
            except (OSError, http.client.HTTPException) as e:
                note = e
                if uncertain is None and not isinstance(e, ConnectionRefusedError):
                    uncertain = e
                continue
            if r.status == 503 and k + 1 < attempts:
                note = r
                if uncertain is None:
                    uncertain = TimeoutError("503 at %s, retried" % m.id)
                continue
            return r, m, None
        return None, m, uncertain or note

    def _mutate(self, f, shard, keyed, draw, method, path, body, interpret):
        op = self.history.invoke(self.idx, f, shard, self.clock.now(), args=body)
        r, m, err = self._send(draw, method, path, body, key=uuid.uuid4().hex if keyed else None,
                               attempts=3 if keyed else 1)
        op.member = m.id if m else None
        t = self.clock.now()
        if r is None:
            History.complete(op, t, _classify_error(err), note=repr(err)[:120])
            return
        status, value = interpret(r)
        History.complete(op, t, status, value, note="%d" % r.status)

    def _op_create(self, shard, keyed, draw):
        def interpret(r):
            if r.status == 201:
                return "ok", {"created": shard in r.json.get("created", [])}
            return ("info" if r.status >= 500 else "fail"), {"status": r.status}
        self._mutate("create", shard, keyed, draw, "POST", "/v1/shards", {"ids": [shard]}, interpret)

    def _op_delete(self, shard, keyed, draw):
        def interpret(r):
            if r.status == 200:
                return "ok", {}
            if r.status == 404:
                return "fail", {"not_found": True}
            return ("info" if r.status >= 500 else "fail"), {"status": r.status}
        self._mutate("delete", shard, keyed, draw, "DELETE", "/v1/shards/" + shard, None, interpret)

    def _op_move(self, shard, keyed, draw):
        to = self.rng.choice(self.workers)

        def interpret(r):
            if r.status == 202:
                return "ok", {"to": to}
            msg = _message(r)
            if r.status == 404 and msg.startswith('shard "'):
                return "fail", {"not_found": True}
            if r.status == 409:
                return "fail", {"conflict": True, "message": msg}
            return ("info" if r.status >= 500 else "fail"), {"status": r.status, "message": msg}
        self._mutate("move", shard, keyed, draw, "POST", "/v1/shards/%s/move" % shard, {"to": to}, interpret)

    def _op_read(self, shard, keyed, draw, stale=False):
        f = "read_stale" if stale else "read"
        m = self._member(draw)
        op = self.history.invoke(self.idx, f, shard, self.clock.now(), member=m.id)
        t_send = time.monotonic()
        path = "/v1/shards/%s%s" % (shard, "?consistency=stale" if stale else "")
        try:
            r = http_request(m.address, "GET", path, timeout=TIMEOUT)
        except (OSError, http.client.HTTPException) as e:
            History.complete(op, self.clock.now(), "info", note=repr(e)[:120])
            return
        t = self.clock.now()
        if r.status == 200:
            b = r.json
            value = {"worker": b["worker"], "epoch": b["epoch"], "state": b["state"], "revision": b["revision"]}
            if not stale and "stale-read" in self.plant:
                value = self._planted_stale(shard, value)
            History.complete(op, t, "ok", value, note="200")
            self._note_read(op, m, t_send, value["revision"], True, value)
        elif r.status == 404:
            History.complete(op, t, "fail", {"not_found": True}, note="404")
        else:
            History.complete(op, t, "info", {"status": r.status}, note="%d" % r.status)

    def _op_read_stale(self, shard, keyed, draw):
        self._op_read(shard, keyed, draw, stale=True)

    def _planted_stale(self, shard, value):
        """The planted bug: once a shard's answer has changed, the next
        linearizable read of it gets the answer from before the change."""
        lie = self._lies.pop(shard, None)
        prev = self._seen.get(shard)
        self._seen[shard] = value
        if lie is not None:
            return dict(lie)
        if prev is not None and (prev["epoch"], prev["worker"]) != (value["epoch"], value["worker"]):
            self._lies[shard] = prev
        return value

    def _op_list(self, shard, keyed, draw, stale=False):
        """GET /v1/shards?prefix=<pool prefix>: one page, one revision; each
        pool shard's presence or absence is a read of it."""
        m = self._member(draw)
        f = "read_stale" if stale else "read"
        t_call = self.clock.now()
        t_send = time.monotonic()
        path = "/v1/shards?limit=1000&prefix=%s%s" % (urllib.parse.quote(self.prefix),
                                                       "&consistency=stale" if stale else "")
        try:
            r = http_request(m.address, "GET", path, timeout=TIMEOUT)
        except (OSError, http.client.HTTPException):
            return  # a read without an answer has no effect: not recorded
        t = self.clock.now()
        if r.status != 200:
            return
        b = r.json
        rows = {s["id"]: s for s in b["shards"]}
        for sid in self.pool:
            op = self.history.invoke(self.idx, f, sid, t_call, args={"list": True}, member=m.id)
            s = rows.get(sid)
            if s is None:
                History.complete(op, t, "fail", {"not_found": True, "revision": b["revision"]}, note="listed")
                self._note_read(op, m, None, b["revision"], False, None)
            else:
                value = {"worker": s["worker"], "epoch": s["epoch"], "state": s["state"], "revision": b["revision"]}
                History.complete(op, t, "ok", value, note="listed")
                self._note_read(op, m, None, b["revision"], True, value)
        if stale:
            self.samples.append(member_sample(m, t_send, b["revision"], "stale list"))

    def _op_list_stale(self, shard, keyed, draw):
        self._op_list(shard, keyed, draw, stale=True)

    def _note_read(self, op, m, t_send, revision, exists, value):
        self.reads.append({"shard": op.shard, "revision": revision, "exists": exists,
                           "worker": value and value["worker"], "epoch": value and value["epoch"],
                           "state": value and value["state"], "kind": op.f, "op": "#%d" % op.id})
        if op.f == "read_stale" and t_send is not None:
            self.samples.append(member_sample(m, t_send, revision, "stale read"))


def member_sample(m, t_send, revision, source, term=None):
    """One observation of a member's own state, for invariants.monotonic_per_member:
    which start of the process and which incarnation of its data_dir answered."""
    out = {"member": m.id, "t_send": t_send, "t_recv": time.monotonic(), "start": m.starts,
           "incarnation": getattr(m, "incarnation", 0), "revision": revision, "source": source}
    if term is not None:
        out["term"] = term
    return out


def _message(r):
    try:
        return r.json.get("message", "")
    except ValueError:
        return ""


class Watcher(threading.Thread):
    """Watches every change (or one worker's) from revision 0 or from now,
    at a random member; cuts its own connection at random times and resumes
    from the last revision it saw; a `lag` watcher also stays away a while
    before resuming, which may bring a 410: then it lists and resumes from
    the list's revision."""

    def __init__(self, name, seed, cluster, clock, since0=True, lag=False, worker=None, plant=(), pool_prefix=""):
        super().__init__(daemon=True, name="watch-" + name)
        self.wname = name
        self.rng = random.Random("watch-%s-%s" % (seed, name))
        self.cluster = cluster
        self.clock = clock
        self.since0 = since0
        self.lag = lag
        self.worker = worker
        self.plant = set(plant)
        self.pool_prefix = pool_prefix
        self.sessions = []
        self.lists = []
        self.last = 0 if since0 else None
        self.covered = 0
        self.dropped = []
        self.errors = []
        self._halt = threading.Event()

    def stop(self):
        self._halt.set()
        self.join(timeout=30)

    def run(self):
        resumed = False
        try:
            while not self._halt.is_set():
                self._session(resumed)
                resumed = True
                if self.lag and self.rng.random() < 0.5:
                    self._halt.wait(self.rng.uniform(2, 8))  # the lagging client stays away
                else:
                    self._halt.wait(0.05)  # reconnect pause
        except Exception as e:
            self.errors.append(repr(e))
        finally:
            close_connections()

    def _session(self, resumed):
        ms = self.cluster.all()
        m = ms[self.rng.randrange(len(ms))]
        cut_after = self.rng.uniform(1.0, 8.0)
        q = []
        if self.last is not None:
            q.append("since=%d" % self.last)
        if self.worker:
            q.append("worker=" + self.worker)
        path = "/v1/watch" + ("?" + "&".join(q) if q else "")
        s = {"watcher": self.wname, "since": self.last, "t_open": self.clock.now(), "status": None,
             "events": [], "progress": None, "end": None, "worker": self.worker, "member": m.id}
        self.sessions.append(s)
        host, port = m.address.rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=TIMEOUT)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            s["status"] = resp.status
            if resp.status == 410:
                body = json.loads(resp.read().decode() or "{}")
                s["end"] = "410 compact_revision=%s" % body.get("compact_revision")
                self._relist()
                return
            if resp.status != 200:
                s["end"] = "status %d" % resp.status
                return
            conn.sock.settimeout(6.5)  # progress lines come every 5 s on an idle stream
            deadline = time.monotonic() + cut_after
            first = True
            while not self._halt.is_set() and time.monotonic() < deadline:
                line = resp.readline()
                if not line:
                    s["end"] = "stream ended"
                    return
                ev = json.loads(line.decode())
                if "error" in ev:
                    s["end"] = "error line %r" % ev
                    return
                if ev.get("type") == "progress":
                    s["progress"] = ev["revision"]
                    self.covered = max(self.covered, ev["revision"])
                    if self.last is None:
                        self.last = ev["revision"]
                    continue
                if first and resumed and "drop-watch-event" in self.plant:
                    first = False
                    self.dropped.append(ev)  # the planted bug: lost, but its revision counts as seen
                    self.last = ev["revision"]
                    continue
                first = False
                s["events"].append([self.clock.now(), ev])
                self.last = ev["revision"]
                self.covered = max(self.covered, ev["revision"])
            s["end"] = "cut by the client"
        except (OSError, http.client.HTTPException, ValueError) as e:
            s["end"] = repr(e)[:120]
            if s["status"] is None:
                s["status"] = "error"
        finally:
            conn.close()

    def _relist(self):
        """After a 410: a linearizable list, then resume from its revision."""
        for m in self.cluster.all():
            try:
                r = http_request(m.address, "GET", "/v1/shards?limit=1000&prefix=%s" %
                                 urllib.parse.quote(self.pool_prefix), timeout=TIMEOUT)
            except (OSError, http.client.HTTPException):
                continue
            if r.status == 200:
                b = r.json
                self.lists.append({"t": self.clock.now(), "revision": b["revision"], "member": m.id,
                                   "shards": {x["id"]: x for x in b["shards"]}})
                self.last = b["revision"]
                return


class ClusterMonitor(threading.Thread):
    """Asks every member (in turn, every 100 ms) for its own view: GET
    /v1/cluster; records its revision and term with the send and arrival
    times and which start of the process answered."""

    def __init__(self, cluster, samples):
        super().__init__(daemon=True, name="cluster-monitor")
        self.cluster = cluster
        self.samples = samples
        self._halt = threading.Event()

    def stop(self):
        self._halt.set()
        self.join(timeout=30)

    def run(self):
        i = 0
        try:
            while not self._halt.wait(0.1):  # the sampling period
                ms = self.cluster.all()
                m = ms[i % len(ms)]
                i += 1
                if not m.alive() or m.paused:
                    continue
                t_send = time.monotonic()
                try:
                    r = http_request(m.address, "GET", "/v1/cluster", timeout=1.0)
                    v = r.json if r.status == 200 else None
                except (OSError, http.client.HTTPException, ValueError, socket.timeout):
                    continue
                # A member that restarted reports caught_up false while it
                # re-applies its log: its revision then is progress, not a
                # view it serves (it refuses stale reads until caught up).
                if v and v.get("caught_up", True):
                    self.samples.append(member_sample(m, t_send, v["revision"], "GET /v1/cluster", term=v["term"]))
        finally:
            close_connections()
