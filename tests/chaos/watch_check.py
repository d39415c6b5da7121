"""The watch checker: every watcher sees every event of what it watches
exactly once, in revision order; all watchers agree on what each revision
was; and what linearizable (and stale) reads saw at a revision is what the
events up to that revision say.

A watcher's record is a list of sessions (one per connection):
  {"watcher", "since" (int, or None for "from now"), "t_open", "status"
   (HTTP status of the watch request, or an error string), "events":
   [[t, event], ...], "progress": highest progress revision seen, "end":
   why it ended, "worker": filter or None}
A session covers the revisions (start, last] where start is `since` (or the
first event's revision minus one for "from now") and last the highest
revision it is known to have delivered up to (events and progress lines).

Event semantics (controlplane/state_machine.cc): each revision carries at
most one event; a create moves the revision without an event; a grant
(worker, e) makes the shard active at e; a revoke (worker, e) starts a
handoff at e, or, with no event after it, the shard went to nobody at e+1;
shard_deleted (e) removes it, and a creation after it (no event) brings it
back unassigned at e. Stdlib only.
"""


def _key(ev):
    return (ev.get("type"), ev.get("shard"), ev.get("worker"), ev.get("epoch"), ev.get("state"))


def _relevant(ev, worker):
    return worker is None or ev.get("worker") == worker


def session_span(s):
    """(start, last) revisions a session covers (start exclusive), or None."""
    revs = [e["revision"] for _, e in s["events"]]
    last = max(revs + [s.get("progress") or 0])
    if s["since"] is not None:
        start = s["since"]
    elif revs:
        start = revs[0] - 1
    else:
        return None
    return (start, last) if last > start else None


def check(sessions):
    """Returns (anomalies, reference) where reference is {revision: event} of
    everything any watcher saw, and anomalies a list of strings."""
    out = []
    reference, seen_by = {}, {}
    for s in sessions:
        if s["status"] != 200:
            continue
        prev = s["since"]
        for t, ev in s["events"]:
            rev = ev["revision"]
            if prev is not None and rev <= prev:
                out.append("watcher %s (session since=%s opened %.3f): revision %d after %d at %.3f: %s" % (
                    s["watcher"], s["since"], s["t_open"], rev, prev, t,
                    "a duplicate" if rev == prev else "out of order"))
            prev = rev if prev is None else max(prev, rev)
            if not _relevant(ev, s.get("worker")):
                out.append("watcher %s (filter worker=%s) got another worker's event %r" % (
                    s["watcher"], s.get("worker"), ev))
            k = _key(ev)
            if rev in reference and _key(reference[rev]) != k:
                out.append("revision %d seen as %r by %s but as %r by %s" % (
                    rev, reference[rev], seen_by[rev], ev, s["watcher"]))
            else:
                reference[rev] = ev
                seen_by[rev] = s["watcher"]
    for s in sessions:
        if s["status"] != 200:
            continue
        span = session_span(s)
        if span is None:
            continue
        got = {e["revision"] for _, e in s["events"]}
        missing = [r for r in sorted(reference) if span[0] < r <= span[1] and r not in got
                   and _relevant(reference[r], s.get("worker"))]
        for r in missing[:5]:
            out.append("watcher %s (session since=%s opened %.3f, covering (%d, %d]) missed revision %d: %r "
                       "(seen by %s)" % (s["watcher"], s["since"], s["t_open"], span[0], span[1], r,
                                         reference[r], seen_by[r]))
        if len(missing) > 5:
            out.append("watcher %s: %d more missed revisions" % (s["watcher"], len(missing) - 5))
    out.extend(epoch_order(reference))
    return out, reference


def epoch_order(reference):
    """Per shard, grant epochs rise; a revoke is at the epoch of the grant
    before it; a deletion's epoch is not below it."""
    out, last = [], {}
    for rev in sorted(reference):
        ev = reference[rev]
        sh = ev.get("shard")
        if not sh:
            continue
        t, e = ev["type"], ev["epoch"]
        prev = last.get(sh)
        if prev is not None:
            pt, pe, prev_rev = prev
            if t == "grant" and e <= pe:
                out.append("%s: grant at epoch %d (rev %d) after %s at epoch %d (rev %d)" % (sh, e, rev, pt, pe,
                                                                                          prev_rev))
            if t == "revoke" and not (pt == "grant" and e == pe):
                out.append("%s: revoke at epoch %d (rev %d) after %s at epoch %d (rev %d)" % (sh, e, rev, pt, pe,
                                                                                            prev_rev))
            if e < pe:
                out.append("%s: epoch went down from %d (rev %d) to %d (rev %d)" % (sh, pe, prev_rev, e, rev))
        last[sh] = (t, e, rev)
    return out


def covered_prefix(sessions):
    """The highest revision P such that every revision in (0, P] was covered
    by some unfiltered watch session (so the reference log is complete up to
    P), or 0."""
    spans = sorted(sp for sp in (session_span(s) for s in sessions
                                 if s["status"] == 200 and s.get("worker") is None) if sp)
    p = 0
    for start, last in spans:
        if start > p:
            break
        p = max(p, last)
    return p


def expected_at(reference, shard, revision):
    """What the events say shard `shard` may look like at `revision`: a list
    of allowed (exists, worker, epoch, state) tuples."""
    last = None
    for rev in sorted(r for r in reference if r <= revision):
        if reference[rev].get("shard") == shard:
            last = reference[rev]
    if last is None:
        return [(False, None, None, None), (True, None, 0, "unassigned")]
    t, w, e = last["type"], last.get("worker"), last["epoch"]
    if t == "grant":
        return [(True, w, e, "active")]
    if t == "revoke":
        return [(True, w, e, "handoff"), (True, None, e + 1, "unassigned")]
    if t == "shard_deleted":
        return [(False, None, None, None), (True, None, e, "unassigned")]
    return []


def reads_consistent(reads, reference, prefix):
    """Each read: {"shard", "revision", "exists", "worker", "epoch", "state",
    "op"} (a linearizable or stale read with the revision it was served at).
    Reads at a revision within the covered prefix must match the events."""
    out = []
    by_shard = {}
    for rev in sorted(reference):
        sh = reference[rev].get("shard")
        if sh:
            by_shard.setdefault(sh, []).append(rev)
    for rd in reads:
        r = rd["revision"]
        if r is None or r > prefix:
            continue
        sub = {rev: reference[rev] for rev in by_shard.get(rd["shard"], []) if rev <= r}
        allowed = expected_at(sub, rd["shard"], r)
        got = (rd["exists"], rd.get("worker"), rd.get("epoch"), rd.get("state"))
        ok = any(got[0] == a[0] and (not a[0] or (got[1], got[2], got[3]) == a[1:]) for a in allowed)
        if not ok:
            out.append("%s read of %s at revision %d saw %r; the events up to it allow %r (%s)" % (
                rd.get("kind", "a"), rd["shard"], r, got, allowed, rd.get("op", "")))
    return out
