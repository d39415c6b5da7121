"""The history a chaos run records: every client operation with the times it
was invoked and answered, and its outcome, as Jepsen and Porcupine keep it.

An operation is `ok` (the answer says it took effect, or what it read), `fail`
(the answer says it did not take effect: a 4xx, or a 404 that is itself an
observation) or `info` (no answer, or one that leaves the effect unknown: a
timeout, a lost connection, a 503 after the request may have been
proposed). An `info` operation stays open to the end of the history: the
checkers may place its effect anywhere after its invocation, or nowhere.

Times are seconds on the run's monotonic clock (0 = start of the run).
Stdlib only.
"""

import json
import threading

INF = float("inf")


class Anomaly(str):
    """An anomaly's text, with the window of the run's clock it concerns
    (t0, t1) when known, so the report can show the faults and log lines
    around it."""

    def __new__(cls, text, t0=None, t1=None):
        obj = super().__new__(cls, text)
        obj.window = (t0, t1) if t0 is not None else None
        return obj


class Op:
    """One client operation on one shard (a list of many shards is recorded
    as one read per shard, with the list's times: a linearizable history
    projects to a linearizable history of each shard)."""

    __slots__ = ("id", "process", "f", "shard", "args", "t_call", "t_ret", "status", "value", "member", "note")

    def __init__(self, id, process, f, shard, t_call, args=None, t_ret=None, status="info", value=None,
                 member=None, note=None):
        self.id = id
        self.process = process  # the client (thread) that ran it
        self.f = f              # create | delete | move | read | read_stale
        self.shard = shard
        self.args = args or {}
        self.t_call = t_call
        self.t_ret = t_ret      # None while (or because) no answer came
        self.status = status    # ok | fail | info
        self.value = value      # what the answer said (see the model)
        self.member = member    # the controller it was sent to
        self.note = note        # e.g. the HTTP status or the exception

    @property
    def end(self):
        """Return time for the checkers: an `info` op is open to the end."""
        return INF if self.status == "info" or self.t_ret is None else self.t_ret

    def to_json(self):
        return {k: getattr(self, k) for k in self.__slots__}

    @classmethod
    def from_json(cls, d):
        return cls(**d)

    def describe(self):
        end = "..." if self.end == INF else "%.3f" % self.t_ret
        return "#%d p%s [%.3f .. %s] %s %s %s -> %s %s%s" % (
            self.id, self.process, self.t_call, end, self.f, self.shard,
            json.dumps(self.args, sort_keys=True) if self.args else "", self.status,
            json.dumps(self.value, sort_keys=True) if self.value is not None else "",
            " (%s at %s)" % (self.note, self.member) if self.note or self.member else "")


class History:
    """Thread-safe recorder of Ops."""

    def __init__(self):
        self._lock = threading.Lock()
        self.ops = []

    def invoke(self, process, f, shard, t_call, args=None, member=None):
        with self._lock:
            op = Op(len(self.ops), process, f, shard, t_call, args=args, member=member)
            self.ops.append(op)
            return op

    @staticmethod
    def complete(op, t_ret, status, value=None, note=None):
        op.t_ret = t_ret
        op.status = status
        op.value = value
        op.note = note

    def save(self, path):
        with open(path, "w") as f:
            for op in self.ops:
                f.write(json.dumps(op.to_json(), sort_keys=True) + "\n")

    @classmethod
    def load(cls, path):
        h = cls()
        with open(path) as f:
            h.ops = [Op.from_json(json.loads(line)) for line in f if line.strip()]
        return h

    def by_shard(self, fs=None):
        out = {}
        for op in self.ops:
            if fs is None or op.f in fs:
                out.setdefault(op.shard, []).append(op)
        return out
