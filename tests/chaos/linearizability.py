"""Per-shard linearizability of the ownership register (Wing & Gong's search
with Lowe's memoization, as Porcupine and Knossos implement it).

The model of one shard is (exists, epoch, worker, exact):
- `exists`: the shard is there (GET answers 200, not 404);
- `epoch`, `worker`: the last owner seen. The system changes owners by
  itself (placement, handoffs, failovers), so between client operations the
  epoch may rise by any amount; it never goes down, and at one epoch the
  owner is one worker (contract: "every change of owner raises the epoch by
  exactly 1"). `exact` is False when only a lower bound of the epoch is known
  (after a create or a delete, whose answers carry no epoch).

Operations and what their answers require (history.py):
- create ok: `created` -> it did not exist; `existing` -> it existed.
- delete ok -> it existed (then it does not; its epoch carries over to a
  later creation, so it stays a lower bound); delete fail 404 -> it did not.
- move ok (202) or 409 -> it existed; move 404 naming the shard -> it did not.
- read ok -> it exists with that owner and epoch (see above); read 404 -> it
  does not.
- info (no answer): may take effect at any point after its call, or never.

`check_shard` returns ("ok" | "fail" | "unknown", details); "unknown" means
the search ran out of its time budget: could not decide.
Stdlib only.
"""

import time

from history import INF

INITIAL = (False, 0, None, True)


def step(state, op):
    """The state after `op` from `state`, or None if the op's answer is
    impossible there."""
    exists, epoch, worker, exact = state
    f, status, v = op.f, op.status, op.value or {}
    if f == "create":
        if status == "ok":
            if v.get("created"):
                return None if exists else (True, epoch, None, False)
            return state if exists else None
        if status == "info":
            return state if exists else (True, epoch, None, False)
        return state
    if f == "delete":
        if status == "ok":
            return (False, epoch, None, False) if exists else None
        if status == "fail" and v.get("not_found"):
            return None if exists else state
        if status == "info":
            return (False, epoch, None, False) if exists else state
        return state
    if f == "move":
        if status == "ok" or (status == "fail" and v.get("conflict")):
            return state if exists else None
        if status == "fail" and v.get("not_found"):
            return None if exists else state
        return state
    if f == "read":
        if status == "fail" and v.get("not_found"):
            return None if exists else state
        if status != "ok":
            return state
        if not exists:
            return None
        e, w = v["epoch"], v.get("worker")
        if e < epoch or (exact and e == epoch and w != worker):
            return None
        return (True, e, w, True)
    raise ValueError("unknown op %r" % f)


class Budget:
    """A time bound shared by every shard's search."""

    def __init__(self, seconds):
        self.deadline = time.monotonic() + seconds

    def spent(self):
        return time.monotonic() > self.deadline


def _entries(ops):
    """Call and return events in time order (a call before a return at the
    same instant: the more permissive reading). Returns (kinds, op_index)
    where kinds[i] is True for a call."""
    ev = []
    for i, op in enumerate(ops):
        ev.append((op.t_call, 0, i))
        ev.append((op.end, 1, i))
    ev.sort()
    return [k == 0 for _, k, _ in ev], [i for _, _, i in ev]


def linearizable(ops, budget=None, initial=INITIAL):
    """Wing & Gong / Lowe: True, False, or None when the budget ran out."""
    n = len(ops)
    if n == 0:
        return True
    is_call, idx = _entries(ops)
    m = len(is_call)
    # A doubly linked list over the events; node m is the head.
    nxt = [i + 1 for i in range(m)] + [0]
    nxt[m - 1] = None
    prv = [m] + list(range(0, m - 1)) + [None]
    ret_pos = [0] * n
    for pos in range(m):
        if not is_call[pos]:
            ret_pos[idx[pos]] = pos

    def lift(pos):
        r = ret_pos[idx[pos]]
        for p in (pos, r):
            a, b = prv[p], nxt[p]
            nxt[a] = b
            if b is not None:
                prv[b] = a

    def unlift(pos):
        r = ret_pos[idx[pos]]
        for p in (r, pos):
            a, b = prv[p], nxt[p]
            nxt[a] = p
            if b is not None:
                prv[b] = p

    cache = set()
    stack = []
    state, linearized = initial, 0
    entry = nxt[m]
    steps = 0
    while nxt[m] is not None:
        steps += 1
        if budget is not None and steps & 1023 == 1 and budget.spent():
            return None
        if entry is None:
            return False  # cannot happen: every call has its return later in the list
        if is_call[entry]:
            i = idx[entry]
            new_state = step(state, ops[i])
            if new_state is not None:
                new_lin = linearized | (1 << i)
                key = (new_lin, new_state)
                if key not in cache:
                    cache.add(key)
                    stack.append((entry, state))
                    state, linearized = new_state, new_lin
                    lift(entry)
                    entry = nxt[m]
                    continue
            entry = nxt[entry]
        else:
            # The first pending return: some call before it must be linearized
            # first, and none could: backtrack.
            if not stack:
                return False
            entry, state = stack.pop()
            linearized &= ~(1 << idx[entry])
            unlift(entry)
            entry = nxt[entry]
    return True


def truncate(ops, t):
    """The history as it stood at time t: ops called after t are gone; ops
    answered after t are open (reads that had no answer yet are dropped:
    they have no effect)."""
    out = []
    for op in ops:
        if op.t_call > t:
            continue
        if op.end > t:
            if op.f == "read":
                continue
            op = _open_copy(op)
        out.append(op)
    return out


def _open_copy(op):
    from history import Op
    return Op(op.id, op.process, op.f, op.shard, op.t_call, args=op.args, status="info", member=op.member,
              note="open at the cut")


def shortest_failing_prefix(ops, budget=None):
    """The earliest answer time t such that the history up to t is already
    not linearizable (binary search: a longer prefix only adds constraints).
    Returns (t, the op answered at t) or (None, None)."""
    times = sorted({op.t_ret for op in ops if op.end != INF})
    lo, hi = 0, len(times) - 1
    found = None
    while lo <= hi:
        mid = (lo + hi) // 2
        r = linearizable(truncate(ops, times[mid]), budget)
        if r is None:
            return None, None
        if r is False:
            found, hi = mid, mid - 1
        else:
            lo = mid + 1
    if found is None:
        return None, None
    t = times[found]
    culprit = [op for op in ops if op.end == t]
    return t, culprit[0] if culprit else None


def check(history_ops, seconds=60.0, fs=("create", "delete", "move", "read")):
    """Checks every shard. Returns {"ok": [...], "fail": [(shard, report)],
    "unknown": [...]} where a report holds the shortest failing window."""
    budget = Budget(seconds)
    per_shard = {}
    for op in history_ops:
        if op.f in fs:
            per_shard.setdefault(op.shard, []).append(op)
    result = {"ok": [], "fail": [], "unknown": []}
    for shard in sorted(per_shard):
        ops = per_shard[shard]
        r = linearizable(ops, budget)
        if r is True:
            result["ok"].append(shard)
        elif r is None:
            result["unknown"].append(shard)
        else:
            result["fail"].append((shard, failure_report(ops, budget)))
    return result


def failure_report(ops, budget):
    t, culprit = shortest_failing_prefix(ops, budget)
    if t is None:
        return {"t_end": None, "t_start": None, "window": sorted(ops, key=lambda o: o.t_call)[-12:],
                "culprit": None}
    prefix = [op for op in ops if op.t_call <= t]
    # The window: the ten ops answered last before the culprit's answer, and
    # every op still open at it.
    done = sorted((op for op in prefix if op.end < t), key=lambda o: o.end)[-10:]
    open_ = [op for op in prefix if op.end >= t]
    window = sorted(done + open_, key=lambda o: (o.t_call, o.id))
    t_start = min(op.t_call for op in window) if window else t
    return {"t_end": t, "t_start": t_start, "window": window, "culprit": culprit}
