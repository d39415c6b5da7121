"""Whole-run invariants besides linearizability and the watch:

- every acknowledged creation exists at the end, unless a delete that may
  have taken effect (acknowledged, or without an answer) was sent after it;
- on every member, the revision and the Raft term never go back, across
  restarts (samples of GET /v1/cluster and stale reads, per member, in the
  order they were answered; two samples overlapping in time are not ordered).
(Epochs never going down is part of the linearizability model and of the
watch checker.) Stdlib only.
"""

from history import Anomaly


def acked_creations_exist(ops, final):
    """`ops`: the history's ops; `final`: {shard: view} of a linearizable
    list taken after every client stopped (views with worker, epoch, state)."""
    out = []
    by_shard = {}
    for op in ops:
        by_shard.setdefault(op.shard, []).append(op)
    for shard, sops in sorted(by_shard.items()):
        created = [op for op in sops if op.f == "create" and op.status == "ok"]
        if not created or shard in final:
            continue
        last_ack = max(created, key=lambda o: o.t_ret)
        deletes = [op for op in sops if op.f == "delete" and op.status in ("ok", "info")
                   and op.end > last_ack.t_call]
        if not deletes:
            out.append("%s: creation acknowledged (%s) but the shard is gone at the end, and no delete "
                       "was sent after it" % (shard, last_ack.describe()))
    return out


def monotonic_per_member(samples, what=("revision", "term")):
    """`samples`: [{"member", "t_send", "t_recv", "start", field: value...}]
    of one member's own view (GET /v1/cluster once it reports caught_up,
    stale reads). Reports a value that went back between two non-overlapping
    samples of one member, within one start of its process or across
    starts."""
    out = []
    by_member = {}
    for s in samples:
        # A member whose data_dir was wiped starts over: a new incarnation.
        key = s["member"] if not s.get("incarnation") else "%s (incarnation %d)" % (s["member"], s["incarnation"])
        by_member.setdefault(key, []).append(s)
    for member, ss in sorted(by_member.items()):
        for field in what:
            ordered = sorted((s for s in ss if s.get(field) is not None), key=lambda s: s["t_send"])
            by_recv = sorted(ordered, key=lambda s: s["t_recv"])
            best, j, reported = None, 0, None
            for b in ordered:
                while j < len(by_recv) and by_recv[j]["t_recv"] < b["t_send"]:
                    a = by_recv[j]
                    if best is None or a[field] > best[field]:
                        best = a
                    j += 1
                if best is not None and b[field] < best[field] and reported is not best:
                    reported = best  # each high point's drops once
                    out.append(Anomaly(
                        "%s: %s went back from %d (%s, start %d, answered %.3f) to %d (%s, start %d, sent %.3f)" % (
                            member, field, best[field], best.get("source", "?"), best.get("start", 0),
                            best["t_recv"], b[field], b.get("source", "?"), b.get("start", 0), b["t_send"]),
                        best["t_send"], b["t_recv"]))
    return out
