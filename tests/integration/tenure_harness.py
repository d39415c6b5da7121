"""Harness for Tenure's multi-process integration tests (DESIGN.md, "Real
processes, real sockets").

It starts real `tenure-controller` processes on 127.0.0.1 with generated YAML
configs in a fresh temporary directory, and puts a small TCP proxy on every
directed peer link so a test can cut a link in one direction and heal it
(this kernel has no tc netem). Member i's config names, for every peer j, the
address of the proxy i->j, which forwards to j's real listen address; a
member that is added later is reached by every other member through one
inbound proxy (its address is the one given to POST /v1/members).

Nothing here sleeps to wait for a state: `wait_until` polls a predicate
against a deadline. Every process is killed at the end of a test (also when
it fails), and the tail of each member's log is printed when a test fails.

Sockets, polling and the proxy are in tenure_net.py. Stdlib only (Python 3.9+).
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import unittest
import uuid

# Re-exported: the tests use them as tenure_harness.X.
from tenure_net import (SLOW, LinkProxy, Response, WaitTimeout, WatchStream, close_connections,  # noqa: F401
                        free_port, http_request, listens_on, raw_exchange, wait_until)

# ---------------------------------------------------------------------------
# Configuration of the run

BIN_DIR = os.environ.get("TENURE_BIN_DIR", "")


def parse_bin_dir_from_argv():
    """Takes `--bin DIR` out of sys.argv (the rest goes to unittest)."""
    global BIN_DIR
    argv = sys.argv
    for i, a in enumerate(list(argv)):
        if a == "--bin" and i + 1 < len(argv):
            BIN_DIR = argv[i + 1]
            del argv[i:i + 2]
            break
        if a.startswith("--bin="):
            BIN_DIR = a[len("--bin="):]
            del argv[i]
            break
    if not BIN_DIR:
        here = os.path.dirname(os.path.abspath(__file__))
        BIN_DIR = os.path.join(here, "..", "..", "build", "bin")


def controller_binary():
    path = os.path.join(BIN_DIR, "tenure-controller")
    if not os.access(path, os.X_OK):
        # A failure, not a skip: under ctest a skip would read as a pass.
        raise AssertionError("no tenure-controller at %s: build it first, or pass --bin DIR" % path)
    return path


def main():
    """Entry point of every test file: `python3 test_x.py --bin build/bin [-v] [Test.name]`."""
    parse_bin_dir_from_argv()
    unittest.main(verbosity=2)


# ---------------------------------------------------------------------------
# Members


try:  # resolved here, not in the forked child (no imports or locks after fork)
    import ctypes
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except Exception:  # not Linux: the cleanup at test end still runs
    _prctl = None


def _die_with_parent():
    """preexec_fn: the controller gets SIGKILL when the test process dies
    (e.g. killed by a ctest timeout), so no member outlives its test."""
    if _prctl is not None:
        _prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def yaml_str(s):
    return json.dumps(str(s))  # a JSON string is a valid YAML scalar


def read_log(path):
    """A log file's text ("" when it does not exist yet), bad bytes replaced."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace")
    except OSError:
        return ""


class ServerProcess:
    """One of our programs as a process of its own: directory, config, log,
    port, start (moving to another port if the one given was taken), signals,
    and HTTP to it. Subclasses write the config and name the binary."""

    kind = "process"
    config_name = "config.yaml"
    log_name = "process.log"
    request_timeout = 10.0

    # Raised niceness for the process (os.nice), 0 for none: see
    # fleet_harness.FleetTestCase.make_fleet's agent_nice.
    nice = 0

    def _preexec(self):
        _die_with_parent()
        if self.nice:
            os.nice(self.nice)

    def __init__(self, parent_dir, node_id):
        self.id = node_id
        self.dir = os.path.join(parent_dir, node_id)
        self.data_dir = os.path.join(self.dir, "data")
        self.config_path = os.path.join(self.dir, self.config_name)
        self.log_path = os.path.join(self.dir, self.log_name)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.proc = None
        self.paused = False
        self.starts = 0
        self.ssl_context = None  # HTTPS with this client context when set
        self.extra_env = {}  # added to the environment of each start (the chaos suite's libfaketime)

    @property
    def address(self):
        return "127.0.0.1:%d" % self.port

    def __repr__(self):
        return "<%s %s %s pid=%s>" % (self.kind, self.id, self.address, self.proc.pid if self.proc else None)

    def binary(self):
        raise NotImplementedError

    def write_config(self):
        raise NotImplementedError

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _launch(self, wait_serving=True, timeout=30):
        """Starts the process (same data_dir as before); a port taken in the
        meantime is replaced by another. With `wait_serving`, returns once it
        serves /healthz."""
        assert not self.alive(), "%s already running" % self.id
        for _ in range(4):
            self.write_config()
            self.starts += 1
            log = open(self.log_path, "ab")
            log.write(("==== start %d of %s on %s ====\n" % (self.starts, self.id, self.address)).encode())
            log.flush()
            self.proc = subprocess.Popen([self.binary(), "--config", self.config_path],
                                         stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         preexec_fn=self._preexec,
                                         env=dict(os.environ, **self.extra_env) if self.extra_env else None)
            log.close()
            self.paused = False
            if not wait_serving or self._wait_serving(timeout):
                return self
            if "cannot listen" not in self.log_tail(5):
                raise AssertionError("%s %s exited with %s at start:\n%s" % (self.kind, self.id, self.proc.returncode,
                                                                             self.log_tail(20)))
            self.port = free_port()
        raise AssertionError("%s %s could not bind a port" % (self.kind, self.id))

    def _wait_serving(self, timeout=30):
        """True once /healthz answers from our process (not another holding
        the port); False if the process exited first."""
        deadline = time.monotonic() + timeout * SLOW
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if self.get("/healthz", timeout=2).status == 200 and listens_on(self.proc.pid, self.port):
                    return True
            except (OSError, http.client.HTTPException):
                pass
            time.sleep(0.02)  # polling interval
        raise WaitTimeout("%s %s did not serve /healthz within %ds" % (self.kind, self.id, timeout))

    def signal(self, sig):
        if self.alive():
            self.proc.send_signal(sig)

    def kill(self):
        """SIGKILL, and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self.paused = False
        close_connections()

    def terminate(self, timeout=20):
        """SIGTERM and wait for the exit; returns the exit code."""
        if self.paused:
            self.resume()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout * SLOW)
        finally:
            close_connections()

    def pause(self):
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self):
        self.signal(signal.SIGCONT)
        self.paused = False

    def log_text(self):
        return read_log(self.log_path)

    def log_tail(self, n=40):
        text = self.log_text()
        return "\n".join(text.splitlines()[-n:]) if text else "(no log)"

    # -- API ----------------------------------------------------------------

    def request(self, method, path, body=None, headers=None, timeout=None):
        return http_request(self.address, method, path, body=body, headers=headers,
                            timeout=self.request_timeout if timeout is None else timeout,
                            ssl_context=self.ssl_context)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def metrics(self):
        """{name{labels}: value} of the Prometheus text exposition."""
        r = self.get("/metrics", timeout=5)
        assert r.status == 200, r
        out = {}
        for line in r.body.decode().splitlines():
            if not line or line.startswith("#"):
                continue
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
        return out

    def metric(self, name, default=None):
        return self.metrics().get(name, default)


class Member(ServerProcess):
    """One tenure-controller process with its own directory, config and log."""

    kind = "member"
    log_name = "controller.log"

    def __init__(self, cluster, node_id):
        super().__init__(cluster.dir, node_id)
        self.cluster = cluster
        self.peers = []  # [(id, address)] written into its config
        self.extra_yaml = ""
        # False for a member started to join but not yet added (it knows no
        # leader): leader discovery leaves it out.
        self.in_group = True
        self.auth_override = None  # this member's own auth block (default: the cluster's)
        self.binary_name = "tenure-controller"  # the chaos suite's clock faults run another build of it

    def binary(self):
        return controller_binary() if self.binary_name == "tenure-controller" else \
            os.path.join(BIN_DIR, self.binary_name)

    def request(self, method, path, body=None, headers=None, timeout=None):
        """As ServerProcess.request; with auth.read_token set and no headers
        given, presents the read token (so the harness can still look)."""
        read_token = self.cluster.auth.get("read_token")
        if headers is None and read_token:
            headers = {"Authorization": "Bearer " + read_token}
        return super().request(method, path, body=body, headers=headers, timeout=timeout)

    def write_config(self):
        c = self.cluster
        lines = [
            "node_id: %s" % yaml_str(self.id),
            "data_dir: %s" % yaml_str(self.data_dir),
            "listen: %s" % yaml_str(self.address),
        ]
        if self.peers:
            lines.append("peers:")
            for pid, addr in self.peers:
                lines.append("  - {id: %s, address: %s}" % (yaml_str(pid), yaml_str(addr)))
        raft = dict(heartbeat_interval_ms=c.heartbeat_ms, election_timeout_ms=c.election_ms)
        if c.snapshot_threshold is not None:
            raft["snapshot_threshold_entries"] = c.snapshot_threshold
        lines.append("raft: {%s}" % ", ".join("%s: %d" % kv for kv in raft.items()))
        if c.worker_lease_ms is not None:
            lines.append("worker_lease_ms: %d" % c.worker_lease_ms)
        auth = dict(c.auth)
        auth.update(self.auth_override or {})
        if auth:
            lines.append("auth: {%s}" % ", ".join("%s: %s" % (k, yaml_str(v)) for k, v in sorted(auth.items())))
        if c.tls:
            leaf = c.tls["members"][self.id]
            lines.append("tls: {cert_file: %s, key_file: %s, ca_file: %s}" % (
                yaml_str(leaf.cert), yaml_str(leaf.key), yaml_str(c.tls["ca"])))
            self.ssl_context = c.tls["client"]
        text = "\n".join(lines) + "\n" + self.extra_yaml
        with open(self.config_path, "w") as f:
            f.write(text)

    def start(self, wait_healthy=True):
        """Starts the process (same data_dir as before). When the port it was
        given turns out to be taken, it moves to another one: peers reach it
        through proxies, which follow it."""
        return self._launch(wait_serving=wait_healthy)

    def restart(self, wait_healthy=True):
        self.kill()
        return self.start(wait_healthy)

    def wipe(self):
        """Deletes the member's data_dir (the process must be down)."""
        assert not self.alive(), "wipe %s while it runs" % self.id
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def cluster_view(self):
        r = self.get("/v1/cluster", timeout=5)
        assert r.status == 200, r
        return r.json


# ---------------------------------------------------------------------------
# The group


class Cluster:
    """A controller group under test. Members named c1..cN; every peer link
    goes through a LinkProxy (self.link(a, b) is a's link to b), unless
    `direct_peers`: then members dial each other's listen address (no
    partitions then; a dead member's port refuses connections, which a proxy,
    always listening, never does)."""

    def __init__(self, base_dir, n=3, heartbeat_ms=50, election_ms=500, snapshot_threshold=None,
                 worker_lease_ms=None, auth=None, name="cluster", tls=None, direct_peers=False):
        self.dir = os.path.join(base_dir, name)
        os.makedirs(self.dir, exist_ok=True)
        self.heartbeat_ms = heartbeat_ms
        self.election_ms = election_ms
        self.snapshot_threshold = snapshot_threshold
        self.worker_lease_ms = worker_lease_ms
        self.auth = dict(auth or {})
        # Mutual TLS: {"ca": CA file, "members": {id: Leaf}, "client": the
        # harness's own ssl context (an admin certificate)}; None: plain HTTP.
        self.tls = tls
        self.members = {}
        self.links = {}     # (src, dst) -> LinkProxy
        self.inbound = {}   # dst -> LinkProxy, for members added later
        ids = ["c%d" % i for i in range(1, n + 1)]
        for i in ids:
            self.members[i] = Member(self, i)
        for a in ids:
            for b in ids:
                if a != b:
                    self._make_link(a, b)
        self.direct_peers = direct_peers
        for a in ids:
            m = self.members[a]
            m.peers = [(b, self.members[b].address if b == a or direct_peers else self.links[(a, b)].address)
                       for b in ids]

    def _make_link(self, a, b):
        dst = self.members[b]
        self.links[(a, b)] = LinkProxy("%s->%s" % (a, b), lambda: dst.address)

    def member(self, node_id):
        return self.members[node_id]

    def all(self):
        return [self.members[k] for k in sorted(self.members)]

    def running(self):
        return [m for m in self.all() if m.alive() and not m.paused]

    def in_group(self):
        """Running members that belong to the group (not a joiner not yet added)."""
        return [m for m in self.running() if m.in_group]

    def start(self, wait_leader=True):
        for m in self.all():
            m.start(wait_healthy=False)
        for m in self.all():
            if m._wait_serving():
                continue
            # Its port was taken between free_port() and the bind (tests run
            # in parallel): start it again on another one, as Member.start
            # does; its peers reach it through proxies, which follow it.
            if "cannot listen" not in m.log_tail(5) or self.direct_peers:
                raise AssertionError("%s exited at start:\n%s" % (m.id, m.log_tail(20)))
            m.port = free_port()
            m.start()
        if wait_leader:
            return self.wait_leader()
        return None

    def admin_headers(self):
        tok = self.auth.get("admin_token")
        return {"Authorization": "Bearer " + tok} if tok else {}

    # -- leadership -----------------------------------------------------------

    def views(self, members=None):
        out = {}
        for m in members or self.running():
            try:
                out[m.id] = m.cluster_view()
            except (OSError, http.client.HTTPException, AssertionError):
                pass
        return out

    def stable_leader(self, members=None):
        """The leader when every given member (default: all running) answers,
        reports the same leader in the same term, and that leader reports
        itself leader; else None."""
        members = members or self.in_group()
        views = self.views(members)
        if len(views) != len(members):
            return None
        leaders = {v["leader_id"] for v in views.values()}
        terms = {v["term"] for v in views.values()}
        if len(leaders) != 1 or len(terms) != 1:
            return None
        lid = leaders.pop()
        if lid is None or lid not in self.members or lid not in views:
            return None
        return self.members[lid]

    def wait_leader(self, members=None, timeout=20, exclude=None):
        """Waits until the given members agree on one leader (not `exclude`)."""
        def check():
            l = self.stable_leader(members)
            if l is not None and (exclude is None or l.id != exclude):
                return l
            return None
        return wait_until(check, timeout, "one leader agreed on by %s" %
                          [m.id for m in (members or self.in_group())])

    def wait_leader_is(self, node_id, timeout=20):
        """Waits until the group agrees that `node_id` leads."""
        def check():
            l = self.stable_leader()
            return l if l is not None and l.id == node_id else None
        return wait_until(check, timeout, "%s leading, agreed on by all" % node_id)

    def leader(self):
        return self.wait_leader()

    def followers(self, leader=None):
        leader = leader or self.leader()
        return [m for m in self.in_group() if m.id != leader.id]

    # -- partitions -------------------------------------------------------------

    def link(self, a, b):
        return self.links[(a, b)]

    def cut(self, a, b, mode="refuse"):
        """Stops traffic from a to b (one direction)."""
        self.links[(a, b)].set_mode(mode)

    def heal(self, a, b):
        self.links[(a, b)].set_mode("pass")

    def isolate(self, node_id, mode="refuse"):
        """Cuts every link into and out of a member."""
        for (a, b), p in self.links.items():
            if node_id in (a, b):
                p.set_mode(mode)
        if node_id in self.inbound:
            self.inbound[node_id].set_mode(mode)

    def heal_all(self):
        for p in list(self.links.values()) + list(self.inbound.values()):
            p.set_mode("pass")

    # -- membership -------------------------------------------------------------

    def new_member(self, node_id):
        """Prepares (does not start) a member that will join the running group:
        its config lists the existing members (through new proxies) but not
        itself, so it waits to be added. Every existing member reaches it
        through one inbound proxy, whose address is `joiner_address(id)`."""
        assert node_id not in self.members
        m = Member(self, node_id)
        m.in_group = False
        self.members[node_id] = m
        self.inbound[node_id] = LinkProxy("*->%s" % node_id, lambda: m.address)
        existing = [k for k in sorted(self.members) if k != node_id]
        for b in existing:
            self._make_link(node_id, b)
        m.peers = [(b, self.links[(node_id, b)].address) for b in existing]
        return m

    def prepare_rejoin(self, node_id):
        """Rewrites a (stopped, wiped) member's peers to the other members
        only, so that on start it waits to be added instead of bootstrapping."""
        m = self.members[node_id]
        m.in_group = False
        if node_id not in self.inbound:
            self.inbound[node_id] = LinkProxy("*->%s" % node_id, lambda: m.address)
        # A member that joined later has no direct link from here: its inbound proxy.
        m.peers = [(b, (self.links.get((node_id, b)) or self.inbound[b]).address)
                   for b in sorted(self.members) if b != node_id]

    def joiner_address(self, node_id):
        return self.inbound[node_id].address

    def add_member(self, node_id, via=None):
        """POST /v1/members for a joiner (at `via`, default the leader); marks
        it in the group on 201. Returns the response."""
        via = via or self.leader()
        r = via.post("/v1/members", {"id": node_id, "address": self.joiner_address(node_id)},
                     headers=self.admin_headers())
        if r.status == 201:
            self.members[node_id].in_group = True
        return r

    # -- teardown ---------------------------------------------------------------

    def shutdown(self):
        for m in self.all():
            try:
                if m.proc is not None and m.proc.poll() is None:
                    m.proc.send_signal(signal.SIGCONT)
                    m.proc.kill()
                    m.proc.wait(timeout=30)
            except Exception:  # keep killing the others
                pass
        for p in list(self.links.values()) + list(self.inbound.values()):
            p.close()
        close_connections()

    def dump_logs(self, stream=sys.stderr, n=60):
        for m in self.all():
            stream.write("\n----- last %d lines of %s (%s) -----\n%s\n" % (n, m.id, m.log_path, m.log_tail(n)))


# ---------------------------------------------------------------------------
# Writes and reads an operator would do


def new_key():
    return uuid.uuid4().hex


def create_shards(member, ids, timeout=20, headers=None, per_request_timeout=10):
    """POST /v1/shards at `member` until it is acknowledged (201) or the
    deadline passes. 503 (no leader yet, timeout) and connection errors are
    retried with the same Idempotency-Key, so the shards are created once.
    Returns the 201 body."""
    key = new_key()
    h = {"Idempotency-Key": key}
    h.update(headers or {})
    last = [None]

    def attempt():
        try:
            r = member.post("/v1/shards", {"ids": list(ids)}, headers=h, timeout=per_request_timeout)
        except (OSError, http.client.HTTPException) as e:
            last[0] = e
            return None
        last[0] = r
        if r.status == 201:
            return r.json
        if r.status == 503:
            return None
        raise AssertionError("POST /v1/shards at %s: unexpected %r" % (member.id, r))
    return wait_until(attempt, timeout, "POST /v1/shards %s acknowledged by %s" % (list(ids)[:3], member.id))


def list_pages(member, path, key, limit=None, timeout=20, headers=None):
    """Every page of a paged list (GET `path`, rows under `key`), following
    `continue`; each page is retried on 503 until the deadline. Yields each
    page's body in order."""
    sep = "&" if "?" in path else "?"
    base = path + (sep + "limit=%d" % limit if limit else "")
    sep = "&" if "?" in base else "?"
    token = None
    while True:
        target = base + (sep + "continue=" + urllib.parse.quote(token) if token else "")

        def attempt():
            r = member.get(target, timeout=10, headers=headers)
            if r.status == 200:
                return r.json
            if r.status == 503:
                return None
            raise AssertionError("GET %s at %s: unexpected %r" % (target, member.id, r))
        body = wait_until(attempt, timeout, "GET %s answered by %s" % (target, member.id))
        assert isinstance(body.get(key), list), body
        yield body
        token = body.get("continue")
        if not token:
            return


def list_shards(member, consistency=None, timeout=20, limit=None):
    """GET /v1/shards (linearizable unless consistency="stale"), every page,
    each retried on 503 until the deadline; returns (the first page's
    revision, {id: shard}). Watching from that revision misses nothing."""
    path = "/v1/shards" + ("?consistency=" + consistency if consistency else "")
    revision, shards = None, {}
    for body in list_pages(member, path, "shards", limit=limit, timeout=timeout):
        if revision is None:
            revision = body["revision"]
        for s in body["shards"]:
            assert s["id"] not in shards, "shard %s listed twice" % s["id"]
            shards[s["id"]] = s
    return revision, shards


class Writer(threading.Thread):
    """Writes shards continuously (one id per request) to the members in
    turn, and records which were acknowledged (201). Unacknowledged writes
    are not retried with the same id: they may or may not exist later."""

    def __init__(self, cluster, prefix, headers=None):
        super().__init__(daemon=True, name="writer-" + prefix)
        self.cluster = cluster
        self.prefix = prefix
        self.headers = headers or {}
        self.acked = []
        self.failed = 0
        self.errors = []
        self._stop_event = threading.Event()

    def run(self):
        i = 0
        try:
            while not self._stop_event.is_set():
                targets = self.cluster.running()
                if not targets:
                    self._stop_event.wait(0.05)  # polling interval: nobody to write to right now
                    continue
                m = targets[i % len(targets)]
                sid = "%s%d" % (self.prefix, i)
                i += 1
                try:
                    r = m.post("/v1/shards", {"ids": [sid]}, headers=self.headers, timeout=10)
                except (OSError, http.client.HTTPException):
                    self.failed += 1
                    continue
                if r.status == 201:
                    self.acked.append(sid)
                elif r.status == 503:
                    self.failed += 1
                else:
                    self.errors.append("%s: %r" % (m.id, r))
        finally:
            close_connections()

    def stop(self):
        self._stop_event.set()
        self.join(timeout=60)


# ---------------------------------------------------------------------------
# Test case base


def known_bug(test, description):
    """Marks a reproduced, reported bug: the test is skipped with the
    description (visible in -v output and the ctest log), or fails when
    TENURE_INTEG_KNOWN_BUGS=fail (to check a fix). Once the bug is fixed the
    test passes and the call is never reached."""
    if os.environ.get("TENURE_INTEG_KNOWN_BUGS") == "fail":
        test.fail("known bug: " + description)
    raise unittest.SkipTest("KNOWN BUG reproduced: " + description)


class ClusterTestCase(unittest.TestCase):
    """Gives each test a fresh temp dir; kills every process it started at the
    end (also on failure) and prints the members' log tails on failure."""

    keep_dirs = os.environ.get("TENURE_INTEG_KEEP") == "1"

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="tenure-integ-%s-" % self._testMethodName)
        self.clusters = []
        self.addCleanup(self._shutdown_all)

    def make_cluster(self, **kw):
        kw.setdefault("name", "cluster%d" % len(self.clusters))
        c = Cluster(self.tmp, **kw)
        self.clusters.append(c)
        return c

    def _shutdown_all(self):
        for c in self.clusters:
            c.shutdown()

    def run(self, result=None):
        result = result if result is not None else self.defaultTestResult()
        before = len(result.failures) + len(result.errors)
        super().run(result)
        failed = len(result.failures) + len(result.errors) > before
        if failed:
            for c in getattr(self, "clusters", []):
                c.dump_logs()
            sys.stderr.write("\n(test files kept in %s)\n" % getattr(self, "tmp", "?"))
        elif hasattr(self, "tmp") and not self.keep_dirs:
            shutil.rmtree(self.tmp, ignore_errors=True)
        return result

    # Assertions an operator would make.

    def assertStatus(self, response, status, code=None):
        self.assertEqual(response.status, status, "expected %d, got %r" % (status, response))
        if code is not None:
            body = response.json
            self.assertEqual(body.get("error"), code, "error body %r" % body)
            self.assertIsInstance(body.get("message"), str)
        return response
