"""The nemesis: seeded faults on real processes and on the TCP proxies of
the peer links, each logged with its time on the run's clock.

Faults (`--faults` names):
- `kill`: SIGKILL a controller (the leader half of the time), restart it
  after the hold (same data_dir);
- `pause`: SIGSTOP a controller (the leader half of the time), SIGCONT after;
- `partition`: one of: `halves` (symmetric: a random minority cut from the
  rest, both ways), `oneway` (every link out of one member cut, its inbound
  links kept), `leader-minority` (the leader and a minority of the others cut
  from the majority), `bridge` (two sides that only one member, the bridge,
  reaches both of); each in `refuse` or `blackhole` mode at random;
- `slow`: every link into and out of one member delays each chunk by
  30-300 ms;
- `agent-kill`, `agent-pause`: the same to one agent;
- `member-replace`: a follower is removed from the group (DELETE
  /v1/members), killed, its data_dir wiped (the loss of a member's disk),
  and it joins again empty (POST /v1/members; it catches up by snapshot or
  log and is promoted); the fault ends when it is a voter again. Other
  members then reach it through one inbound proxy, so a partition cuts its
  inbound traffic only when it cuts every link into it.
- `disk-full`: a controller's file size limit (RLIMIT_FSIZE, set with
  prlimit on the running process) drops to the size of its largest file,
  so the next write that grows a file fails as on a full disk; the
  controller stops with one clear line (never a half-written state), and is
  restarted without the limit after the hold (or the limit is lifted if it
  wrote nothing meanwhile);
- `member-grow`: a new controller (one id beyond the initial members) joins
  the group for good: started empty, added (POST /v1/members: a learner
  that catches up and is promoted); the fault ends when it is a voter. At
  the next draw it is removed (DELETE /v1/members), stopped and wiped, so
  the group grows and shrinks back;
- `agent-partition`: one agent's links to the controllers (each agent dials
  every member through a proxy of its own when this fault is on) are cut,
  in `refuse` or `blackhole` mode: to every member (`isolated`: its lease
  lapses and its shards fail over), to the leader only (`from-leader`: its
  calls go through followers, which forward them), or to a majority
  (`to-majority`);
- `clock-jump`, `clock-drift`: through libfaketime (clocks.py): a process's
  wall clock jumps minutes to hours forward or back and later back; a
  process whose clocks (monotonic too) run at a constant 0.98-1.02 of real
  time, within the lease's drift bound, is restarted at a new rate.
One fault at a time; between faults a quiet gap. Every draw comes from the
seeded random generator in a fixed order, so a seed replays the same
schedule of kinds, roles, durations and gaps (what a role such as "the
leader" resolves to, and every timing, is the system's).

Stdlib only; builds on tests/integration (tenure_harness, tenure_net).
"""

import http.client
import os
import random
import resource
import threading
import time

import clocks
import tenure_harness as th

FAULTS = ("kill", "pause", "partition", "slow", "agent-kill", "agent-pause", "member-replace", "disk-full",
          "clock-jump", "clock-drift", "agent-partition", "member-grow")
DEFAULT_FAULTS = ("kill", "pause", "partition", "slow")


class NemesisLog:
    """Timestamped fault log: [(t, "start"|"end", kind, detail)], also
    written line by line to a file as it happens."""

    def __init__(self, path, t0):
        self.t0 = t0
        self.entries = []
        self._lock = threading.Lock()
        self._file = open(path, "a") if path else None

    def now(self):
        return time.monotonic() - self.t0

    def log(self, phase, kind, detail):
        t = self.now()
        with self._lock:
            self.entries.append((t, phase, kind, detail))
            if self._file:
                self._file.write("%9.3f %-5s %-12s %s\n" % (t, phase, kind, detail))
                self._file.flush()
        return t

    def faults(self):
        """[(t_start, t_end, kind, detail)] (t_end None while it lasts)."""
        out, open_ = [], {}
        for t, phase, kind, detail in self.entries:
            if phase == "start":
                open_[kind] = len(out)
                out.append([t, None, kind, detail])
            elif phase == "end" and kind in open_:
                out[open_.pop(kind)][1] = t
        return [tuple(f) for f in out]

    def around(self, t_start, t_end, margin=2.0):
        return [f for f in self.faults() if f[0] <= t_end + margin and (f[1] is None or f[1] >= t_start - margin)]


def _ask(member, method, path, body=None, tries=20):
    """A membership call at `member`, retried on 503 and lost connections
    (one Idempotency-Key): the answer, or None."""
    key = th.new_key()
    r = None
    for _ in range(tries):
        try:
            r = member.request(method, path, body=body, headers={"Idempotency-Key": key}, timeout=5)
        except (OSError, http.client.HTTPException):
            r = None
        if r is not None and r.status != 503:
            return r
        time.sleep(0.25)  # a retry interval
    return r


def find_leader(cluster, timeout=1.0):
    """The member that reports itself leader in the highest term, asked
    quickly (a cut or paused member must not hold the nemesis up)."""
    best = None
    for m in cluster.running():
        try:
            r = m.get("/v1/cluster", timeout=timeout)
            v = r.json if r.status == 200 else None
        except (OSError, http.client.HTTPException, ValueError):
            v = None
        if v and v.get("leader_id") == m.id and (best is None or v["term"] > best[0]):
            best = (v["term"], m)
    return best[1] if best else None


class Nemesis(threading.Thread):
    def __init__(self, cluster, fleet, seed, faults, log, gap=(1.0, 3.0), hold=(1.0, 5.0), clocks=None,
                 agent_links=None):
        super().__init__(daemon=True, name="nemesis")
        self.cluster = cluster
        self.fleet = fleet
        self.clocks = clocks  # clocks.ClockControl when a clock fault is on
        self.agent_links = agent_links or {}  # (agent id, member id) -> LinkProxy, with agent-partition
        self.initial_members = sorted(cluster.members)
        self.rng = random.Random("nemesis-%s" % seed)
        self.faults = [f for f in faults if f in FAULTS]
        unknown = [f for f in faults if f not in FAULTS]
        if unknown:
            raise ValueError("unknown faults %s (known: %s)" % (unknown, ", ".join(FAULTS)))
        self.log = log
        self.gap = gap
        self.hold = hold
        self.counts = {}
        self.errors = []
        self._halt = threading.Event()
        self._healed = threading.Event()
        self._release = threading.Event()

    def stop(self, timeout=180):
        """Stops injecting, undoes the fault in progress and heals everything
        (links pass at full speed, every process runs); returns once healed.
        The thread itself lives on until release(): a process started with
        PR_SET_PDEATHSIG dies with the thread that forked it, and this thread
        restarts killed members."""
        self._halt.set()
        if not self._healed.wait(timeout):
            raise RuntimeError("the nemesis did not heal within %ds" % timeout)

    def release(self):
        """Lets the thread end (after every process it started was stopped)."""
        self._no_heal = True  # after an aborted run: the processes are gone, start none again
        self._halt.set()
        self._release.set()
        self.join(timeout=30)

    def run(self):
        try:
            self._inject()
            if not getattr(self, "_no_heal", False):
                self.heal_everything()
        except Exception as e:  # reported; the run's end checks will fail visibly
            self.errors.append("healing: %r" % e)
        finally:
            self._healed.set()
        self._release.wait()

    def _inject(self):
        while not self._halt.wait(self.rng.uniform(*self.gap)):  # the schedule's quiet gap
            if not self.faults:
                continue
            kind = self.rng.choice(self.faults)
            hold = self.rng.uniform(*self.hold)
            try:
                undo = getattr(self, "_" + kind.replace("-", "_"))()
            except Exception as e:  # a fault that could not be set up is logged, the run goes on
                self.errors.append("%s: %r" % (kind, e))
                self.log.log("error", kind, repr(e))
                continue
            if undo is None:
                continue
            self.counts[kind] = self.counts.get(kind, 0) + 1
            self._halt.wait(hold)  # how long the fault lasts
            try:
                detail = undo()
            except Exception as e:
                self.errors.append("healing %s: %r" % (kind, e))
                detail = "heal failed: %r" % e
            self.log.log("end", kind, detail or "")

    # -- choosing targets -------------------------------------------------------

    def _member(self, prefer_leader=None):
        """A running controller: the leader when the draw says so, else any."""
        leader_draw = self.rng.random() < 0.5 if prefer_leader is None else prefer_leader
        pick = self.rng.random()
        running = self.cluster.running()
        if not running:
            return None, ""
        if leader_draw:
            l = find_leader(self.cluster)
            if l is not None:
                return l, " (leader)"
        return running[int(pick * len(running)) % len(running)], ""

    # -- faults: each sets itself up, logs its start and returns its undo ----------

    def _kill(self):
        m, role = self._member()
        if m is None:
            return None
        m.kill()
        self.log.log("start", "kill", "SIGKILL %s%s" % (m.id, role))

        def undo():
            m.start(wait_healthy=True)
            return "restarted %s (start %d)" % (m.id, m.starts)
        return undo

    def _pause(self):
        m, role = self._member()
        if m is None:
            return None
        m.pause()
        self.log.log("start", "pause", "SIGSTOP %s%s" % (m.id, role))

        def undo():
            m.resume()
            return "SIGCONT %s" % m.id
        return undo

    def _partition(self):
        ids = sorted(m.id for m in self.cluster.all() if m.in_group)  # not a member removed by member-grow
        shape = self.rng.choice(("halves", "oneway", "leader-minority", "bridge"))
        mode = self.rng.choice(("refuse", "blackhole"))
        order = list(ids)
        self.rng.shuffle(order)
        minority = (len(ids) - 1) // 2
        cuts = []
        if shape == "halves":
            side = set(order[:max(1, minority)])
            cuts = [(a, b) for a in ids for b in ids if a != b and ((a in side) != (b in side))]
            what = "%s | %s" % (sorted(side), sorted(set(ids) - side))
        elif shape == "oneway":
            src = order[0]
            cuts = [(src, b) for b in ids if b != src]
            what = "%s -> everyone cut (inbound kept)" % src
        elif shape == "leader-minority":
            leader = find_leader(self.cluster)
            lid = leader.id if leader else order[0]
            rest = [i for i in order if i != lid]
            side = {lid} | set(rest[:minority - 1]) if minority > 1 else {lid}
            cuts = [(a, b) for a in ids for b in ids if a != b and ((a in side) != (b in side))]
            what = "leader %s%s with %s | %s" % (lid, "" if leader else " (no leader known)",
                                                 sorted(side - {lid}), sorted(set(ids) - side))
        else:
            bridge, rest = order[0], order[1:]
            left, right = set(rest[:len(rest) // 2]), set(rest[len(rest) // 2:])
            cuts = [(a, b) for a in ids for b in ids if (a in left and b in right) or (a in right and b in left)]
            what = "%s | bridge %s | %s" % (sorted(left), bridge, sorted(right))
        # A member that joined later is reached through one inbound proxy:
        # cut it when every link into that member is to be cut.
        inbound = [p for dst, p in self.cluster.inbound.items()
                   if dst in ids and all((a, dst) in cuts for a in ids if a != dst)]
        cuts = [c for c in cuts if c in self.cluster.links]  # a new member has no direct links into it
        for a, b in cuts:
            self.cluster.cut(a, b, mode)
        for p in inbound:
            p.set_mode(mode)
        self.log.log("start", "partition", "%s %s: %s" % (shape, mode, what))

        def undo():
            for a, b in cuts:
                self.cluster.heal(a, b)
            for p in inbound:
                p.set_mode("pass")
            return "healed %d links" % (len(cuts) + len(inbound))
        return undo

    def _slow(self):
        m, role = self._member(prefer_leader=None)
        if m is None:
            return None
        delay = self.rng.uniform(0.03, 0.3)
        links = [p for (a, b), p in self.cluster.links.items() if m.id in (a, b)]
        if m.id in self.cluster.inbound:
            links.append(self.cluster.inbound[m.id])  # a member that joined later: links into it
        for p in links:
            p.delay = delay
        self.log.log("start", "slow", "links of %s%s delayed %.0f ms" % (m.id, role, delay * 1000))

        def undo():
            for p in links:
                p.delay = 0.0
            return "links of %s at full speed" % m.id
        return undo

    def _agent(self):
        agents = self.fleet.running()
        pick = self.rng.random()
        return agents[int(pick * len(agents)) % len(agents)] if agents else None

    def _agent_kill(self):
        a = self._agent()
        if a is None:
            return None
        a.kill()
        self.log.log("start", "agent-kill", "SIGKILL %s" % a.id)

        def undo():
            a.start(wait_ready=False)
            return "restarted %s" % a.id
        return undo

    def _agent_pause(self):
        a = self._agent()
        if a is None:
            return None
        a.pause()
        self.log.log("start", "agent-pause", "SIGSTOP %s" % a.id)

        def undo():
            a.resume()
            return "SIGCONT %s" % a.id
        return undo

    def _member_replace(self):
        leader = find_leader(self.cluster)
        pick = self.rng.random()
        if leader is None:
            return None
        followers = [m for m in self.cluster.running() if m.in_group and m is not leader and
                     m.id in self.initial_members]
        if not followers:
            return None
        m = followers[int(pick * len(followers)) % len(followers)]
        r = _ask(leader, "DELETE", "/v1/members/" + m.id)
        if r is None or r.status != 200:
            raise RuntimeError("removing %s: %r" % (m.id, r))
        m.kill()
        m.wipe()
        m.incarnation = getattr(m, "incarnation", 0) + 1
        self.cluster.prepare_rejoin(m.id)
        m.start(wait_healthy=True)
        r = _ask(leader, "POST", "/v1/members", {"id": m.id, "address": self.cluster.joiner_address(m.id)})
        if r is None or r.status != 201:
            raise RuntimeError("adding %s again: %r" % (m.id, r))
        m.in_group = True
        self.log.log("start", "member-replace", "%s removed, wiped and added again (leader %s)" % (m.id, leader.id))
        return self._until_voter(m, "member-replace")

    def _disk_full(self):
        m, role = self._member()
        if m is None or not m.alive():
            return None
        # The smaller of the database and its WAL: the next write that grows
        # either fails (the WAL is rewritten in place after a checkpoint).
        sizes = [os.path.getsize(os.path.join(m.data_dir, f)) for f in ("raft.db", "raft.db-wal")
                 if os.path.isfile(os.path.join(m.data_dir, f))]
        limit = min(sizes) if sizes else 0
        pid = m.proc.pid
        # The soft limit only: lifting it back needs no privilege.
        _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, hard))
        self.log.log("start", "disk-full", "%s%s: files may not grow past %d bytes (RLIMIT_FSIZE)" % (m.id, role, limit))

        def undo():
            if m.alive() and m.proc.pid == pid:
                resource.prlimit(pid, resource.RLIMIT_FSIZE, (hard, hard))
                return "%s: limit lifted (it wrote no more than it had room for, or failed short of stopping)" % m.id
            last = [l for l in m.log_tail(8).splitlines() if "storage" in l or "error" in l][-1:] or ["(no line)"]
            m.kill()  # reap it
            m.start(wait_healthy=True)
            return "%s had stopped (%s); restarted without the limit (start %d)" % (m.id, last[0].strip()[:200],
                                                                                     m.starts)
        return undo

    def _member_grow(self):
        leader = find_leader(self.cluster)
        if leader is None:
            return None
        extra = "c%d" % (len(self.initial_members) + 1)
        m = self.cluster.members.get(extra)
        if m is not None and m.in_group:
            # Grown already: shrink back.
            r = _ask(leader, "DELETE", "/v1/members/" + extra)
            if r is None or r.status != 200:
                raise RuntimeError("removing %s: %r" % (extra, r))
            m.in_group = False
            m.retired = True
            m.kill()
            m.wipe()
            self.log.log("start", "member-grow", "%s removed, stopped and wiped (leader %s)" % (extra, leader.id))
            return lambda: "the group is back to %d members" % len(self.initial_members)
        if m is None:
            m = self.cluster.new_member(extra)
        else:
            m.incarnation = getattr(m, "incarnation", 0) + 1
            self.cluster.prepare_rejoin(extra)
        m.retired = False
        if self.clocks is not None:
            self.clocks.attach(m, self.rng.choice([k for k in ("jump", "drift") if "clock-" + k in self.faults]),
                               clocks.draw_rate(self.rng))
        m.start(wait_healthy=True)
        r = _ask(leader, "POST", "/v1/members", {"id": extra, "address": self.cluster.joiner_address(extra)})
        if r is None or r.status != 201:
            raise RuntimeError("adding %s: %r" % (extra, r))
        m.in_group = True
        self.log.log("start", "member-grow", "%s added (leader %s)" % (extra, leader.id))
        return self._until_voter(m, "member-grow")

    def _until_voter(self, m, kind):
        def undo():
            def voter():
                l = find_leader(self.cluster)
                if l is None:
                    return None
                rows = l.get("/v1/members", timeout=2).json["members"]
                return any(x["id"] == m.id and x["role"] in ("follower", "leader", "voter") for x in rows)
            try:
                th.wait_until(voter, 30, "%s a voter" % m.id, interval=0.1)
                return "%s is a voter" % m.id
            except th.WaitTimeout as e:
                self.errors.append("%s: %s" % (kind, e))
                return "%s NOT a voter within 30 s" % m.id
        return undo

    def _agent_partition(self):
        a = self._agent()
        shape = self.rng.choice(("isolated", "from-leader", "to-majority"))
        mode = self.rng.choice(("refuse", "blackhole"))
        order = sorted(self.cluster.members)
        self.rng.shuffle(order)
        if a is None or not self.agent_links:
            return None
        if shape == "isolated":
            cut = order
        elif shape == "from-leader":
            leader = find_leader(self.cluster)
            cut = [leader.id] if leader else order[:1]
        else:
            cut = order[:len(order) // 2 + 1]
        links = [self.agent_links[(a.id, m)] for m in cut if (a.id, m) in self.agent_links]
        for p in links:
            p.set_mode(mode)
        self.log.log("start", "agent-partition", "%s %s %s: cut from %s" % (a.id, shape, mode, sorted(cut)))

        def undo():
            for p in links:
                p.set_mode("pass")
            return "%s reaches every member again" % a.id
        return undo

    def _clock_process(self, mode):
        """A running controller or agent whose clocks run in `mode`."""
        if self.clocks is None:
            return None
        ids = self.clocks.in_mode(mode)
        pick = self.rng.random()
        procs = [p for p in self.cluster.all() + self.fleet.all() if p.id in ids and p.alive()]
        return procs[int(pick * len(procs)) % len(procs)] if procs else None

    def _clock_jump(self):
        p = self._clock_process("jump")
        offset = self.rng.choice((-1, 1)) * self.rng.uniform(60, 7200)
        if p is None:
            return None
        self.clocks.set(p.id, offset, 1.0)
        self.log.log("start", "clock-jump", "%s wall clock %+.0f s" % (p.id, offset))

        def undo():
            self.clocks.set(p.id, 0, 1.0)
            return "%s wall clock back to true time" % p.id
        return undo

    def _clock_drift(self):
        """A drift-mode process is restarted with its clocks at a new rate
        (clocks.py: a rate never changes within a process's life)."""
        p = self._clock_process("drift")
        rate = clocks.draw_rate(self.rng)
        if p is None:
            return None
        p.kill()
        self.clocks.set(p.id, 0, rate)
        if p.kind == "member":
            p.start(wait_healthy=True)
        else:
            p.start(wait_ready=False)
        self.log.log("start", "clock-drift", "%s restarted with its clocks at x%.4f" % (p.id, rate))
        return lambda: "%s keeps x%.4f" % (p.id, rate)

    def heal_everything(self):
        """After the run: every link passes at full speed, every process runs."""
        self.cluster.heal_all()
        for p in list(self.cluster.links.values()) + list(self.agent_links.values()):
            p.delay = 0.0
            p.set_mode("pass")
        if self.clocks is not None:
            for pid, mode in self.clocks.modes.items():
                if mode == "jump":
                    self.clocks.set(pid, 0, 1.0)  # drift-mode processes keep their rate: no jump
        for m in self.cluster.all():
            if m.paused:
                m.resume()
            if not m.alive() and not getattr(m, "retired", False):
                m.start(wait_healthy=True)
        for a in self.fleet.all():
            if a.paused:
                a.resume()
            if not a.alive():
                a.start(wait_ready=False)
        self.log.log("end", "all", "healed: every link passes, every process runs")

