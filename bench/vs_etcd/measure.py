"""The workloads of bench/vs-etcd. Every wrk workload runs in alternating
passes (etcd, Tenure, Tenure, etcd, ...), so slow drifts of the shared
machine's load fall on both systems alike."""
import http.client
import json
import os
import signal
import sys
import threading
import time

import groups
import propagation
import wrk


def pass_order(passes):
    order = []
    for p in range(passes):
        order += ["etcd", "Tenure"] if p % 2 == 0 else ["Tenure", "etcd"]
    return order


class Runner:
    def __init__(self, work, args, results):
        self.work = work
        self.a = args
        self.results = results
        self.pass_no = 0

    def log(self, msg):
        print(msg, file=sys.stderr, flush=True)

    def wrk_pass(self, group, member, path, script, connections):
        cpu0 = group.cpu_seconds()
        r = wrk.run(f"http://{group.client[member]}{path}", script, connections, self.a.seconds)
        r["cpu_us_per_req"] = 1e6 * (group.cpu_seconds() - cpu0) / max(1, r["ok"])
        return r

    def writes(self, etcd, tenure):
        by = {"etcd": etcd, "Tenure": tenure}
        for c in self.a.connections:
            for name in pass_order(self.a.passes):
                g = by[name]
                self.pass_no += 1
                prefix = f"w{c:03d}" if c < 1000 else f"w{c}"
                prefix = prefix[:3] + chr(ord("a") + self.pass_no % 26)  # unique per pass
                script = wrk.script_path(self.work, f"write-{name}-{c}-{self.pass_no}")
                wrk.write_script(script, "etcd" if g is etcd else "tenure", prefix)
                path = g.write("x")[1]
                r = self.wrk_pass(g, g.leader(), path, script, c)
                self.results.add(f"writes c={c}", name, r)
                self.log(f"writes c={c} {name}: {r['rate']:.0f}/s p50 {r['p50_us'] / 1e3:.2f} ms "
                         f"p99 {r['p99_us'] / 1e3:.2f} ms p99.9 {r['p999_us'] / 1e3:.2f} ms errors {r['errors']} "
                         f"CPU {r['cpu_us_per_req']:.0f} us/req")

    def reads(self, etcd, tenure):
        by = {"etcd": etcd, "Tenure": tenure}
        key = "readkey0"
        for g in (etcd, tenure):
            method, path, body, want = g.write(key)
            status, _ = groups.http_call(g.client[g.leader()], method, path, body, timeout=5)
            if status != want:
                raise RuntimeError(f"{g.name}: could not write the read key ({status})")
        c = self.a.read_connections
        # At the leader; at a follower (it asks the leader for a read index:
        # etcd's ReadIndex, Tenure's answered on the leader's lease); stale.
        kinds = (("linearizable reads", False, False), ("linearizable reads (follower)", False, True),
                 ("stale reads (follower)", True, True))
        for kind, stale, at_follower in kinds:
            for name in pass_order(self.a.passes):
                g = by[name]
                leader = g.leader()
                member = (leader + 1) % 3 if at_follower else leader
                method, path, body, _ = g.read(key, stale)
                script = wrk.script_path(self.work, f"read-{name}-{int(stale)}{int(at_follower)}")
                wrk.static_script(script, method, body)
                r = self.wrk_pass(g, member, path, script, c)
                self.results.add(f"{kind} c={c}", name, r)
                self.log(f"{kind} c={c} {name}: {r['rate']:.0f}/s p50 {r['p50_us'] / 1e3:.2f} ms "
                         f"p99 {r['p99_us'] / 1e3:.2f} ms errors {r['errors']} CPU {r['cpu_us_per_req']:.0f} us/req")

    # --- failover -----------------------------------------------------------------

    def failover(self, etcd, tenure):
        kinds = [("SIGKILL", signal.SIGKILL), ("SIGSTOP", signal.SIGSTOP), ("SIGTERM", signal.SIGTERM)]
        for label, sig in kinds:
            # Rounds alternate between the systems too: etcd, Tenure, Tenure, etcd, ...
            for rnd, name in enumerate(pass_order(self.a.failover_rounds)[: 2 * self.a.failover_rounds]):
                g = etcd if name == "etcd" else tenure
                ms = self.failover_round(g, sig, f"f{label[3:5].lower()}{rnd:03d}")
                self.results.add_sample(f"failover {label}", name, ms)
                self.log(f"failover {label} {name} round {rnd // 2 + 1}: {ms:.0f} ms")

    def failover_round(self, g, sig, tag):
        victim = g.leader()
        survivors = [i for i in range(3) if i != victim]
        done = threading.Event()
        acked = []
        lock = threading.Lock()
        t0 = time.monotonic()

        def writer(member):
            # One keep-alive connection per survivor, 250 ms timeouts, a new
            # unique key per attempt; a refused or timed out write is retried
            # at once on a fresh connection (5 ms apart when refused quickly,
            # so two clients do not spin against the election).
            host, port = g.client[member].rsplit(":", 1)
            conn = None
            attempt = 0
            while not done.is_set() and time.monotonic() - t0 < 30:
                attempt += 1
                method, path, body, want = g.write(f"{tag}m{member}a{attempt:06d}")
                started = time.monotonic()
                try:
                    if conn is None:
                        conn = http.client.HTTPConnection(host, int(port), timeout=0.25)
                    conn.request(method, path, body=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
                    resp = conn.getresponse()
                    resp.read()
                    if resp.status == want:
                        with lock:
                            acked.append(time.monotonic())
                        done.set()
                        break
                except (OSError, http.client.HTTPException):
                    conn.close()
                    conn = None
                if time.monotonic() - started < 0.005:
                    time.sleep(0.005)
            if conn is not None:
                conn.close()

        threads = [threading.Thread(target=writer, args=(m,)) for m in survivors]
        t0 = time.monotonic()
        g.signal(victim, sig)
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        ms = 1e3 * (min(acked) - t0) if acked else float("nan")
        self.restore(g, victim, sig)
        return ms

    def restore(self, g, victim, sig):
        """Brings the victim back (SIGCONT, or a restart on its data dir) and waits until it has caught up."""
        if sig == signal.SIGSTOP:
            g.cont(victim)
        else:
            g.wait_exit(victim)
            g.start(victim)
        g.wait_caught_up(victim)

    def propagation(self, etcd, tenure):
        p = propagation.Propagation(self.work, self.a, tenure)
        try:
            by = {"etcd": p.etcd_pass, "Tenure": p.tenure_pass}
            for n, name in enumerate(pass_order(self.a.passes)):
                samples = by[name](etcd if name == "etcd" else tenure, n)
                # One figure per pass (its p50, p99, mean), so the table's spread is over passes.
                for fig, values in samples.items():
                    values = sorted(values)
                    self.results.add_sample(fig.replace("{p}", "p50"), name, values[len(values) // 2])
                    self.results.add_sample(fig.replace("{p}", "p99"), name,
                                            values[min(len(values) - 1, int(0.99 * len(values)))])
                    self.results.add_sample(fig.replace("{p}", "mean"), name, sum(values) / len(values))
                self.log(f"propagation {name} pass {n}: " +
                         ", ".join(f"{k.replace(' {p}', '').replace(', {p}', '')} median {sorted(v)[len(v) // 2]:.2f} ms" for k, v in samples.items() if v))
            marks = [f"mean {m:.2f} ms, median ≤ {b:g} ms ({c} grants)" if c else "no grants"
                     for b, m, c in p.agent_fig.get("passes", [])]
            self.results.extra.append("| Tenure only: grant proposal (at_ms) → arrival at the agent, from the "
                                      f"agents' histograms, per pass | | {'; '.join(marks)} | |")
            self.results.extra.append(f"| Tenure only: moves answered 409 (the leader had not applied the last grant yet) "
                                      f"and retried, all passes | | {p.conflicts} | |")
        finally:
            p.stop()
