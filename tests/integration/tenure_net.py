"""Sockets for Tenure's integration tests: deadline polling, HTTP/1.1 with
keep-alive, raw requests, watch streams, free ports, and the TCP proxy that
stands on every directed peer link (tenure_harness.py builds on these).

Stdlib only (Python 3.9+).
"""

import http.client
import json
import os
import random
import socket
import threading
import time

# Deadlines are generous: CI machines are slow and shared. TENURE_INTEG_SLOW
# multiplies every deadline (e.g. 3 under sanitizers).
SLOW = float(os.environ.get("TENURE_INTEG_SLOW", "1"))

# ---------------------------------------------------------------------------
# Polling


class WaitTimeout(AssertionError):
    pass


def wait_until(predicate, timeout, what, interval=0.05):
    """Polls `predicate` until it returns a truthy value (returned) or
    `timeout` seconds (times SLOW) pass; then fails naming `what` and the last
    value or exception seen. OSError and http errors count as "not yet"."""
    deadline = time.monotonic() + timeout * SLOW
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except (OSError, http.client.HTTPException, ValueError) as e:
            last = e
        if time.monotonic() >= deadline:
            raise WaitTimeout("timed out after %.1fs waiting for %s (last: %r)" % (timeout * SLOW, what, last))
        time.sleep(interval)  # a polling interval, not a wait for a state


# ---------------------------------------------------------------------------
# HTTP with keep-alive


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case names
        self.body = body

    @property
    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        text = self.body[:300].decode("utf-8", "replace")
        return "<%d %s>" % (self.status, text)


_local = threading.local()


def _conn(address, timeout, ssl_context=None):
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = {}
    c = pool.get(address)
    if c is not None and getattr(c, "_tenure_ssl", None) is not ssl_context:
        c.close()  # another client identity: a fresh connection
        c = None
    if c is None:
        host, port = address.rsplit(":", 1)
        if ssl_context is None:
            c = http.client.HTTPConnection(host, int(port), timeout=timeout)
        else:
            c = http.client.HTTPSConnection(host, int(port), timeout=timeout, context=ssl_context)
        c._tenure_ssl = ssl_context
        pool[address] = c
    else:
        c.timeout = timeout
        if c.sock is not None:
            c.sock.settimeout(timeout)
    return c


def _drop_conn(address):
    pool = getattr(_local, "pool", {})
    c = pool.pop(address, None)
    if c is not None:
        c.close()


def close_connections():
    """Closes this thread's keep-alive connections."""
    for a in list(getattr(_local, "pool", {})):
        _drop_conn(a)


def http_request(address, method, path, body=None, headers=None, timeout=10.0, ssl_context=None):
    """One HTTP/1.1 request on this thread's keep-alive connection to
    `address` ("host:port"). `body` may be bytes, str or a JSON-able value.
    A request that fails on a reused connection before any answer (the
    server closed it while idle) is sent again once on a fresh one; callers
    that must not resend a write give it an Idempotency-Key (the API applies
    a retried request id once). Raises OSError when the member is
    unreachable; ConnectionRefusedError only when the request was sent
    nowhere (a refused retry after a failure on a reused connection raises
    that failure). With `ssl_context`, HTTPS (the context's certificate is the
    client's identity)."""
    hdrs = {"Connection": "keep-alive"}
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode("utf-8")
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    first_failure = None
    for attempt in (0, 1):
        c = _conn(address, timeout * SLOW, ssl_context)
        reused = c.sock is not None
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            data = r.read()
        except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine) as e:
            _drop_conn(address)
            if reused and attempt == 0 and isinstance(e, (ConnectionResetError, BrokenPipeError,
                                                          http.client.RemoteDisconnected,
                                                          http.client.BadStatusLine)):
                first_failure = e
                continue
            if first_failure is not None and isinstance(e, ConnectionRefusedError):
                # The first attempt may have reached a server that then died
                # (chaos seed 202 in CI: a delete sent to a leader killed by a
                # full disk was committed by its followers). Its refused retry
                # must not make the request look never sent.
                raise first_failure from e
            raise
        except (OSError, http.client.HTTPException):
            _drop_conn(address)
            raise
        hs = {k.lower(): v for k, v in r.getheaders()}
        if r.will_close:
            _drop_conn(address)
        return Response(r.status, hs, data)
    raise AssertionError("unreachable")


def raw_exchange(address, request_bytes, timeout=10.0, body_after=None):
    """Sends raw bytes on a fresh connection and returns (status, headers,
    body) of the first response (read until the server closes or the body
    ends). `body_after` is sent after the request bytes, ignoring errors (a
    server may answer and close before reading it)."""
    host, port = address.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=timeout * SLOW)
    try:
        s.sendall(request_bytes)
        if body_after:
            try:
                s.sendall(body_after)
            except OSError:
                pass
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
            head, sep, rest = data.partition(b"\r\n\r\n")
            if sep:
                hs = _parse_headers(head)
                n = int(hs.get("content-length", "-1"))
                if n >= 0 and len(rest) >= n:
                    break
        head, _, rest = data.partition(b"\r\n\r\n")
        if not head:
            raise ConnectionError("no response")
        status = int(head.split(b" ", 2)[1])
        hs = _parse_headers(head)
        n = int(hs.get("content-length", len(rest)))
        return Response(status, hs, rest[:n])
    finally:
        s.close()


def _parse_headers(head):
    hs = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.decode("latin-1").partition(":")
        hs[k.strip().lower()] = v.strip()
    return hs


class WatchStream:
    """GET /v1/watch as a line iterator on its own connection."""

    def __init__(self, address, path, timeout=10.0):
        host, port = address.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=timeout * SLOW)
        self.conn.request("GET", path)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.headers = {k.lower(): v for k, v in self.response.getheaders()}
        self._events = []

    def error_body(self):
        return json.loads(self.response.read().decode("utf-8"))

    def next_line(self, timeout=20.0):
        """The next non-progress JSON line; raises on end of stream, or when
        none came within `timeout` seconds (progress lines keep the socket
        busy, so the socket timeout alone would not end the wait)."""
        deadline = time.monotonic() + timeout * SLOW
        while True:
            if time.monotonic() > deadline:
                raise WaitTimeout("no watch event within %.0fs" % (timeout * SLOW))
            line = self.response.readline()
            if not line:
                raise ConnectionError("watch stream ended")
            obj = json.loads(line.decode("utf-8"))
            if obj.get("type") == "progress":
                continue
            return obj

    def close(self):
        self.conn.close()


# ---------------------------------------------------------------------------
# Ports


_port_lock = threading.Lock()
_ports_handed_out = set()


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low, high = (int(x) for x in f.read().split())
            return low, high
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _bindable(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port():
    """A port free on 127.0.0.1 now, not handed out by this process before,
    and outside the kernel's ephemeral range: a port the kernel handed out for
    port 0 could be taken again by any outgoing connection (a peer dial, a
    test's HTTP client) between our close and the member's bind, which a CI
    run saw. Below the range only another test process picking the same port
    can take it; a member that then fails to bind is restarted on another
    port (see Member._launch and Cluster.start)."""
    low, _ = _ephemeral_range()
    first = 10000 if low > 12000 else 1024
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    with _port_lock:
        for _ in range(200):
            port = rng.randrange(first, low) if low > first else 0
            if port == 0:
                break
            if port not in _ports_handed_out and _bindable(port):
                _ports_handed_out.add(port)
                return port
        # No room below the ephemeral range: let the kernel pick.
        while True:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
            s.close()
            if port not in _ports_handed_out:
                _ports_handed_out.add(port)
                return port


def listens_on(pid, port):
    """True if process `pid` holds the socket listening on 127.0.0.1:`port`.
    A /healthz answer alone does not say whose it is: another test process
    may hold the port (one of its members restarted on its own port after
    free_port() handed it to us), and then our process fails to bind while
    the other one answers. Reads /proc/net/tcp (Linux only, as the suite)."""
    inodes = set()
    want = ":%04X" % port
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[1].endswith(want) and fields[3] == "0A":  # 0A: LISTEN
                        inodes.add("socket:[%s]" % fields[9])
        except OSError:
            continue
    if not inodes:
        return False
    fd_dir = "/proc/%d/fd" % pid
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return False
    for name in names:
        try:
            if os.readlink(os.path.join(fd_dir, name)) in inodes:
                return True
        except OSError:
            continue
    return False


# ---------------------------------------------------------------------------
# The TCP proxy of one directed link


class LinkProxy:
    """Forwards TCP connections from 127.0.0.1:<port> to a member's listen
    address. Modes: "pass" forwards; "refuse" closes every connection at
    once (the sender sees fast failures); "blackhole" accepts and holds
    connections but forwards nothing (the sender sees timeouts). Leaving a
    cut mode closes the connections that lived through it, so no stream
    resumes mid-request. `delay` (seconds, default 0) holds each chunk that
    long before passing it on: a slow link (the chaos suite's nemesis)."""

    delay = 0.0

    def __init__(self, name, target):
        self.name = name
        self._target = target  # a callable giving "host:port" of the destination now
        self._mode = "pass"
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._conns = set()
        self._closed = False
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = self._listener.getsockname()[1]
        self.address = "127.0.0.1:%d" % self.port
        self.forwarded_bytes = 0
        threading.Thread(target=self._accept_loop, name="proxy-" + name, daemon=True).start()

    @property
    def mode(self):
        return self._mode

    def set_mode(self, mode):
        assert mode in ("pass", "refuse", "blackhole"), mode
        with self._lock:
            if mode == self._mode:
                return
            self._mode = mode
            doomed = list(self._conns)
            self._conns.clear()
            self._cond.notify_all()
        for pair in doomed:
            _close_pair(pair)

    def close(self):
        with self._lock:
            self._closed = True
            doomed = list(self._conns)
            self._conns.clear()
            self._cond.notify_all()
        try:
            self._listener.close()
        except OSError:
            pass
        for pair in doomed:
            _close_pair(pair)

    def _accept_loop(self):
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                closed, mode = self._closed, self._mode
            if closed or mode == "refuse":
                _close_sock(client)
                continue
            if mode == "blackhole":
                with self._lock:
                    self._conns.add((client, None))
                continue
            try:
                host, port = self._target().rsplit(":", 1)
                upstream = socket.create_connection((host, int(port)), timeout=5)
                upstream.settimeout(None)
            except OSError:
                _close_sock(client)
                continue
            pair = (client, upstream)
            with self._lock:
                if self._closed or self._mode != "pass":
                    _close_pair(pair)
                    continue
                self._conns.add(pair)
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(pair, src, dst), daemon=True).start()

    def _pump(self, pair, src, dst):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            if self.delay > 0:
                time.sleep(self.delay)  # the injected latency itself, not a wait for a state
            with self._lock:
                # A cut stops forwarding at once; the pair is closed by set_mode.
                if self._mode != "pass" or pair not in self._conns:
                    break
                self.forwarded_bytes += len(data)
            try:
                dst.sendall(data)
            except OSError:
                break
        with self._lock:
            self._conns.discard(pair)
        _close_pair(pair)


def _close_sock(s):
    if s is None:
        return
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    try:
        s.close()
    except OSError:
        pass


def _close_pair(pair):
    for s in pair:
        _close_sock(s)
