#!/usr/bin/env python3
"""A Jepsen-style chaos run on the real binaries (docs/testing-chaos.md):
3 tenure-controllers and 3 tenure-agents on 127.0.0.1, several clients and
watchers running concurrently, a seeded nemesis, then the checkers over the
whole history. Prints a summary; exits 0 when no anomaly was found (or, with
--expect CLASS, when one of that class was), 1 otherwise.

    python3 tests/chaos/chaos.py --bin build/bin --time 120 --seed 7 --faults kill,pause,partition,slow
"""

import argparse
import calendar
import json
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import clocks  # noqa: E402
import fencing  # noqa: E402
import fleet_harness as fh  # noqa: E402
import invariants  # noqa: E402
import linearizability as lin  # noqa: E402
import nemesis as nem  # noqa: E402
import tenure_harness as th  # noqa: E402
import watch_check  # noqa: E402
import workloads as wl  # noqa: E402
from history import History  # noqa: E402
from tenure_net import wait_until  # noqa: E402

CLASSES = ("linearizability", "watch", "reads-vs-watch", "acked-creations", "member-monotonic", "fencing", "harness")
PLANTS = ("stale-read", "drop-watch-event", "fence-accept-stale")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default=os.path.join(HERE, "..", "..", "build", "bin"))
    p.add_argument("--time", type=float, default=60.0, help="seconds of workload under faults")
    p.add_argument("--seed", default="1")
    p.add_argument("--faults", default=",".join(nem.DEFAULT_FAULTS),
                   help="comma-separated, from: %s; or none" % ", ".join(nem.FAULTS))
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--writers", type=int, default=2, help="fenced writers through the agents")
    p.add_argument("--shards", type=int, default=8, help="size of the shard pool the clients contend on")
    p.add_argument("--agents", type=int, default=3)
    p.add_argument("--nodes", type=int, default=3, help="controllers (5 makes the partitions richer)")
    p.add_argument("--events-kept", type=int, default=300, help="controllers' watch_events_kept")
    p.add_argument("--check-seconds", type=float, default=60.0, help="time bound of the linearizability search")
    p.add_argument("--plant", default="", help="a planted fault in the harness: %s" % ", ".join(PLANTS))
    p.add_argument("--expect", default="", choices=("",) + CLASSES,
                   help="succeed only if an anomaly of this class is found (to prove a checker)")
    p.add_argument("--dir", default="", help="keep the run here (default: a temp dir, removed if clean)")
    a = p.parse_args(argv)
    a.faults = [] if a.faults in ("", "none") else a.faults.split(",")
    a.plant = [x for x in a.plant.split(",") if x]
    for x in a.plant:
        if x not in PLANTS:
            p.error("unknown --plant %s" % x)
    unknown = [f for f in a.faults if f not in nem.FAULTS]
    if unknown:
        p.error("unknown fault(s) %s; known: %s" % (",".join(unknown), ",".join(nem.FAULTS)))
    return a


class Run:
    def __init__(self, args):
        self.args = args
        th.BIN_DIR = os.path.abspath(args.bin)
        th.controller_binary()
        fh.agent_binary()
        self.dir = args.dir or tempfile.mkdtemp(prefix="tenure-chaos-")
        os.makedirs(self.dir, exist_ok=True)
        self.pool = ["k-%d" % i for i in range(args.shards)]
        self.history = History()
        self.samples = []
        self.anomalies = {c: [] for c in CLASSES}
        self.details = []

    def replay_command(self):
        a = self.args
        cmd = "scripts/chaos.sh --time %g --seed %s --faults %s" % (a.time, a.seed, ",".join(a.faults) or "none")
        defaults = parse_args([])
        for name in ("nodes", "agents", "clients", "writers", "shards", "events_kept"):
            if getattr(a, name) != getattr(defaults, name):
                cmd += " --%s %s" % (name.replace("_", "-"), getattr(a, name))
        if a.plant:
            cmd += " --plant " + ",".join(a.plant)
        return cmd

    def setup(self):
        a = self.args
        self.cluster = th.Cluster(self.dir, n=a.nodes, heartbeat_ms=50, election_ms=500, worker_lease_ms=2000)
        for m in self.cluster.all():
            m.extra_yaml = "watch_events_kept: %d\n" % a.events_kept
        self.fleet = fh.Fleet(self.dir, self.cluster)
        self.workers = ["w%d" % i for i in range(1, a.agents + 1)]
        for i, w in enumerate(self.workers):
            self.fleet.add_agent(w, zone="z%d" % (i % 2 + 1), heartbeat_ms=250)
        # With agent-partition, every agent dials every member through a
        # proxy of its own (the nemesis cuts them); else directly.
        self.agent_links = {}
        if "agent-partition" in a.faults:
            for ag in self.fleet.all():
                for m in self.cluster.all():
                    self.agent_links[(ag.id, m.id)] = th.LinkProxy("%s->%s" % (ag.id, m.id),
                                                                   lambda m=m: m.address)
                ag.controllers = [self.agent_links[(ag.id, m.id)].address for m in self.cluster.all()]
        self.clocks = None
        clock_faults = [f for f in ("clock-jump", "clock-drift") if f in a.faults]
        if clock_faults:
            if not clocks.available():
                raise SystemExit("clock faults need libfaketime (apt-get install libfaketime): %s" % clocks.LIB)
            # One mode per process for the whole run (clocks.py); with both
            # faults on, each process draws one.
            self.clocks = clocks.ClockControl(self.dir, th.BIN_DIR)
            draw = random.Random("clocks-%s" % a.seed)
            for p in self.cluster.all() + self.fleet.all():
                modes = [f.split("-")[1] for f in clock_faults]
                self.clocks.attach(p, draw.choice(modes), clocks.draw_rate(draw))
        self.cluster.start()
        self.fleet.start()
        self.t0 = time.monotonic()
        self.wall0 = time.time()
        self.clock = wl.Clock(self.t0)
        self.nlog = nem.NemesisLog(os.path.join(self.dir, "nemesis.log"), self.t0)
        self.nlog.log("info", "run", "seed=%s faults=%s plant=%s" % (a.seed, ",".join(a.faults), ",".join(a.plant)))
        if self.clocks is not None:
            self.nlog.log("info", "clocks", " ".join("%s=%s%s" % (p, m, "" if m == "jump" else "@x%.4f" % r)
                                                     for p, m, r in self.clocks.describe()))

    def start(self):
        a = self.args
        self.monitor = wl.ClusterMonitor(self.cluster, self.samples)
        self.watchers = [
            wl.Watcher("from0", a.seed, self.cluster, self.clock, since0=True, pool_prefix="k-"),
            wl.Watcher("now", a.seed, self.cluster, self.clock, since0=False, pool_prefix="k-", plant=a.plant),
            wl.Watcher("lagger", a.seed, self.cluster, self.clock, since0=True, lag=True, pool_prefix="k-"),
            wl.Watcher("w1-only", a.seed, self.cluster, self.clock, since0=True, worker="w1", pool_prefix="k-"),
        ]
        self.clients = [wl.RegisterClient(i, a.seed, self.cluster, self.workers, self.pool, self.history,
                                          self.clock, self.samples, plant=a.plant) for i in range(a.clients)]
        self.writers = [fencing.FencedWriter(i, a.seed, self.fleet, self.clock, "k-", plant=a.plant)
                        for i in range(a.writers)]
        self.nemesis = nem.Nemesis(self.cluster, self.fleet, a.seed, a.faults, self.nlog, clocks=self.clocks,
                                   agent_links=self.agent_links)
        for t in [self.monitor] + self.watchers + self.clients + self.writers + [self.nemesis]:
            t.start()

    def finish(self):
        self.nemesis.stop()  # heals everything
        for c in self.clients:
            c.stop()
        for c in self.clients:
            c.join(timeout=30)
        for w in self.writers:
            w.stop()
        try:
            self.cluster.wait_leader(timeout=30)
        except th.WaitTimeout as e:
            raise th.WaitTimeout("%s; after healing: %s" % (e, self.process_states()))
        self.final_read()
        stalled = []
        try:
            wait_until(lambda: all(w.covered >= self.final_revision for w in self.watchers), 30,
                       "every watcher delivering up to revision %d" % self.final_revision, interval=0.1)
        except th.WaitTimeout:
            stalled = ["watcher %s delivered only up to revision %d of %d within 30 s after healing" % (
                w.wname, w.covered, self.final_revision) for w in self.watchers if w.covered < self.final_revision]
        self.anomalies["watch"].extend(stalled)
        for w in self.watchers:
            w.stop()
        self.monitor.stop()
        self.writes = [x for w in self.writers for x in w.writes]
        self.readback = fencing.read_back(self.fleet, self.writes)
        self.nlog.log("info", "run", "stopped; final revision %d" % self.final_revision)

    def process_states(self):
        """Each controller's process state and own view (for a failure after healing)."""
        out = []
        for m in self.cluster.all():
            st = "running" if m.alive() else "exited %s" % (m.proc.returncode if m.proc else None)
            try:
                v = m.get("/v1/cluster", timeout=2).json
                view = "leader=%s term=%s applied=%s" % (v.get("leader_id"), v.get("term"), v.get("applied_index"))
            except Exception as e:  # a diagnostic: whatever went wrong is the answer
                view = repr(e)[:80]
            out.append("%s %s%s %s" % (m.id, st, " paused" if m.paused else "", view))
        return "; ".join(out)

    def final_read(self):
        """A linearizable list of the pool after healing: part of the history
        (every acknowledged creation must be in it)."""
        op_t = self.clock.now()
        r = self.fleet.ctl("GET", "/v1/shards?limit=1000&prefix=k-", timeout=30)
        assert r.status == 200, r
        t = self.clock.now()
        b = r.json
        self.final_revision = b["revision"]
        self.final = {s["id"]: s for s in b["shards"]}
        self.final_reads = []
        for sid in self.pool:
            op = self.history.invoke("final", "read", sid, op_t, args={"list": True})
            s = self.final.get(sid)
            if s is None:
                History.complete(op, t, "fail", {"not_found": True, "revision": b["revision"]}, note="final list")
            else:
                History.complete(op, t, "ok", {"worker": s["worker"], "epoch": s["epoch"], "state": s["state"],
                                               "revision": b["revision"]}, note="final list")
            self.final_reads.append({"shard": sid, "revision": b["revision"], "exists": s is not None,
                                     "worker": s and s["worker"], "epoch": s and s["epoch"],
                                     "state": s and s["state"], "kind": "final", "op": "#%d" % op.id})

    def shutdown(self):
        self.fleet.shutdown()
        self.cluster.shutdown()
        for p in getattr(self, "agent_links", {}).values():
            p.close()
        if hasattr(self, "nemesis"):
            self.nemesis.release()

    # -- checks ---------------------------------------------------------------------

    def check(self):
        a = self.args
        ops = [op for op in self.history.ops if op.f in ("create", "delete", "move", "read")
               and not (op.f == "read" and op.status == "info")]
        t = time.monotonic()
        self.lin = lin.check(ops, seconds=a.check_seconds)
        self.lin_seconds = time.monotonic() - t
        for shard, report in self.lin["fail"]:
            self.anomalies["linearizability"].append("%s: not linearizable" % shard)
            self.details.append(self.describe_failure(shard, report))
        self._check_rest()
        for c in CLASSES:
            first = next((x for x in self.anomalies[c] if getattr(x, "window", None)), None)
            if first is not None:
                self.details.append(self.describe_window("%s: %s" % (c, first), *first.window))

    def _check_rest(self):
        self.sessions = [s for w in self.watchers for s in w.sessions]
        wa, self.reference = watch_check.check(self.sessions)
        self.anomalies["watch"].extend(wa)
        self.prefix = watch_check.covered_prefix(self.sessions)
        reads = [r for c in self.clients for r in c.reads] + self.final_reads
        self.anomalies["reads-vs-watch"].extend(watch_check.reads_consistent(reads, self.reference, self.prefix))
        self.anomalies["acked-creations"].extend(invariants.acked_creations_exist(self.history.ops, self.final))
        samples = [dict(s, t_send=s["t_send"] - self.t0, t_recv=s["t_recv"] - self.t0) for s in self.samples]
        self.anomalies["member-monotonic"].extend(invariants.monotonic_per_member(samples))
        self.anomalies["fencing"].extend(fencing.check(self.writes, self.reference,
                                                       self.prefix >= self.final_revision, self.readback))
        for w in self.writers:
            self.anomalies["harness"].extend("fenced writer %d: %s" % (w.idx, e) for e in w.errors)
        for c in self.clients:
            self.anomalies["harness"].extend("client %d: %s" % (c.idx, e) for e in c.errors)
        for w in self.watchers:
            self.anomalies["harness"].extend("watcher %s: %s" % (w.wname, e) for e in w.errors)

    def describe_failure(self, shard, report):
        lines = ["--- %s is not linearizable" % shard]
        if report["t_end"] is None:
            lines.append("(no shortest failing prefix found within the time bound; last ops:)")
        else:
            culprit = report["culprit"].describe() if report["culprit"] else "?"
            lines.append("shortest failing window: [%.3f, %.3f] s; the history up to %.3f s is already not "
                         "linearizable, answered last: %s" % (report["t_start"], report["t_end"], report["t_end"],
                                                              culprit))
        lines.extend("  " + op.describe() for op in report["window"])
        t0, t1 = report["t_start"] or 0.0, report["t_end"] or self.clock.now()
        return "\n".join(lines + [self.describe_window(None, t0, t1)])

    def describe_window(self, title, t0, t1):
        """The faults within 2 s of [t0, t1] and each process's log lines in it."""
        lines = ["--- " + title] if title else []
        faults = self.nlog.around(t0, t1)
        lines.append("faults around it:" if faults else "no fault within 2 s of it")
        lines.extend("  %.3f .. %s %s: %s" % (f[0], "%.3f" % f[1] if f[1] is not None else "...", f[2], f[3])
                     for f in faults)
        lines.extend(self.log_excerpts(t0 - 1.0, t1 + 0.5))
        return "\n".join(lines)

    def log_excerpts(self, t0, t1, per_process=12):
        """Each process's log lines stamped within [t0, t1] of the run's clock."""
        out = []
        lo, hi = self.wall0 + t0, self.wall0 + t1
        for p in self.cluster.all() + self.fleet.all():
            picked = []
            for line in p.log_text().splitlines():
                ts = _log_time(line)
                if ts is not None and lo <= ts <= hi:
                    picked.append(line)
            if picked:
                out.append("log of %s %s (%d lines in the window, last %d):" % (
                    p.kind, p.id, len(picked), min(per_process, len(picked))))
                out.extend("    " + ln[:220] for ln in picked[-per_process:])
        return out

    # -- report -----------------------------------------------------------------------

    def save(self):
        self.history.save(os.path.join(self.dir, "history.jsonl"))
        with open(os.path.join(self.dir, "watch.json"), "w") as f:
            json.dump({"sessions": self.sessions, "lists": [l for w in self.watchers for l in w.lists],
                       "dropped_by_plant": [e for w in self.watchers for e in w.dropped]}, f)
        with open(os.path.join(self.dir, "member_samples.json"), "w") as f:
            json.dump(self.samples, f)
        with open(os.path.join(self.dir, "fenced_writes.json"), "w") as f:
            json.dump(self.writes, f)

    def summary(self):
        a = self.args
        lines = ["== chaos run: seed=%s time=%gs faults=%s plant=%s" % (a.seed, a.time, ",".join(a.faults) or "none",
                                                                        ",".join(a.plant) or "none")]
        counts = {}
        for op in self.history.ops:
            counts.setdefault(op.f, {}).setdefault(op.status, 0)
            counts[op.f][op.status] += 1
        lines.append("operations: %d" % len(self.history.ops))
        for f in sorted(counts):
            lines.append("  %-10s %s" % (f, "  ".join("%s=%d" % kv for kv in sorted(counts[f].items()))))
        wc = {}
        for x in self.writes:
            k = "accepted" if x["status"] == 200 else (x["error"] if x["status"] else "no answer")
            k = ("probe " if x["probe"] else "") + str(k)
            wc[k] = wc.get(k, 0) + 1
        lines.append("fenced writes: %d (%s); %d read back at the end" % (
            len(self.writes), ", ".join("%s=%d" % kv for kv in sorted(wc.items())), len(self.readback)))
        lines.append("faults injected: %s%s" % (
            ", ".join("%s=%d" % kv for kv in sorted(self.nemesis.counts.items())) or "none",
            "; nemesis errors: %s" % self.nemesis.errors if self.nemesis.errors else ""))
        n410 = sum(1 for s in self.sessions if s["status"] == 410)
        nev = sum(len(s["events"]) for s in self.sessions)
        lines.append("watch: %d sessions, %d events delivered, %d x 410 (relisted), %d distinct revisions seen, "
                     "complete up to revision %d of %d" % (len(self.sessions), nev, n410, len(self.reference),
                                                           self.prefix, self.final_revision))
        lines.append("member views sampled: %d" % len(self.samples))
        lines.append("linearizability: %d shards ok, %d not linearizable, %d could not decide within %gs "
                     "(took %.1fs)" % (len(self.lin["ok"]), len(self.lin["fail"]), len(self.lin["unknown"]),
                                       a.check_seconds, self.lin_seconds))
        if self.lin["unknown"]:
            lines.append("  COULD NOT DECIDE: %s" % ", ".join(self.lin["unknown"]))
        total = 0
        for c in CLASSES:
            xs = self.anomalies[c]
            total += len(xs)
            lines.append("anomalies %-17s %d" % (c + ":", len(xs)))
            lines.extend("    " + x for x in xs[:10])
            if len(xs) > 10:
                lines.append("    ... %d more" % (len(xs) - 10))
        lines.extend(self.details[:3])
        lines.append("anomalies in all: %d" % total)
        lines.append("run dir: %s (history.jsonl, watch.json, member_samples.json, nemesis.log, each process's log)"
                     % self.dir)
        lines.append("replay: %s   (the same schedule of fault kinds, roles, durations and client "
                     "operations; timings are the system's)" % self.replay_command())
        return "\n".join(lines), total


def _log_time(line):
    # "2026-12-05T02:34:37.123Z INFO ..."
    if len(line) < 24 or line[4] != "-" or line[10] != "T":
        return None
    try:
        secs = calendar.timegm(time.strptime(line[:19], "%Y-%m-%dT%H:%M:%S"))
        return secs + int(line[20:23]) / 1000.0
    except ValueError:
        return None


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    run = Run(args)
    try:
        run.setup()
        run.start()
        time.sleep(args.time)  # the length of the run itself, not a wait for a state
        run.finish()
    except BaseException:
        sys.stderr.write("chaos run aborted; files kept in %s\n" % run.dir)
        run.cluster.dump_logs(n=30) if hasattr(run, "cluster") else None
        raise
    finally:
        if hasattr(run, "cluster"):
            run.shutdown()
    run.check()
    run.save()
    text, total = run.summary()
    print(text)
    if args.expect:
        found = run.anomalies[args.expect]
        others = total - len(found)
        ok = bool(found) and others == 0
        print("expected anomalies of class %s: %s%s" % (
            args.expect, "found %d" % len(found) if found else "NONE FOUND (the checker missed the planted fault)",
            "; but %d of other classes" % others if others else ""))
    else:
        ok = total == 0
    if ok and not args.dir:
        shutil.rmtree(run.dir, ignore_errors=True)
        print("(run dir removed: clean run; pass --dir to keep it)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
