"""Harness for the ownership-lifecycle tests: real `tenure-controller`
processes (tenure_harness.Cluster) and real `tenure-agent` processes on
127.0.0.1, each agent with a generated YAML config, its own port, data_dir
and log in the test's temp dir.

- `AgentProc`: start / kill (SIGKILL) / pause (SIGSTOP) / resume (SIGCONT) /
  terminate (SIGTERM, returns the exit code) / restart (same data_dir);
  `grants()`, `fence()`, `put()`, `get_data()`, `wait_ready()`.
- `Fleet`: the agents of one controller group, and what an operator asks
  the controllers (`shards()`, `history()`, `workers()`, `move()`,
  `drain()`), always at whichever member answers, linearizable reads.
- `GrantPoller`: one thread per agent polls `GET /v1/grants` every 20 ms
  and records each answer with the monotonic times the request was sent
  and the answer arrived. From that timeline it derives *holds* (runs of
  consecutive polls in which an agent claimed a shard at one epoch with a
  valid lease) and checks that no two agents ever held a shard at once, that
  no (shard, epoch) was claimed by two agents, and that epochs only go up.
- `ControllerMonitor`: polls linearizable `GET /v1/shards` (every member in
  turn) and checks that no shard's epoch and no revision ever went back
  between reads that did not overlap in time.
- `FleetTestCase`: a ClusterTestCase that also kills every agent at the end
  and prints the agents' log tails when a test fails.

Nothing here sleeps to wait for a state: everything polls against a
deadline (tenure_net.wait_until). Stdlib only (Python 3.9+).
"""

import http.client
import json
import os
import signal
import sys
import threading
import time
import urllib.parse

import tenure_harness as th
from tenure_net import close_connections, http_request, wait_until

# ---------------------------------------------------------------------------
# Agents


def agent_binary():
    path = os.path.join(th.BIN_DIR, "tenure-agent")
    if not os.access(path, os.X_OK):
        # A failure, not a skip: under ctest a skip would read as a pass.
        raise AssertionError("no tenure-agent at %s: build it first, or pass --bin DIR" % path)
    return path


class Grants:
    """One answer of GET /v1/grants."""

    def __init__(self, body):
        self.worker = body["worker"]
        self.lease_valid = body["lease_valid"]
        self.revision = body["revision"]
        self.grants = {g["shard"]: g["epoch"] for g in body["grants"]}

    def claims(self):
        """{shard: epoch} this agent serves now (nothing without a valid lease)."""
        return self.grants if self.lease_valid else {}

    def __repr__(self):
        return "<grants %s lease_valid=%s rev=%d %s>" % (self.worker, self.lease_valid, self.revision,
                                                          sorted(self.grants.items()))


class AgentProc(th.ServerProcess):
    """One tenure-agent process with its own directory, config, data_dir and log."""

    kind = "agent"
    config_name = "agent.yaml"
    log_name = "agent.log"
    request_timeout = 5.0

    def __init__(self, fleet, worker_id, zone=None, capacity=None, heartbeat_ms=250, agent_token=None,
                 client_token=None, tls=None):
        super().__init__(fleet.dir, worker_id)
        self.fleet = fleet
        self.zone = zone
        self.capacity = capacity
        self.heartbeat_ms = heartbeat_ms
        self.agent_token = agent_token
        self.client_token = client_token
        # Mutual TLS: a tenure_certs.Leaf (its certificate serves the agent's
        # API and identifies it to the controllers), plus "client": the
        # harness's context for calling it. None: plain HTTP.
        self.tls = tls
        self.controllers = None  # the addresses it dials (default: every member of the fleet's cluster)
        self.app = None  # {"url": ..., "drain_timeout_ms": ...}: the data-plane program it calls

    def binary(self):
        return agent_binary()

    def write_config(self):
        y = th.yaml_str
        lines = [
            "worker_id: %s" % y(self.id),
            "listen: %s" % y(self.address),
            "controllers: [%s]" % ", ".join(y(a) for a in (self.controllers or
                                                            [m.address for m in self.fleet.cluster.all()])),
            "data_dir: %s" % y(self.data_dir),
            "heartbeat_interval_ms: %d" % self.heartbeat_ms,
        ]
        if self.zone is not None:
            lines.append("zone: %s" % y(self.zone))
        if self.capacity is not None:
            lines.append("capacity: %s" % self.capacity)
        auth = {k: v for k, v in (("agent_token", self.agent_token), ("client_token", self.client_token)) if v}
        if auth:
            lines.append("auth: {%s}" % ", ".join("%s: %s" % (k, y(v)) for k, v in sorted(auth.items())))
        if self.app:
            lines.append("app: {%s}" % ", ".join("%s: %s" % (k, y(v) if isinstance(v, str) else v)
                                                 for k, v in sorted(self.app.items())))
        if self.tls:
            lines.append("tls: {cert_file: %s, key_file: %s, ca_file: %s}" % (
                y(self.tls["leaf"].cert), y(self.tls["leaf"].key), y(self.tls["leaf"].ca.cert)))
            self.ssl_context = self.tls["client"]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, wait_ready=True, timeout=30):
        """Starts the process (same data_dir as before); a port taken in the
        meantime is replaced by another. Waits until it serves /healthz and,
        with `wait_ready`, until it is registered, re-listed and its lease valid."""
        self._launch(timeout=timeout)
        if wait_ready:
            self.wait_ready(timeout)
        return self

    def restart(self, wait_ready=True):
        self.kill()
        return self.start(wait_ready=wait_ready)

    def ready(self):
        """True when /readyz is 200 and /v1/grants says the lease is valid."""
        return self.get("/readyz", timeout=2).status == 200 and self.grants(timeout=2).lease_valid

    def wait_ready(self, timeout=30):
        return wait_until(self.ready, timeout, "agent %s ready (registered, re-listed, lease valid)" % self.id,
                          interval=0.02)

    # -- API --------------------------------------------------------------------

    def grants(self, timeout=5.0):
        r = self.get("/v1/grants", timeout=timeout)
        assert r.status == 200, "GET /v1/grants at %s: %r" % (self.id, r)
        return Grants(r.json)

    def fence(self, shard, epoch, timeout=5.0):
        return self.request("POST", "/v1/fence", {"shard": shard, "epoch": epoch}, timeout=timeout)

    def put(self, shard, key, epoch, value, timeout=5.0):
        """PUT /v1/data/{shard}/{key} with Tenure-Epoch: epoch."""
        if isinstance(value, str):
            value = value.encode("utf-8")
        return self.request("PUT", "/v1/data/%s/%s" % (shard, key), body=value,
                            headers={"Tenure-Epoch": str(epoch), "Content-Type": "application/octet-stream"},
                            timeout=timeout)

    def get_data(self, shard, key, timeout=5.0):
        return self.get("/v1/data/%s/%s" % (shard, key), timeout=timeout)


# ---------------------------------------------------------------------------
# The fleet: agents plus what an operator asks the controllers


class Fleet:
    """The agents of one controller group (`cluster`, a tenure_harness.Cluster)."""

    def __init__(self, base_dir, cluster, name="fleet"):
        self.dir = os.path.join(base_dir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.cluster = cluster
        self.agents = {}
        self._next_member = 0

    def add_agent(self, worker_id, **kw):
        a = AgentProc(self, worker_id, **kw)
        self.agents[worker_id] = a
        return a

    def agent(self, worker_id):
        return self.agents[worker_id]

    def all(self):
        return [self.agents[k] for k in sorted(self.agents)]

    def running(self):
        """Agents running and not paused."""
        return [a for a in self.all() if a.alive() and not a.paused]

    def start(self, agents=None, timeout=30):
        """Starts the agents together, then waits until each is ready."""
        agents = agents if agents is not None else self.all()
        for a in agents:
            a.start(wait_ready=False, timeout=timeout)
        for a in agents:
            a.wait_ready(timeout)

    def shutdown(self):
        for a in self.all():
            try:
                if a.proc is not None and a.proc.poll() is None:
                    a.proc.send_signal(signal.SIGCONT)
                    a.proc.kill()
                    a.proc.wait(timeout=30)
            except Exception:  # keep killing the others
                pass

    def dump_logs(self, stream=sys.stderr, n=60):
        for a in self.all():
            stream.write("\n----- last %d lines of agent %s (%s) -----\n%s\n" % (n, a.id, a.log_path, a.log_tail(n)))

    # -- the controllers, at whichever member answers -------------------------------

    def ctl(self, method, path, body=None, timeout=20, idempotent_key=True, request_timeout=5):
        """Sends a request to the running controllers in turn until one gives
        an answer other than 503 (or a lost connection) before the deadline;
        returns it. Mutations carry one Idempotency-Key over every retry, so
        they apply once."""
        headers = dict(self.cluster.admin_headers())
        if method != "GET" and idempotent_key:
            headers["Idempotency-Key"] = th.new_key()
        last = [None]

        def attempt():
            members = self.cluster.in_group()
            if not members:
                return None
            m = members[self._next_member % len(members)]
            try:
                r = m.request(method, path, body=body, headers=headers, timeout=request_timeout)
            except (OSError, http.client.HTTPException) as e:
                self._next_member += 1
                last[0] = e
                return None
            last[0] = r
            if r.status == 503:
                self._next_member += 1
                return None
            return r
        return wait_until(attempt, timeout, "%s %s answered by a controller" % (method, path), interval=0.02)

    def pages(self, path, key):
        """Every page of a paged list through ctl(), following `continue`."""
        sep = "&" if "?" in path else "?"
        token = None
        while True:
            r = self.ctl("GET", path + (sep + "continue=" + urllib.parse.quote(token) if token else ""))
            assert r.status == 200, r
            yield r.json
            token = r.json.get("continue")
            if not token:
                return

    def shards(self):
        """Linearizable GET /v1/shards, every page: (the first page's revision,
        {id: {worker, epoch, state}})."""
        revision, out = None, {}
        for body in self.pages("/v1/shards?limit=10000", "shards"):
            revision = body["revision"] if revision is None else revision
            out.update({s["id"]: s for s in body["shards"]})
        return revision, out

    def shard(self, shard_id):
        r = self.ctl("GET", "/v1/shards/%s" % shard_id)
        assert r.status == 200, r
        return r.json

    def history(self, shard_id):
        r = self.ctl("GET", "/v1/shards/%s/history" % shard_id)
        assert r.status == 200, r
        return r.json["history"]

    def workers(self):
        return {w["id"]: w for body in self.pages("/v1/workers", "workers") for w in body["workers"]}

    def create_shards(self, count, prefix="s-"):
        r = self.ctl("POST", "/v1/shards", {"count": count, "prefix": prefix})
        assert r.status == 201, r
        return ["%s%d" % (prefix, i) for i in range(count)]

    def move(self, shard_id, to):
        return self.ctl("POST", "/v1/shards/%s/move" % shard_id, {"to": to})

    def drain(self, worker_id):
        return self.ctl("POST", "/v1/workers/%s/drain" % worker_id)

    # -- agreement between controllers and agents ---------------------------------

    def grants_of(self, agents=None, timeout=2.0):
        """{worker: Grants} of the given (default: running) agents."""
        return {a.id: a.grants(timeout=timeout) for a in (agents if agents is not None else self.running())}

    def disagreements(self, agents=None):
        """What keeps the controllers' view and the agents' from agreeing: every
        shard active at a running agent that holds it at the same epoch with a
        valid lease, and no agent claiming anything else. Returns
        (problems, shards, grants)."""
        _, shards = self.shards()
        grants = self.grants_of(agents)
        problems = []
        for sid in sorted(shards):
            s = shards[sid]
            if s["state"] != "active":
                problems.append("%s is %s" % (sid, s["state"]))
            elif s["worker"] not in grants:
                problems.append("%s active at %s, not a running agent" % (sid, s["worker"]))
            elif grants[s["worker"]].grants.get(sid) != s["epoch"]:
                problems.append("%s: controllers say %s@%d, %s has %s" % (
                    sid, s["worker"], s["epoch"], s["worker"], grants[s["worker"]].grants.get(sid)))
        for wid in sorted(grants):
            g = grants[wid]
            if not g.lease_valid:
                problems.append("%s lease not valid" % wid)
            for sid, e in sorted(g.grants.items()):
                s = shards.get(sid)
                if s is None or s["worker"] != wid or s["epoch"] != e:
                    problems.append("%s holds %s@%d, controllers say %r" % (wid, sid, e, s))
        return problems, shards, grants

    def planned_moves(self):
        """The moves a placement pass would start now (POST /v1/rebalance?dry_run=true)."""
        r = self.ctl("POST", "/v1/rebalance?dry_run=true", idempotent_key=False)
        assert r.status == 200, r
        return r.json["moves"]

    def wait_settled(self, timeout=30, agents=None):
        """Waits until the controllers and agents agree (wait_agreement) and the
        placement has nothing left to do (an empty dry run, no handoff in
        flight), so the state stays put; returns (shards, grants)."""
        last = [None]

        def check():
            problems, shards, grants = self.disagreements(agents)
            if not problems:
                moves = self.planned_moves()
                problems = ["planned: %r" % m for m in moves]
            last[0] = problems
            return (shards, grants) if not problems else None
        try:
            return wait_until(check, timeout, "agreement and nothing left to place", interval=0.05)
        except th.WaitTimeout as e:
            raise th.WaitTimeout("%s; still: %s" % (e, (last[0] or [])[:10]))

    def wait_agreement(self, timeout=20, agents=None, what="controllers and agents agree on every shard"):
        """Waits until disagreements() is empty; returns (shards, grants)."""
        last = [None]

        def check():
            problems, shards, grants = self.disagreements(agents)
            last[0] = problems
            return (shards, grants) if not problems else None
        try:
            return wait_until(check, timeout, what, interval=0.05)
        except th.WaitTimeout as e:
            raise th.WaitTimeout("%s; still: %s" % (e, (last[0] or [])[:10]))


def fair_shares(capacities, total):
    """{worker: exact capacity-weighted share of `total` shards}."""
    s = float(sum(capacities.values()))
    return {w: total * c / s for w, c in capacities.items()}


# ---------------------------------------------------------------------------
# Timelines


class Sample:
    __slots__ = ("agent", "t_send", "t_recv", "grants", "error")

    def __init__(self, agent, t_send, t_recv, grants, error):
        self.agent = agent
        self.t_send = t_send
        self.t_recv = t_recv
        self.grants = grants  # Grants, or None when the poll failed
        self.error = error

    def claims(self):
        return self.grants.claims() if self.grants is not None else {}


class Hold:
    """A run of consecutive polls in which `agent` claimed `shard` at `epoch`
    (held with a valid lease). The agent certainly held it throughout
    [first.t_recv, last.t_send]: it held it at some instant of each poll, and
    an epoch once dropped is never served again."""

    def __init__(self, agent, shard, epoch, sample):
        self.agent = agent
        self.shard = shard
        self.epoch = epoch
        self.first = sample
        self.last = sample
        self.polls = 1

    @property
    def certain(self):
        """(start, end) of the interval it certainly held the shard, or None."""
        if self.first.t_recv <= self.last.t_send:
            return (self.first.t_recv, self.last.t_send)
        return None

    def describe(self, t0=0.0):
        return "%s@%d polls=%d seen [%.3f .. %.3f]" % (self.agent, self.epoch, self.polls,
                                                       self.first.t_send - t0, self.last.t_recv - t0)


class GrantPoller:
    """Polls every agent's GET /v1/grants every `interval` seconds, one thread
    per agent (so a paused agent delays only its own timeline), and records
    every answer (or failure) with its send and arrival times."""

    def __init__(self, fleet, agents=None, interval=0.02, request_timeout=0.5):
        self.fleet = fleet
        self.agent_ids = [a.id for a in (agents if agents is not None else fleet.all())]
        self.interval = interval
        self.request_timeout = request_timeout
        self.samples = {aid: [] for aid in self.agent_ids}
        self._stop = threading.Event()
        self._threads = []
        self.t0 = time.monotonic()

    def start(self):
        self.t0 = time.monotonic()
        for aid in self.agent_ids:
            t = threading.Thread(target=self._run, args=(aid,), name="grants-" + aid, daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _run(self, aid):
        agent = self.fleet.agent(aid)
        out = self.samples[aid]
        try:
            while not self._stop.is_set():
                t_send = time.monotonic()
                try:
                    r = http_request(agent.address, "GET", "/v1/grants", timeout=self.request_timeout)
                    grants = Grants(r.json) if r.status == 200 else None
                    error = None if grants else "status %d" % r.status
                except (OSError, http.client.HTTPException, ValueError) as e:
                    grants, error = None, repr(e)
                t_recv = time.monotonic()
                out.append(Sample(aid, t_send, t_recv, grants, error))
                wait = self.interval - (time.monotonic() - t_send)
                if wait > 0:
                    self._stop.wait(wait)  # the polling period
        finally:
            close_connections()

    def stop(self):
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)
        return self

    def catch_up(self, timeout=10):
        """Waits until every agent has been polled once more after now (so the
        timeline covers the present state), then returns self."""
        t = time.monotonic()
        wait_until(lambda: all(self.samples[a] and self.samples[a][-1].t_send > t for a in self.agent_ids),
                   timeout, "a fresh poll of every agent", interval=0.01)
        return self

    def poll_count(self):
        return sum(len(s) for s in self.samples.values())

    def max_gap(self, aid):
        """The longest time between two consecutive successful polls of an agent."""
        ok = [s for s in self.samples[aid] if s.grants is not None]
        return max((b.t_send - a.t_recv for a, b in zip(ok, ok[1:])), default=0.0)

    def holds(self):
        """{shard: [Hold]} from the recorded timeline, in order of first sight."""
        out = {}
        for aid in self.agent_ids:
            open_runs = {}
            for s in list(self.samples[aid]):
                claims = s.claims()
                for shard in list(open_runs):
                    h = open_runs[shard]
                    if claims.get(shard) != h.epoch:
                        out.setdefault(shard, []).append(h)
                        del open_runs[shard]
                for shard, epoch in claims.items():
                    h = open_runs.get(shard)
                    if h is None:
                        open_runs[shard] = Hold(aid, shard, epoch, s)
                    else:
                        h.last = s
                        h.polls += 1
            for shard, h in open_runs.items():
                out.setdefault(shard, []).append(h)
        for hs in out.values():
            hs.sort(key=lambda h: (h.first.t_send, h.agent))
        return out

    def violations(self, shards=None):
        """Everything in the timeline that breaks the ownership rules:
        - two agents certainly holding a shard at the same time;
        - two agents claiming the same (shard, epoch);
        - a later hold at a lower epoch than an earlier one (or at the same
          epoch at another agent), when the two did not overlap in time."""
        out = []
        for shard, hs in sorted(self.holds().items()):
            if shards is not None and shard not in shards:
                continue
            by_epoch = {}
            for h in hs:
                by_epoch.setdefault(h.epoch, set()).add(h.agent)
            for e, agents in sorted(by_epoch.items()):
                if len(agents) > 1:
                    out.append("%s: epoch %d claimed by %s" % (shard, e, sorted(agents)))
            for i, a in enumerate(hs):
                for b in hs[i + 1:]:
                    if a.agent == b.agent:
                        continue
                    ca, cb = a.certain, b.certain
                    if ca and cb and max(ca[0], cb[0]) < min(ca[1], cb[1]):
                        out.append("%s: held by two agents at once: %s and %s" % (
                            shard, a.describe(self.t0), b.describe(self.t0)))
            for i, a in enumerate(hs):
                for b in hs[i + 1:]:
                    first, later = (a, b) if a.last.t_recv < b.first.t_send else (b, a)
                    if not first.last.t_recv < later.first.t_send:
                        continue  # seen at overlapping times: no order known
                    if later.epoch < first.epoch or (later.epoch == first.epoch and later.agent != first.agent):
                        out.append("%s: epoch went from %s to %s" % (shard, first.describe(self.t0),
                                                                     later.describe(self.t0)))
        return out

    def timeline(self, shard):
        return "; ".join(h.describe(self.t0) for h in self.holds().get(shard, []))


class ControllerMonitor:
    """Polls linearizable GET /v1/shards at every running controller in turn
    and records (send time, arrival time, member, revision, {shard: (worker,
    epoch, state)}). Two reads that did not overlap in time must not go back:
    neither the revision nor any shard's epoch."""

    def __init__(self, cluster, interval=0.05, request_timeout=1.0):
        self.cluster = cluster
        self.interval = interval
        self.request_timeout = request_timeout
        self.samples = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._run, name="controller-monitor", daemon=True)
        self._thread.start()
        return self

    def _run(self):
        i = 0
        try:
            while not self._stop.is_set():
                members = self.cluster.in_group()
                t_send = time.monotonic()
                if members:
                    m = members[i % len(members)]
                    i += 1
                    try:
                        # One page of the largest size: one revision per sample
                        # (the fleet tests stay well within it).
                        r = m.get("/v1/shards?limit=10000", timeout=self.request_timeout)
                        if r.status == 200:
                            body = r.json
                            shards = {s["id"]: (s["worker"], s["epoch"], s["state"]) for s in body["shards"]}
                            self.samples.append((t_send, time.monotonic(), m.id, body["revision"], shards))
                        else:
                            self.errors += 1
                    except (OSError, http.client.HTTPException, ValueError):
                        self.errors += 1
                wait = self.interval - (time.monotonic() - t_send)
                if wait > 0:
                    self._stop.wait(wait)  # the polling period
        finally:
            close_connections()

    def wait_reads(self, n=2, timeout=10):
        """Waits until `n` more reads have completed (so a timeline starts
        before whatever the test does next); returns self."""
        have = len(self.samples)
        wait_until(lambda: len(self.samples) >= have + n, timeout, "%d controller reads" % n, interval=0.01)
        return self

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=20)
        return self

    def violations(self):
        """Reads that went back in time (revision or a shard's epoch)."""
        out = []
        by_recv = sorted(self.samples, key=lambda s: s[1])
        # For each read B, the reads that ended before B was sent form a prefix
        # of by_recv; keep the running maxima over that prefix.
        max_rev, max_epoch, j = (0, None), {}, 0
        for b in sorted(self.samples, key=lambda s: s[0]):
            while j < len(by_recv) and by_recv[j][1] < b[0]:
                a = by_recv[j]
                if a[3] > max_rev[0]:
                    max_rev = (a[3], a[2])
                for sid, (_, e, _) in a[4].items():
                    if sid not in max_epoch or e > max_epoch[sid][0]:
                        max_epoch[sid] = (e, a[2], a[3])
                j += 1
            if b[3] < max_rev[0]:
                out.append("revision went back: %d at %s after %d at %s" % (b[3], b[2], max_rev[0], max_rev[1]))
            for sid, (_, e, _) in sorted(b[4].items()):
                if sid in max_epoch and e < max_epoch[sid][0]:
                    out.append("%s: epoch %d at %s (rev %d) after %d at %s (rev %d)" % (
                        sid, e, b[2], b[3], max_epoch[sid][0], max_epoch[sid][1], max_epoch[sid][2]))
        return out


# ---------------------------------------------------------------------------
# Checks on the controllers' history


def history_violations(history):
    """Epochs in a shard's history must rise by exactly one per change."""
    out = []
    for a, b in zip(history, history[1:]):
        if b["epoch"] != a["epoch"] + 1 or b["revision"] <= a["revision"]:
            out.append("history %r then %r" % (a, b))
    return out


# ---------------------------------------------------------------------------
# Test case base


class FleetTestCase(th.ClusterTestCase):
    """A ClusterTestCase that also runs agents: every agent is SIGKILLed at
    the end (before the controllers), and the agents' log tails are printed
    when the test fails."""

    def setUp(self):
        super().setUp()
        self.fleets = []
        # Cleanups run last-in first-out: the agents die before the controllers.
        self.addCleanup(self._shutdown_fleets)

    def _shutdown_fleets(self):
        for f in self.fleets:
            f.shutdown()
        close_connections()

    def start_fleet(self, shards=40, **kw):
        """make_fleet(**kw) with `shards` shards created and placed, once
        controllers and agents agree: (fleet, {shard: view})."""
        f = self.make_fleet(**kw)
        ids = f.create_shards(shards)
        views, _ = f.wait_agreement(timeout=20)
        self.assertEqual(sorted(views), sorted(ids))
        return f, views

    def make_fleet(self, agents=4, lease_ms=2000, heartbeat_ms=250, capacities=None, zones=None,
                   controller_yaml="", start=True, agent_ids=None, auth=None, cluster_kw=None, agent_nice=0):
        """3 controllers with `worker_lease_ms: lease_ms` (plus `controller_yaml`
        appended to each config; `cluster_kw` goes to th.Cluster, e.g. the Raft
        timing) and `agents` agents w1..wN (zones z1/z2 alternating unless
        given). `auth` is the controllers' auth block; the agents get its
        agent_token. Starts them all when `start`. `agent_nice` raises the
        agents' niceness: in production the agents run on the data plane's
        machines, not on the controllers' cores; a scale test with twenty of
        them on two cores shared with three controllers would otherwise test
        how the machine divides its CPU."""
        c = self.make_cluster(n=3, worker_lease_ms=lease_ms, auth=auth, **(cluster_kw or {}))
        for m in c.all():
            m.extra_yaml = controller_yaml
        f = Fleet(self.tmp, c, name="fleet%d" % len(self.fleets))
        self.fleets.append(f)
        ids = agent_ids or ["w%d" % i for i in range(1, agents + 1)]
        for i, wid in enumerate(ids):
            f.add_agent(wid, zone=(zones[i] if zones else "z%d" % (i % 2 + 1)),
                        capacity=(capacities[i] if capacities else None), heartbeat_ms=heartbeat_ms,
                        agent_token=(auth or {}).get("agent_token"))
            f.agents[wid].nice = agent_nice
        f.lease_ms = lease_ms
        f.heartbeat_ms = heartbeat_ms
        if start:
            c.start()
            f.start()
        return f

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        # The agents' logs are printed first; ClusterTestCase.run prints the
        # controllers' and keeps the temp dir.
        outcome = super().run(result)
        if len(result.failures) + len(result.errors) > before:
            for f in getattr(self, "fleets", []):
                f.dump_logs()
        return outcome

    def assertNoViolations(self, violations, what):
        self.assertEqual(violations[:20], [], "%s (%d in all)" % (what, len(violations)))


def verbose(msg):
    """Prints a measured figure when TENURE_INTEG_VERBOSE=1."""
    if os.environ.get("TENURE_INTEG_VERBOSE") == "1":
        sys.stderr.write("  [measured] %s\n" % msg)


def dumps(obj):
    return json.dumps(obj, sort_keys=True)
