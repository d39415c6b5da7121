"""Collects the passes of bench/vs-etcd and renders the one table."""
import os
import platform
import statistics
import subprocess
import sys
import time


class Results:
    def __init__(self):
        self.passes = {}   # workload -> system -> [wrk result]
        self.samples = {}  # figure -> system -> [ms]
        self.order = []    # (kind, name) in the order first seen
        self.extra = []    # finished table rows that fit no other kind

    def add(self, workload, system, r):
        if workload not in self.passes:
            self.passes[workload] = {}
            self.order.append(("wrk", workload))
        self.passes[workload].setdefault(system, []).append(r)

    def add_sample(self, figure, system, ms):
        if figure not in self.samples:
            self.samples[figure] = {}
            self.order.append(("samples", figure))
        self.samples[figure].setdefault(system, []).append(ms)


def _num(v, unit):
    if v != v:  # NaN: no acknowledged write within the client's 30 s
        return "none"
    if unit == "/s":
        return f"{v:,.0f}/s"
    if unit == "µs":
        return f"{v:,.0f} µs"
    return f"{v:,.2f} ms" if v < 10 else f"{v:,.1f} ms" if v < 100 else f"{v:,.0f} ms"


def _cell(values, unit):
    """Median of the passes, then their spread."""
    if not values:
        return "n/a", None
    med = statistics.median(values)
    if len(values) == 1:
        return _num(med, unit), med
    lo, hi = min(values), max(values)
    bare = lambda v: _num(v, unit).replace("/s", "").replace(" ms", "").replace(" µs", "")  # noqa: E731
    return f"{_num(med, unit)} ({bare(lo)}–{bare(hi)})", med


def _ratio(e, t, higher_better):
    if e is None or t is None or e != e or t != t or e <= 0 or t <= 0:
        return "n/a"  # a ratio of a negative figure (an event before the answer) says nothing
    r = t / e
    better = (r > 1) == higher_better
    if abs(r - 1) < 0.005:
        return f"{r:.2f}×"
    return f"{r:.2f}× (Tenure {'better' if better else 'worse'})"


def _row(rows, figure, e_vals, t_vals, unit, higher_better):
    ec, em = _cell(e_vals, unit)
    tc, tm = _cell(t_vals, unit)
    rows.append(f"| {figure} | {ec} | {tc} | {_ratio(em, tm, higher_better)} |")


def table(results):
    rows = ["| figure | etcd | Tenure | Tenure/etcd |", "|---|---:|---:|---:|"]
    for kind, name in results.order:
        if kind == "wrk":
            by = results.passes[name]
            get = lambda s, k: [r[k] for r in by.get(s, [])]  # noqa: E731
            _row(rows, f"{name}: throughput", get("etcd", "rate"), get("Tenure", "rate"), "/s", True)
            for key, label in (("p50_us", "p50"), ("p99_us", "p99"), ("p999_us", "p99.9")):
                e = [v / 1e3 for v in get("etcd", key)]
                t = [v / 1e3 for v in get("Tenure", key)]
                _row(rows, f"{name}: {label} latency", e, t, "ms", False)
            _row(rows, f"{name}: servers' CPU per request (3 members)", get("etcd", "cpu_us_per_req"),
                 get("Tenure", "cpu_us_per_req"), "µs", False)
            errs = {s: sum(get(s, "errors")) for s in ("etcd", "Tenure")}
            if any(errs.values()):
                rows.append(f"| {name}: errors (non-2xx, timeouts), all passes | {errs['etcd']} | {errs['Tenure']} | |")
        else:
            by = results.samples[name]
            if name.startswith("failover"):
                fig = f"{name} of the leader → first acknowledged write, median of rounds"
                _row(rows, fig, by.get("etcd", []), by.get("Tenure", []), "ms", False)
            else:
                _row(rows, name, by.get("etcd", []), by.get("Tenure", []), "ms", False)
    return "\n".join(rows + results.extra)


def _first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        return (out.stdout or out.stderr).strip().splitlines()[0]
    except (OSError, IndexError):
        return "unknown"


def _built(bin_dir):
    """When the controller binary was linked: a binary older than HEAD's commit may not be HEAD's code."""
    try:
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(os.path.getmtime(os.path.join(bin_dir, "tenure-controller"))))
    except OSError:
        return "unknown"


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    return f"{os.cpu_count()} CPUs ({model}), {mem_kb / 1024 / 1024:.1f} GiB RAM, Linux {platform.release()}"


def render(results, a, root, seconds, load_before, load_after):
    head = _first_line(["git", "-C", root, "rev-parse", "HEAD"])
    # Edits to docs (pasting this output) do not change what was measured.
    dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no", "--", ".", ":!docs", ":!*.md"],
                           capture_output=True, text=True).stdout.strip()
    lines = [
        f"bench/vs-etcd, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds / 60:.1f} min: "
        f"{' '.join(sys.argv[1:]) or '(defaults)'}",
        f"machine: {machine()}; load average {load_before[0]:.2f} before, {load_after[0]:.2f} after",
        f"versions: {_first_line(['etcd', '--version'])}; {_first_line(['wrk', '-v']).split(' Copyright')[0]}; "
        f"Tenure {head}{' (uncommitted changes)' if dirty else ''}, tenure-controller built {_built(a.bin)}",
        f"both: 3 members on 127.0.0.1, heartbeat 100 ms, election timeout 1000 ms, fsync on, fresh data dirs; "
        f"wrk passes of {a.seconds:g} s alternating etcd, Tenure, Tenure, etcd ({a.passes} per system); "
        f"cells: median of the passes (min–max); failover: median of the rounds (min–max); "
        f"latencies from wrk's histogram (p99.9 included); ratios of the medians",
        "",
        table(results),
    ]
    return "\n".join(lines)
