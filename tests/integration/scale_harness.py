"""Helpers of the scale tests (test_scale_*.py): a writer that times each
acknowledged write, percentiles, a process's resident memory."""

import http.client
import sys
import threading
import time

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
