#!/usr/bin/env python3
"""kv_service: a small sharded key-value service that runs beside one
tenure-agent and lets Tenure decide which shards it serves.

    kv_service.py --listen 127.0.0.1:8201 --agent http://127.0.0.1:8101 \\
                  --shared-dir /srv/kv-shared [--agent-token-file FILE] [--app-token-file FILE] \\
                  [--agent-ca CA --agent-cert CRT --agent-key KEY] [--flush-delay-ms N]

and in the agent's config:  app: {url: "http://127.0.0.1:8201"}

Python 3 standard library only. Clients use

    PUT /kv/{shard}/{key}   body = the value (key <= 256 bytes, value <= 64 KiB)
    GET /kv/{shard}/{key}   the value, header Tenure-Epoch

and get 421 {"error": "not_owner"} from a service that does not own the
shard (ask the controllers, GET /v1/shards/{id}, who does), 503 while the
shard is draining or the fence refuses. GET /status shows what it holds.
The agent calls POST /tenure/v1/{prepare,grant,drain,revoke}
(docs/api.md, "Agent and program"); with --app-token-file (the agent's
app.token) a call without that bearer token gets 401 and changes nothing:
a forged drain or revoke would otherwise make a shard unavailable.

Storage
-------
`--shared-dir` stands in for object storage that every worker reaches:

    <shared>/<shard>/<E>.snap   the shard's whole state as its owner at epoch
                                E found it when granted (written once, before
                                it served anything)
    <shared>/<shard>/<E>.log    the writes made at epoch E, one JSON line each,
                                fsynced before the write is acknowledged

Loading a shard for epoch E = the newest snapshot at or below E, then every
log from that snapshot's epoch up to E, in epoch order (within a log the
last line wins, and a later log wins over an earlier one).

Why a write is never lost, and never acknowledged by two owners
----------------------------------------------------------------
A PUT at our epoch E:
  1. asks the agent `POST /v1/fence {shard, epoch: E}` (must be 200);
  2. appends the line to <E>.log and fsyncs it;
  3. asks the fence again, and answers 200 only if it still admits E.
  Refused at 1 -> nothing happened (421/503). Refused at 3 -> 503
  `fence_refused`: the line is in the log, so the write may or may not show
  up later, which is what an unacknowledged write may do.

The fence stops admitting E before the shard's next owner is granted
(CONTRACT.md: the target is granted only after the source's drain was
answered or timed out and its agent dropped the shard, or after the
source's lease ran out, and an agent that cannot renew its lease stops
admitting before the controllers can consider it dead).
The check at 3 passed, so the append at 2 had finished before the fence
stopped admitting E, hence before the next owner's grant, hence before
the next owner reads the logs when granted. The second check is what makes
this hold even if this process stalls (GC, swap, SIGSTOP) between the first
check and the append: the first check alone would not be enough.

The grant of epoch E' is also a *cut*: the new owner catches up with the
logs (anything written since `prepare`), checks that the fence really
admits E' (the webhook carries no credential, so a forged grant must not be
able to cut), then writes <E'>.snap, and only then serves. Later loads
start from that snapshot and ignore older logs. Why: a write can pass
check 1, stall, and land in <E>.log after the new owner read it (check 3
then fails: 503). Replaying every log at each later load would let such a
straggler surface at some later move, after the new owner had served other
values, and win over an acknowledged write of the same key made at E just
before the move (it is later in <E>.log). An unacknowledged write may take
effect, but with the cut it can only do so before the next owner serves,
never at some arbitrary later time. The cut also keeps loads short.

Within one epoch the single owner writes its log, under a per-shard lock
that also orders the in-memory map, so the log's order is the write order.
A log opened again (a restart at the same epoch, after a SIGKILL) first
gets a newline if it ends mid-line, and the loader skips lines that do not
parse, so a torn line can only lose a write that was never acknowledged.

Reads
-----
A GET reads the value from memory, then asks the fence for (shard, E), and
answers only if it admits E: at the moment of the check no other owner
existed, so the value read just before it was current (every acknowledged
write of ours is in memory before its 200, and every earlier owner's was
loaded at the grant). We ask per read instead of caching the fence's answer:
a cached "yes" would stay valid only if the cache's life plus any stall of
this process stayed under the agent's safety margin (max(100 ms, heartbeat
interval)); that cannot be argued from here, and a local call costs well
under a millisecond. A drain stops reads and writes at once (503).

Drain and revoke
----------------
`drain` (a planned move is taking the shard) stops writes for it at once:
taking the shard's lock waits for an append in progress, and none starts
after. Every acknowledged write is already fsynced, so "flushing" is the
`--flush-delay-ms` a real service might spend uploading state. `revoke`
forgets the shard. Every webhook is idempotent (the agent sends a grant or
revoke again until it gets a 2xx) and is logged as one line on stderr.

A restarted service hears only later calls, so at start it asks the agent
for its grants (GET /v1/grants) and takes up those it has not heard of.

Deleting a shard in Tenure ends its ownership, not its data: created
again (its epochs go on from where they were), it loads what the shared dir
holds for it.

Webhooks are authenticated with --app-token-file (the agent's app.token):
a forged drain or revoke would make a shard unavailable until its next
move (a forged grant is refused by the fence check anyway). Without it,
bind --listen to loopback.

Not done here, a real service would: delete files older than the newest
snapshot, and bound its threads.
"""

import argparse
import base64
import hmac
import http.client
import json
import os
import re
import signal
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MAX_KEY = 256                # bytes, UTF-8
MAX_VALUE = 64 * 1024        # bytes
MAX_WEBHOOK_BODY = 4096      # {"shard", "epoch", "reason"} is far smaller
SHARD_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")
REASON_RE = re.compile(r"[A-Za-z0-9._-]{0,64}")
WEBHOOKS = ("prepare", "grant", "drain", "revoke")


def log(msg):
    t = time.time()
    sys.stderr.write("%s.%03d kv_service: %s\n" % (time.strftime("%H:%M:%S", time.localtime(t)),
                                                   int(t * 1000) % 1000, msg))
    sys.stderr.flush()


class HttpError(Exception):
    """An answer other than 200, with the JSON error body of the API."""

    def __init__(self, status, code, message, **extra):
        super().__init__(message)
        self.status = status
        self.body = dict(error=code, message=message, **extra)


# ---------------------------------------------------------------------------
# The agent's API: the fence, and the grants at start


class AgentClient:
    """Calls the agent's own HTTP API, one keep-alive connection per thread
    (a fence check is on the path of every request, so it must be cheap)."""

    TIMEOUT = 2.0

    def __init__(self, url, token=None, ssl_context=None):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname or not u.port:
            raise ValueError("--agent must be http(s)://HOST:PORT, got %r" % url)
        self.https = u.scheme == "https"
        self.host, self.port = u.hostname, u.port
        self.ssl_context = ssl_context if self.https else None
        self.headers = {"Content-Type": "application/json"}
        if token:
            self.headers["Authorization"] = "Bearer " + token
        self.local = threading.local()

    def _connection(self):
        c = getattr(self.local, "conn", None)
        if c is None:
            if self.https:
                c = http.client.HTTPSConnection(self.host, self.port, timeout=self.TIMEOUT,
                                                context=self.ssl_context)
            else:
                c = http.client.HTTPConnection(self.host, self.port, timeout=self.TIMEOUT)
            self.local.conn = c
        return c

    def _drop(self):
        c = getattr(self.local, "conn", None)
        self.local.conn = None
        if c is not None:
            c.close()

    close_thread_connection = _drop  # a handler thread ends with its client's connection

    def call(self, method, path, body=None):
        """(status, decoded JSON or None); raises OSError/HTTPException when
        the agent cannot be reached. Only idempotent calls go through here,
        so one retry on a fresh connection (the agent closed an idle one) is safe."""
        data = json.dumps(body).encode() if body is not None else None
        for attempt in (0, 1):
            c = self._connection()
            reused = c.sock is not None
            try:
                c.request(method, path, body=data, headers=self.headers)
                r = c.getresponse()
                raw = r.read()
                if r.will_close:
                    self._drop()
            except (OSError, http.client.HTTPException):
                self._drop()
                if reused and attempt == 0:
                    continue
                raise
            try:
                return r.status, json.loads(raw or b"null")
            except ValueError:
                return r.status, None
        raise AssertionError("unreachable")

    def fence(self, shard, epoch):
        """'ok', 'stale_epoch', 'not_owner', 'lease_expired' or 'unavailable'."""
        try:
            status, body = self.call("POST", "/v1/fence", {"shard": shard, "epoch": epoch})
        except (OSError, http.client.HTTPException) as e:
            return "unavailable", repr(e)
        if status == 200:
            return "ok", None
        code = body.get("error") if isinstance(body, dict) else None
        if code in ("stale_epoch", "not_owner", "lease_expired"):
            return code, body
        return "unavailable", "fence answered %d %r" % (status, body)

    def grants(self):
        status, body = self.call("GET", "/v1/grants")
        if status != 200 or not isinstance(body, dict):
            raise OSError("GET /v1/grants answered %d" % status)
        return body


def refused(result, detail, epoch, after_write=False):
    """The client's answer when the fence did not admit (shard, epoch)."""
    if after_write:
        # Appended and fsynced, but we can no longer say it counts.
        return HttpError(503, "fence_refused", "the fence stopped admitting epoch %d during the write: "
                         "it may or may not take effect (%s)" % (epoch, result))
    if result in ("stale_epoch", "not_owner"):
        return HttpError(421, "not_owner", "this worker no longer owns the shard (%s)" % result)
    if result == "lease_expired":
        return HttpError(503, "lease_expired", "the agent's lease lapsed; retry (maybe elsewhere)")
    return HttpError(503, "agent_unavailable", "cannot reach the fence: %s" % (detail,))


# ---------------------------------------------------------------------------
# The shared dir: snapshots and per-epoch logs


def encode_record(key, value):
    """One log line (no newline inside: json.dumps escapes it)."""
    try:
        return json.dumps({"k": key, "v": value.decode("utf-8")})
    except UnicodeDecodeError:
        return json.dumps({"k": key, "b": base64.b64encode(value).decode("ascii")})


def decode_record(rec):
    key = rec["k"]
    if "v" in rec:
        return key, rec["v"].encode("utf-8")
    return key, base64.b64decode(rec["b"])


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SharedDir:
    def __init__(self, root):
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)

    def shard_dir(self, shard, create=False):
        # "." and ".." are valid shard ids; "%" is not, so this cannot collide.
        name = shard.replace(".", "%2E") if shard in (".", "..") else shard
        path = os.path.join(self.root, name)
        if create and not os.path.isdir(path):
            os.makedirs(path, exist_ok=True)
            fsync_dir(self.root)  # the directory's entry is durable too
        return path

    def files(self, shard):
        """({epoch of each snapshot}, {epoch of each log})."""
        snaps, logs = set(), set()
        try:
            names = os.listdir(self.shard_dir(shard))
        except FileNotFoundError:
            return snaps, logs
        for n in names:
            stem, _, ext = n.partition(".")
            if stem.isdigit() and ext in ("snap", "log"):
                (snaps if ext == "snap" else logs).add(int(stem))
        return snaps, logs

    def read_snapshot(self, shard, epoch):
        with open(os.path.join(self.shard_dir(shard), "%d.snap" % epoch), "rb") as f:
            doc = json.loads(f.read())
        return dict(decode_record(r) for r in doc["records"])

    def write_snapshot(self, shard, epoch, data):
        """Writes <epoch>.snap once; False if it exists already (then it is
        the cut, not ours to replace). Atomic: written aside, fsynced, then
        linked into place (a link never replaces a file)."""
        d = self.shard_dir(shard, create=True)
        final = os.path.join(d, "%d.snap" % epoch)
        if os.path.exists(final):
            return False
        tmp = os.path.join(d, ".%d.snap.%d.%d" % (epoch, os.getpid(), threading.get_ident()))
        doc = {"shard": shard, "epoch": epoch,
               "records": [json.loads(encode_record(k, v)) for k, v in sorted(data.items())]}
        with open(tmp, "wb") as f:
            f.write(json.dumps(doc).encode())
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, final)
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)
            fsync_dir(d)

    def read_log(self, shard, epoch, offset, data):
        """Applies the complete lines of <epoch>.log from `offset` to `data`;
        returns the new offset. A line still being written (no newline yet)
        is left for the next read; a torn line is skipped."""
        try:
            with open(os.path.join(self.shard_dir(shard), "%d.log" % epoch), "rb") as f:
                f.seek(offset)
                chunk = f.read()
        except FileNotFoundError:
            return offset
        end = chunk.rfind(b"\n") + 1
        for line in chunk[:end].splitlines():
            try:
                key, value = decode_record(json.loads(line))
            except (ValueError, KeyError, TypeError, AttributeError):
                log("shard=%s epoch=%d: skipped a torn log line of %d bytes" % (shard, epoch, len(line)))
                continue
            data[key] = value
        return offset + end


class Image:
    """A shard's state as the shared dir holds it for epoch `epoch`: the
    newest snapshot at or below `epoch` plus the logs since. `catch_up()`
    reads only what was appended since the last read."""

    def __init__(self, shared, shard, epoch):
        self.shared, self.shard, self.epoch = shared, shard, epoch
        self.base = 0        # the snapshot it starts from (0: none)
        self.data = {}
        self.offsets = {}    # log epoch -> bytes read

    def load(self):
        snaps, logs = self.shared.files(self.shard)
        self.base = max((e for e in snaps if e <= self.epoch), default=0)
        self.data = self.shared.read_snapshot(self.shard, self.base) if self.base else {}
        self.offsets = {}
        self._read_logs(logs)
        return self

    def catch_up(self):
        snaps, logs = self.shared.files(self.shard)
        if max((e for e in snaps if e <= self.epoch), default=0) != self.base:
            return self.load()  # someone cut since: start over from that snapshot
        self._read_logs(logs)
        return self

    def _read_logs(self, logs):
        # Logs older than the snapshot are behind its cut: whatever they got
        # after it was never acknowledged.
        for e in sorted(logs):
            if self.base <= e <= self.epoch:
                self.offsets[e] = self.shared.read_log(self.shard, e, self.offsets.get(e, 0), self.data)


class LogWriter:
    """Appends to <shared>/<shard>/<epoch>.log; every append is fsynced."""

    def __init__(self, shared, shard, epoch):
        d = shared.shard_dir(shard, create=True)
        path = os.path.join(d, "%d.log" % epoch)
        existed = os.path.exists(path)
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if existed:
            # Reopened at the same epoch after a crash: end a torn last line
            # so the next record starts on a line of its own.
            with open(path, "rb") as f:
                f.seek(0, os.SEEK_END)
                if f.tell() > 0:
                    f.seek(-1, os.SEEK_END)
                    if f.read(1) != b"\n":
                        os.write(self.fd, b"\n")
            os.fsync(self.fd)
        else:
            os.fsync(self.fd)
            fsync_dir(d)  # the new file's entry is durable before any ack

    def append(self, line):
        data = line.encode("ascii") + b"\n"
        n = os.write(self.fd, data)
        if n != len(data):  # O_APPEND on a local file writes it all or fails
            raise OSError("short write to the log (%d of %d bytes)" % (n, len(data)))
        os.fsync(self.fd)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


# ---------------------------------------------------------------------------
# The service


class Shard:
    """A shard this service holds at `epoch`: 'serving' or 'draining'.
    `lock` orders appends and the map; the log opens on the first write."""

    def __init__(self, shard, epoch, data):
        self.shard, self.epoch, self.data = shard, epoch, data
        self.state = "serving"
        self.lock = threading.Lock()
        self.writer = None


def check_state(shard, state):
    if state == "draining":
        raise HttpError(503, "draining", "shard %s is draining for a move" % shard)
    if state != "serving":
        raise HttpError(421, "not_owner", "this worker no longer serves shard %s" % shard)


class Service:
    def __init__(self, agent, shared, flush_delay_ms=0):
        self.app_token = None  # required of webhook calls when set (--app-token-file)
        self.agent = agent
        self.shared = shared
        self.flush_delay = flush_delay_ms / 1000.0
        self.worker = None       # learnt from the agent's GET /v1/grants
        self.lock = threading.Lock()   # guards the maps below
        self.held = {}           # shard -> Shard
        self.prepared = {}       # shard -> Image loaded ahead of a grant
        self.seen = {}           # shard -> newest epoch named by a drain or revoke
        self.controls = {}       # shard -> Lock serializing its webhooks (and the start-up adoption)

    def control(self, shard):
        with self.lock:
            return self.controls.setdefault(shard, threading.Lock())

    def note(self, shard, epoch):
        with self.lock:
            self.seen[shard] = max(self.seen.get(shard, 0), epoch)

    # -- webhooks -----------------------------------------------------------------

    def prepare(self, shard, epoch):
        with self.control(shard):
            with self.lock:
                cur, img = self.held.get(shard), self.prepared.get(shard)
            if cur is not None and cur.epoch >= epoch:
                return "already granted at %d" % cur.epoch
            if img is not None and img.epoch == epoch:
                img.catch_up()
                return "caught up (%d keys)" % len(img.data)
            img = Image(self.shared, shard, epoch).load()
            with self.lock:
                self.prepared[shard] = img
            return "loaded %d keys (snapshot %d, logs %s)" % (len(img.data), img.base, sorted(img.offsets))

    def grant(self, shard, epoch, adopting=False):
        with self.control(shard):
            with self.lock:
                cur = self.held.get(shard)
                if cur is not None and cur.epoch >= epoch:
                    return "already held at %d" % cur.epoch
                if adopting and self.seen.get(shard, 0) >= epoch:
                    return "skipped: a drain or revoke of it came first"
                img = self.prepared.pop(shard, None)
            # The fence admits a real grant from now on; a forged or stale one
            # must not write the cut below.
            result, detail = self.agent.fence(shard, epoch)
            if result in ("stale_epoch", "not_owner"):
                return "not taken up: the fence says %s" % result
            if result != "ok":
                if img is not None:
                    with self.lock:
                        self.prepared.setdefault(shard, img)
                raise HttpError(503, result, "cannot confirm the grant with the fence (%s); "
                                "send it again" % (detail or result))
            how = "caught up after prepare"
            if img is not None and img.epoch == epoch:
                img.catch_up()
            else:
                img = Image(self.shared, shard, epoch).load()
                how = "loaded"
            if img.base != epoch and not self.shared.write_snapshot(shard, epoch, img.data):
                # <epoch>.snap exists: we were granted this epoch before this
                # process started (a restart); that snapshot is the cut.
                img = Image(self.shared, shard, epoch).load()
                how = "reloaded from the existing cut"
            s = Shard(shard, epoch, img.data)
            with self.lock:
                old = self.held.get(shard)
                self.held[shard] = s
            if old is not None:
                self._close(old, "gone")
            return "%s: %d keys, cut at %d" % (how, len(img.data), epoch)

    def drain(self, shard, epoch):
        with self.control(shard):
            self.note(shard, epoch)
            with self.lock:
                s = self.held.get(shard)
            if s is None or s.epoch != epoch:
                return "not held at %d" % epoch
            # Taking the lock waits for an append in progress; none starts after.
            self._close(s, "draining")
            # Every acknowledged write is fsynced already; a real service would
            # upload buffers, close files... here it is only the configured delay.
            if self.flush_delay > 0:
                time.sleep(self.flush_delay)
            return "drained (%d keys)" % len(s.data)

    def revoke(self, shard, epoch):
        with self.control(shard):
            self.note(shard, epoch)
            with self.lock:
                s = self.held.get(shard)
                if s is not None and s.epoch <= epoch:
                    del self.held[shard]
                else:
                    s = None
                img = self.prepared.get(shard)
                if img is not None and img.epoch <= epoch:
                    del self.prepared[shard]
            if s is None:
                return "not held"
            self._close(s, "gone")
            return "forgot %d keys" % len(s.data)

    def _close(self, s, state):
        with s.lock:
            s.state = state
            if s.writer is not None:
                s.writer.close()
                s.writer = None

    def adopt_listed_grants(self, stop):
        """At start: take up the grants the agent holds that no webhook told
        us of (a restarted service hears only later calls). Tries again until
        the agent answers and the fence confirms each one (or refuses it)."""
        delay = 0.2
        while not stop.is_set():
            try:
                body = self.agent.grants()
            except (OSError, http.client.HTTPException, ValueError) as e:
                log("agent not answering GET /v1/grants yet (%s); trying again" % e)
                stop.wait(delay)
                delay = min(delay * 2, 2.0)
                continue
            self.worker = body.get("worker")
            listed = body.get("grants", [])
            pending = 0
            for g in listed:
                shard, epoch = g.get("shard"), g.get("epoch")
                if not isinstance(shard, str) or not SHARD_RE.fullmatch(shard) or not isinstance(epoch, int):
                    continue
                if g.get("draining"):
                    # A planned move is taking it: the revoke follows; serving
                    # it again now would ignore the drain.
                    log("call=adopt shard=%s epoch=%d -> skipped: draining" % (shard, epoch))
                    continue
                try:
                    outcome = self.grant(shard, epoch, adopting=True)
                    if not outcome.startswith(("already held", "skipped")):
                        log("call=adopt shard=%s epoch=%d -> %s" % (shard, epoch, outcome))
                except HttpError as e:  # the fence cannot confirm yet (lease)
                    pending += 1
                    log("call=adopt shard=%s epoch=%d -> %d %s" % (shard, epoch, e.status, e.body["message"]))
                except Exception:
                    pending += 1
                    log("call=adopt shard=%s epoch=%d -> error\n%s" % (shard, epoch, traceback.format_exc()))
            if not pending:
                log("worker %s: took up the agent's grants (%d listed)" % (self.worker, len(listed)))
                return
            stop.wait(delay)
            delay = min(delay * 2, 2.0)

    # -- the client API --------------------------------------------------------

    def _serving(self, shard):
        with self.lock:
            s = self.held.get(shard)
        if s is None:
            raise HttpError(421, "not_owner", "this worker does not serve shard %s" % shard)
        return s

    def put(self, shard, key, value):
        s = self._serving(shard)
        with s.lock:
            epoch, state = s.epoch, s.state
        check_state(shard, state)
        result, detail = self.agent.fence(shard, epoch)                 # 1
        if result != "ok":
            raise refused(result, detail, epoch)
        with s.lock:                                                    # 2
            if s.state != "serving":
                raise HttpError(503, "draining", "shard %s began to drain" % shard)
            try:
                if s.writer is None:
                    s.writer = LogWriter(self.shared, shard, epoch)
                s.writer.append(encode_record(key, value))
            except OSError as e:
                # Perhaps half a line is in the log: reopen it for the next
                # write (which ends the torn line first), so that no later
                # record is glued to the fragment.
                if s.writer is not None:
                    s.writer.close()
                    s.writer = None
                log("shard=%s epoch=%d: cannot append to the log: %s" % (shard, epoch, e))
                raise HttpError(503, "storage_error", "the write may or may not take effect: %s" % e)
            s.data[key] = value
        result, detail = self.agent.fence(shard, epoch)                 # 3
        if result != "ok":
            raise refused(result, detail, epoch, after_write=True)
        return {"ok": True, "shard": shard, "key": key, "epoch": epoch, "worker": self.worker}

    def get(self, shard, key):
        s = self._serving(shard)
        with s.lock:
            epoch, state = s.epoch, s.state
            value = s.data.get(key)
        check_state(shard, state)
        result, detail = self.agent.fence(shard, epoch)  # after the read: see the header
        if result != "ok":
            raise refused(result, detail, epoch)
        if value is None:
            raise HttpError(404, "not_found", "no key %r in shard %s" % (key, shard), epoch=epoch)
        return epoch, value

    def status(self):
        with self.lock:
            held = list(self.held.values())
            prepared = [(k, v.epoch) for k, v in self.prepared.items()]
        return {"worker": self.worker,
                "shards": [{"shard": s.shard, "epoch": s.epoch, "state": s.state, "keys": len(s.data)}
                           for s in sorted(held, key=lambda s: s.shard)],
                "prepared": [{"shard": k, "epoch": e} for k, e in sorted(prepared)]}


# ---------------------------------------------------------------------------
# HTTP


def make_handler(service):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"   # keep-alive: clients and the agent reuse connections
        default_request_version = "HTTP/1.0"  # not 0.9: even a garbage request line gets a status line
        server_version = "kv_service"
        timeout = 30                    # an idle or slow connection is closed
        # The status line and headers go out in one write and the body in
        # another: with Nagle's algorithm the body would wait for the
        # client's delayed ACK (40 ms a request).
        disable_nagle_algorithm = True

        def log_message(self, fmt, *args):
            pass  # only webhooks are logged

        def finish(self):
            try:
                super().finish()
            finally:
                service.agent.close_thread_connection()

        def send_error(self, code, message=None, explain=None):
            # The base class's own refusals (bad request line, 414, 431, 501),
            # as JSON like every other error.
            codes = {400: "bad_request", 404: "not_found", 414: "too_large", 431: "too_large"}
            self.close_connection = True
            try:
                self.answer(code, {"error": codes.get(code, "bad_request"), "message": message or ""})
            except OSError:
                pass

        def answer(self, status, body, raw=None, headers=()):
            data = raw if raw is not None else (json.dumps(body) + "\n").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/octet-stream" if raw is not None
                             else "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers:
                self.send_header(k, v)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def read_body(self, limit):
            if self.headers.get("Transfer-Encoding"):
                self.close_connection = True
                raise HttpError(411, "bad_request", "send a Content-Length, not a chunked body")
            text = self.headers.get("Content-Length", "0").strip()
            if not text.isdigit() or len(text) > 12:
                self.close_connection = True
                raise HttpError(400, "bad_request", "bad Content-Length")
            n = int(text)
            if n > limit:
                self.close_connection = True  # the body is not read: the connection cannot go on
                raise HttpError(413, "too_large", "body of %d bytes, at most %d" % (n, limit))
            data = self.rfile.read(n)
            self.body_pending = False
            if len(data) != n:
                self.close_connection = True
                raise HttpError(400, "bad_request", "body shorter than its Content-Length")
            return data

        def dispatch(self):
            path = self.path.split("?", 1)[0]
            # A body we refuse unread would be taken for the next request on
            # this connection: answering without reading it closes the connection.
            self.body_pending = bool(self.headers.get("Transfer-Encoding")) or \
                self.headers.get("Content-Length", "0").strip() not in ("", "0")
            try:
                if path.startswith("/tenure/v1/"):
                    return self.webhook(path[len("/tenure/v1/"):])
                if path.startswith("/kv/"):
                    return self.kv(path[len("/kv/"):])
                if path in ("/status", "/healthz"):
                    if self.command not in ("GET", "HEAD"):
                        raise HttpError(405, "method_not_allowed", "GET only")
                    self.read_body(0)
                    return self.answer(200, service.status() if path == "/status" else {"status": "ok"})
                raise HttpError(404, "not_found", "no route %s" % path)
            except HttpError as e:
                if self.body_pending:
                    self.close_connection = True
                self.answer(e.status, e.body)
            except (ConnectionError, TimeoutError):
                self.close_connection = True
            except Exception as e:  # never let a request take the service down
                log("internal error on %s %s\n%s" % (self.command, path, traceback.format_exc()))
                self.close_connection = True  # the body may be unread
                self.answer(500, {"error": "internal", "message": type(e).__name__})

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = dispatch

        def webhook(self, call):
            if self.command != "POST":
                raise HttpError(405, "method_not_allowed", "POST only")
            if service.app_token is not None and not hmac.compare_digest(
                    self.headers.get("Authorization", "").encode(), ("Bearer " + service.app_token).encode()):
                raise HttpError(401, "unauthorized", "webhooks need the agent's app.token")
            raw = self.read_body(MAX_WEBHOOK_BODY)
            if call not in WEBHOOKS:
                raise HttpError(404, "not_found", "unknown call %r" % call)
            try:
                body = json.loads(raw)
            except ValueError:
                raise HttpError(400, "bad_request", "body is not JSON")
            shard = body.get("shard") if isinstance(body, dict) else None
            epoch = body.get("epoch") if isinstance(body, dict) else None
            reason = body.get("reason", "") if isinstance(body, dict) else ""
            if not isinstance(reason, str) or not REASON_RE.fullmatch(reason):
                reason = "?"  # only logged: keep odd text out of the log
            if not isinstance(shard, str) or not SHARD_RE.fullmatch(shard):
                raise HttpError(400, "bad_request", "bad shard", field="shard")
            if not isinstance(epoch, int) or isinstance(epoch, bool) or epoch < 1:
                raise HttpError(400, "bad_request", "bad epoch", field="epoch")
            t0 = time.monotonic()
            what = "call=%s shard=%s epoch=%d reason=%s" % (call, shard, epoch, reason)
            try:
                outcome = getattr(service, call)(shard, epoch)
            except HttpError as e:
                log("%s -> %d %s (%.1f ms)" % (what, e.status, e.body["message"], (time.monotonic() - t0) * 1e3))
                raise
            except Exception:
                log("%s -> 500 (%.1f ms)\n%s" % (what, (time.monotonic() - t0) * 1e3, traceback.format_exc()))
                raise
            log("%s -> 200 %s (%.1f ms)" % (what, outcome, (time.monotonic() - t0) * 1e3))
            self.answer(200, {"ok": True})

        def kv(self, rest):
            shard, sep, quoted_key = rest.partition("/")
            if not SHARD_RE.fullmatch(shard) or not sep or not quoted_key:
                raise HttpError(400, "bad_request", "use /kv/{shard}/{key}")
            try:
                key = urllib.parse.unquote_to_bytes(quoted_key).decode("utf-8")
            except UnicodeDecodeError:
                raise HttpError(400, "bad_request", "the key is not UTF-8")
            if len(key.encode("utf-8")) > MAX_KEY:
                raise HttpError(413, "too_large", "key over %d bytes" % MAX_KEY)
            if self.command == "PUT":
                value = self.read_body(MAX_VALUE)
                self.answer(200, service.put(shard, key, value))
            elif self.command in ("GET", "HEAD"):
                self.read_body(0)
                epoch, value = service.get(shard, key)
                self.answer(200, None, raw=value, headers=[("Tenure-Epoch", str(epoch))])
            else:
                raise HttpError(405, "method_not_allowed", "GET or PUT")

    return Handler


def parse_args(argv):
    p = argparse.ArgumentParser(description="A sharded key-value service beside a tenure-agent "
                                            "(examples/kv-service; docs/api.md, 'Agent and program').")
    p.add_argument("--listen", required=True, help="HOST:PORT to serve clients and the agent's webhooks")
    p.add_argument("--agent", required=True, help="the agent's own API, http(s)://HOST:PORT")
    p.add_argument("--shared-dir", required=True, help="storage shared by every worker")
    p.add_argument("--agent-token-file", help="the agent's auth.client_token (sent to /v1/fence)")
    p.add_argument("--app-token-file", help="the agent's app.token (required of its webhook calls)")
    p.add_argument("--agent-ca", help="CA of the agent's certificate (https --agent)")
    p.add_argument("--agent-cert", help="client certificate for an agent that requires one")
    p.add_argument("--agent-key", help="its key")
    p.add_argument("--flush-delay-ms", type=int, default=0, help="extra time a drain takes (default 0)")
    a = p.parse_args(argv)
    host, sep, port = a.listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        p.error("--listen must be HOST:PORT")
    a.listen_addr = (host.strip("[]") or "127.0.0.1", int(port))
    if a.flush_delay_ms < 0:
        p.error("--flush-delay-ms must be >= 0")
    if bool(a.agent_cert) != bool(a.agent_key):
        p.error("--agent-cert and --agent-key go together")
    return a


def main(argv=None):
    a = parse_args(sys.argv[1:] if argv is None else argv)
    token = None
    try:
        if a.agent_token_file:
            with open(a.agent_token_file) as f:
                token = f.readline().strip()
        ctx = None
        if a.agent.startswith("https:"):
            ctx = ssl.create_default_context(cafile=a.agent_ca)
            if a.agent_cert:
                ctx.load_cert_chain(a.agent_cert, a.agent_key)
        agent = AgentClient(a.agent, token=token, ssl_context=ctx)
        shared = SharedDir(a.shared_dir)
        service = Service(agent, shared, a.flush_delay_ms)
        if a.app_token_file:
            with open(a.app_token_file) as f:
                service.app_token = f.readline().strip()
        server = ThreadingHTTPServer(a.listen_addr, make_handler(service))
    except (OSError, ValueError, ssl.SSLError) as e:
        sys.stderr.write("kv_service: %s\n" % e)
        return 2
    server.daemon_threads = True
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()
        threading.Thread(target=server.shutdown, daemon=True).start()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=service.adopt_listed_grants, args=(stop,), name="adopt", daemon=True).start()
    log("listening on %s:%d, agent %s, shared dir %s" % (a.listen_addr + (a.agent, shared.root)))
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
