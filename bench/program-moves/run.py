#!/usr/bin/env python3
"""Per-shard unavailability during planned moves with the program in the
loop (issue 14's figure; docs/performance.md, "Planned moves with a
program"). Not part of CI.

Real processes: 3 tenure-controllers (through the test harness's peer
proxies), 2 tenure-agents, each with app.url pointing at an HTTP program in
this process whose drain takes --flush-ms (it "flushes"). For each of
--moves manual moves of one shard between the two workers, two threads hit
POST /v1/fence on the source (at the old epoch) and on the target (at the
new one) back to back over kept-alive connections, and the script records:

- fence gap: first acceptance at the target minus last acceptance at the
  source (negative would be two writers; it is checked);
- program gap: the moment the target's program can serve the shard minus
  the moment the source's program was asked to drain (a program stops
  taking writes for the shard then): what the program's clients see. The
  target's program needs --load-ms to load a shard: when asked to prepare
  (the default), or, with --no-prepare, once granted (it answers prepare at
  once and loads after the grant). It can serve when its grant call is
  answered.

    bench/program-moves/run.py --bin build/bin [--moves 1000] [--flush-ms 100] [--load-ms 100] [--no-prepare]
"""

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "integration"))

import fleet_harness as fh  # noqa: E402
import tenure_harness as th  # noqa: E402
from test_program_calls import Programs  # noqa: E402


class Prober(threading.Thread):
    """Asks one agent's fence about (shard, epoch) as fast as it answers."""

    def __init__(self, agent):
        super().__init__(daemon=True)
        host, port = agent.address.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=5)
        self.target = None  # (shard, epoch)
        self.last_ok = None
        self.first_ok = None
        self.stop = False
        self.lock = threading.Lock()

    def watch(self, shard, epoch):
        with self.lock:
            self.target = (shard, epoch)
            self.last_ok = self.first_ok = None

    def run(self):
        while not self.stop:
            with self.lock:
                t = self.target
            if t is None:
                time.sleep(0.001)
                continue
            body = json.dumps({"shard": t[0], "epoch": t[1]})
            self.conn.request("POST", "/v1/fence", body, {"Content-Type": "application/json"})
            r = self.conn.getresponse()
            r.read()
            now = time.monotonic()
            if r.status == 200:
                with self.lock:
                    if self.target == t:
                        self.last_ok = now
                        if self.first_ok is None:
                            self.first_ok = now


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--moves", type=int, default=1000)
    ap.add_argument("--flush-ms", type=int, default=100)
    ap.add_argument("--load-ms", type=int, default=100, help="the target's program loads a shard this long")
    ap.add_argument("--no-prepare", action="store_true", help="the program loads after the grant, not when asked to prepare")
    ap.add_argument("--no-program", action="store_true", help="agents without app.url (a revoke takes effect at once)")
    args = ap.parse_args()
    th.BIN_DIR = os.path.abspath(args.bin)

    base = tempfile.mkdtemp(prefix="tenure-program-moves-")
    programs = Programs()
    c = th.Cluster(base, n=3, heartbeat_ms=100, election_ms=1000, worker_lease_ms=3000)
    f = fh.Fleet(base, c)
    for w in ("w1", "w2"):
        a = f.add_agent(w, heartbeat_ms=500)
        url = programs.url(w)
        programs.by_worker[w].drain_delay = args.flush_ms / 1000.0
        if args.no_prepare:
            programs.by_worker[w].grant_delay = args.load_ms / 1000.0
        else:
            programs.by_worker[w].prepare_delay = args.load_ms / 1000.0
        if not args.no_program:
            a.app = {"url": url, "drain_timeout_ms": 5000}
    try:
        c.start()
        f.start()
        f.create_shards(4)
        views, _ = f.wait_agreement(timeout=30)
        probes = {w: Prober(f.agent(w)) for w in ("w1", "w2")}
        for p in probes.values():
            p.start()
        fence_gaps, program_gaps = [], []
        shard = sorted(views)[0]
        for i in range(args.moves):
            view = f.shard(shard)
            src, epoch = view["worker"], view["epoch"]
            dst = "w2" if src == "w1" else "w1"
            probes[src].watch(shard, epoch)
            probes[dst].watch(shard, epoch + 1)
            th.wait_until(lambda: probes[src].last_ok is not None, 10, "the source accepting", interval=0.001)
            asked_before = len(programs.by_worker[src].of("drain_asked", shard))
            granted_before = len(programs.by_worker[dst].of("grant", shard))
            r = f.move(shard, dst)
            assert r.status == 202, r
            th.wait_until(lambda: probes[dst].first_ok is not None, 20, "the target accepting", interval=0.001)
            first, last = probes[dst].first_ok, probes[src].last_ok
            fence_gaps.append((first - last) * 1000)
            if not args.no_program:
                th.wait_until(lambda: len(programs.by_worker[dst].of("grant", shard)) > granted_before, 20,
                              "the target's program serving", interval=0.001)
                drained = programs.by_worker[src].of("drain_asked", shard)
                ready = programs.by_worker[dst].of("grant", shard)[-1][0]
                if len(drained) > asked_before:
                    program_gaps.append((ready - drained[-1][0]) * 1000)
            if (i + 1) % 100 == 0:
                print("moves=%d fence_gap_p50=%.1fms" % (i + 1, statistics.median(fence_gaps)), flush=True)
        overlaps = [g for g in fence_gaps if g < 0]
        print("moves=%d flush_ms=%d load_ms=%d program=%s prepare=%s" %
              (len(fence_gaps), args.flush_ms, args.load_ms, not args.no_program, not args.no_prepare))
        print("fence gap (last write at the source -> first at the target): p50 %.1f ms, p99 %.1f ms, max %.1f ms" %
              (pct(fence_gaps, 50), pct(fence_gaps, 99), max(fence_gaps)))
        if program_gaps:
            print("program gap (drain asked -> the target's program serving): p50 %.1f ms, p99 %.1f ms, max %.1f ms" %
                  (pct(program_gaps, 50), pct(program_gaps, 99), max(program_gaps)))
        print("overlaps (two writers): %d" % len(overlaps))
        for p in probes.values():
            p.stop = True
    finally:
        f.shutdown()
        c.shutdown()
        programs.stop()


if __name__ == "__main__":
    main()
