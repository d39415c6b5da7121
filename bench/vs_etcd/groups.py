"""The two server groups of bench/vs-etcd: 3 real processes each on
127.0.0.1, same Raft timing (heartbeat 100 ms, election timeout 1000 ms),
fsync on (etcd's default; Tenure's SQLite synchronous=FULL), fresh data dirs.

Both expose the same small interface to the measurements: the URLs and
request bodies of a write, a linearizable and a stale read, which member
leads, whether a member has caught up, the CPU the members used, and
signals/restarts of one member.
"""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time

HEARTBEAT_MS = 100
ELECTION_MS = 1000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def http_call(address, method, path, body=None, timeout=1.0, headers=None):
    """One request on a fresh connection: (status, parsed JSON or None); (None, None) on a transport error."""
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=headers or {"Content-Type": "application/json"})
        r = conn.getresponse()
        raw = r.read()
        try:
            return r.status, json.loads(raw) if raw else None
        except ValueError:
            return r.status, None
    except (OSError, http.client.HTTPException):
        return None, None
    finally:
        conn.close()


def b64(s):
    return base64.b64encode(s.encode()).decode()


def proc_cpu_seconds(pid):
    """utime + stime of a live process, from /proc/PID/stat; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return 0.0
    fields = stat[stat.rfind(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Group:
    """Members, their processes and the common lifecycle; subclasses give the commands and the API."""

    name = ""

    def __init__(self, work):
        self.work = work
        shutil.rmtree(work, ignore_errors=True)
        os.makedirs(work)
        self.procs = [None, None, None]
        self.stopped = [False, False, False]  # SIGSTOPped, so stop_all must SIGCONT first

    def start_all(self):
        for port in self.ports():
            with socket.socket() as probe:
                # As the servers do: connections in TIME-WAIT do not count, a listener does.
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    probe.bind(("127.0.0.1", port))
                except OSError:
                    raise RuntimeError(f"{self.name}: port {port} is in use (another run, or a stray server?)")
        for i in range(3):
            self.start(i)

    def start(self, i):
        log = open(os.path.join(self.work, f"{self.member_id(i)}.log"), "ab")
        self.procs[i] = subprocess.Popen(self.command(i), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()

    def alive(self, i):
        return self.procs[i] is not None and self.procs[i].poll() is None

    def signal(self, i, sig):
        self.procs[i].send_signal(sig)
        self.stopped[i] = sig == signal.SIGSTOP

    def cont(self, i):
        self.procs[i].send_signal(signal.SIGCONT)
        self.stopped[i] = False

    def wait_exit(self, i, timeout=20):
        try:
            self.procs[i].wait(timeout)
        except subprocess.TimeoutExpired:
            self.procs[i].kill()
            self.procs[i].wait()

    def stop_all(self):
        self.terminate_all()
        for i, p in enumerate(self.procs):
            if p is not None:
                self.wait_exit(i, timeout=15)

    def terminate_all(self):
        """SIGTERM to every live member (SIGCONT first where stopped), without waiting."""
        for i, p in enumerate(self.procs):
            if p is None or p.poll() is not None:
                continue
            if self.stopped[i]:
                self.cont(i)
            p.send_signal(signal.SIGTERM)

    def cpu_seconds(self):
        return sum(proc_cpu_seconds(p.pid) for p in self.procs if p is not None and p.poll() is None)

    def leader(self, timeout=30.0, exclude=()):
        """Index of the member every live member agrees leads; waits up to timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            views = [self.view(i) for i in range(3) if self.alive(i) and i not in exclude and not self.stopped[i]]
            leaders = {v["leader"] for v in views if v}
            if len(views) > 0 and all(views) and len(leaders) == 1 and None not in leaders:
                return leaders.pop()
            time.sleep(0.02)  # polling interval
        raise RuntimeError(f"{self.name}: no agreed leader within {timeout} s; logs in {self.work}")

    def wait_leader(self):
        leader = self.leader()
        dead = [self.member_id(i) for i in range(3) if not self.alive(i)]
        if dead:
            raise RuntimeError(f"{self.name}: {', '.join(dead)} exited at start; logs in {self.work}")
        return leader

    def wait_caught_up(self, i, timeout=60.0):
        """Polls until member i has applied what the leader had committed when this was called."""
        target = self.view(self.leader(timeout))["commit"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.view(i)
            if v and v["applied"] >= target:
                return
            time.sleep(0.02)  # polling interval
        raise RuntimeError(f"{self.name}: member {i} did not catch up within {timeout} s")


class EtcdGroup(Group):
    name = "etcd"

    def __init__(self, work, base_port):
        super().__init__(work)
        self.client = [f"127.0.0.1:{base_port + 1 + i}" for i in range(3)]
        self.peer = [f"127.0.0.1:{base_port + 11 + i}" for i in range(3)]
        self.ids = {}  # etcd member id (decimal string) -> index

    def member_id(self, i):
        return f"e{i + 1}"

    def ports(self):
        return [int(a.rsplit(":", 1)[1]) for a in self.client + self.peer]

    def command(self, i):
        cluster = ",".join(f"e{j + 1}=http://{self.peer[j]}" for j in range(3))
        return ["etcd", "--name", f"e{i + 1}", "--data-dir", os.path.join(self.work, f"e{i + 1}"),
                "--listen-client-urls", f"http://{self.client[i]}", "--advertise-client-urls", f"http://{self.client[i]}",
                "--listen-peer-urls", f"http://{self.peer[i]}", "--initial-advertise-peer-urls", f"http://{self.peer[i]}",
                "--initial-cluster", cluster, "--initial-cluster-state", "new", "--initial-cluster-token", "vs-etcd",
                "--heartbeat-interval", str(HEARTBEAT_MS), "--election-timeout", str(ELECTION_MS),
                "--logger", "zap", "--log-outputs", "stderr"]

    def view(self, i):
        """{leader: index or None, commit, applied} from /v3/maintenance/status; None when it does not answer."""
        status, j = http_call(self.client[i], "POST", "/v3/maintenance/status", {}, timeout=0.5)
        if status != 200 or not j:
            return None
        self.ids[j["header"]["member_id"]] = i
        leader = j.get("leader")
        return {"leader": self.ids.get(leader) if leader and leader != "0" else None,
                "commit": int(j.get("raftIndex", 0)), "applied": int(j.get("raftAppliedIndex", j.get("raftIndex", 0)))}

    def leader(self, timeout=30.0, exclude=()):
        # Learn every member's id first: a leader named before its own status was read maps to None.
        for i in range(3):
            if self.alive(i) and not self.stopped[i]:
                self.view(i)
        return super().leader(timeout, exclude)

    # The workloads: (path, JSON body) of each kind of request.
    def write(self, key):
        return "POST", "/v3/kv/put", {"key": b64(key), "value": "dg=="}, 200

    def read(self, key, stale):
        body = {"key": b64(key)}
        if stale:
            body["serializable"] = True
        return "POST", "/v3/kv/range", body, 200


class TenureGroup(Group):
    name = "Tenure"

    def __init__(self, work, bin_dir, base_port, raft_extra=(), extra=""):
        super().__init__(work)
        self.bin = bin_dir
        self.client = [f"127.0.0.1:{base_port + 1 + i}" for i in range(3)]
        for i in range(3):
            with open(os.path.join(work, f"c{i + 1}.yaml"), "w") as f:
                f.write(f"node_id: c{i + 1}\ndata_dir: {work}/c{i + 1}\nlisten: {self.client[i]}\npeers:\n")
                for j in range(3):
                    f.write(f"  - {{id: c{j + 1}, address: {self.client[j]}}}\n")
                f.write(f"raft:\n  heartbeat_interval_ms: {HEARTBEAT_MS}\n  election_timeout_ms: {ELECTION_MS}\n")
                for kv in raft_extra:
                    f.write(f"  {kv}\n")
                f.write(extra)

    def member_id(self, i):
        return f"c{i + 1}"

    def ports(self):
        return [int(a.rsplit(":", 1)[1]) for a in self.client]

    def command(self, i):
        return [os.path.join(self.bin, "tenure-controller"), "--config", os.path.join(self.work, f"c{i + 1}.yaml")]

    def view(self, i):
        status, j = http_call(self.client[i], "GET", "/v1/cluster", timeout=0.5)
        if status != 200 or not j:
            return None
        lid = j.get("leader_id")
        return {"leader": int(lid[1:]) - 1 if lid else None, "commit": j["commit_index"], "applied": j["applied_index"]}

    def write(self, key):
        return "POST", "/v1/shards", {"ids": [key]}, 201

    def read(self, key, stale):
        return "GET", f"/v1/shards/{key}" + ("?consistency=stale" if stale else ""), None, 200
