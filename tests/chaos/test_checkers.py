#!/usr/bin/env python3
"""The chaos suite's checkers on hand-written histories: each must pass the
histories that are correct and fail the ones that are not (a checker that
cannot fail proves nothing)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import socket  # noqa: E402
import threading  # noqa: E402

import fencing  # noqa: E402
import tenure_net  # noqa: E402
import workloads  # noqa: E402
import invariants  # noqa: E402
import linearizability as lin  # noqa: E402
import watch_check  # noqa: E402
from history import Op  # noqa: E402


class H:
    """Builds a one-shard history: h.op(f, t_call, t_ret, status, value)."""

    def __init__(self, shard="s"):
        self.shard = shard
        self.ops = []

    def op(self, f, t0, t1=None, status="ok", process=None, **value):
        o = Op(len(self.ops), process if process is not None else len(self.ops), f, self.shard, t0, t_ret=t1,
               status=status if t1 is not None else "info", value=value or None)
        self.ops.append(o)
        return self

    def create(self, t0, t1=None, created=True, **kw):
        return self.op("create", t0, t1, created=created, **kw)

    def read(self, t0, t1, worker=None, epoch=0, state="active"):
        return self.op("read", t0, t1, worker=worker, epoch=epoch, state=state)

    def absent(self, t0, t1, f="read"):
        return self.op(f, t0, t1, status="fail", not_found=True)

    def delete(self, t0, t1=None):
        return self.op("delete", t0, t1)

    def ok(self):
        return lin.linearizable(self.ops, lin.Budget(10))


class LinearizabilityTest(unittest.TestCase):

    def test_sequential_register(self):
        h = H().create(0, 1).read(2, 3, None, 0, "unassigned").read(4, 5, "w1", 1).delete(6, 7).absent(8, 9)
        self.assertIs(h.ok(), True)

    def test_read_not_found_after_acknowledged_create_fails(self):
        self.assertIs(H().create(0, 1).absent(2, 3).ok(), False)

    def test_concurrent_read_may_precede_create(self):
        self.assertIs(H().create(0, 5).absent(1, 2).ok(), True)
        # ...but not one that starts after another read saw the shard.
        self.assertIs(H().create(0, 5).read(1, 2, None, 0, "unassigned").absent(3, 4).ok(), False)

    def test_delete_of_missing_shard_fails(self):
        self.assertIs(H().delete(0, 1).ok(), False)
        self.assertIs(H().absent(0, 1, f="delete").ok(), True)

    def test_created_twice_needs_a_delete_between(self):
        self.assertIs(H().create(0, 1).create(2, 3).ok(), False)
        self.assertIs(H().create(0, 1).delete(1.5, 1.8).create(2, 3).ok(), True)
        # Concurrent delete: it may fall between the two.
        self.assertIs(H().create(0, 1).delete(0.5, 2.5).create(2, 3).ok(), True)

    def test_existing_answer_needs_the_shard(self):
        self.assertIs(H().create(0, 1).create(2, 3, created=False).ok(), True)
        self.assertIs(H().create(0, 1, created=False).ok(), False)

    def test_epoch_never_goes_down(self):
        self.assertIs(H().create(0, 1).read(2, 3, "w1", 2).read(4, 5, "w2", 1).ok(), False)
        # Overlapping reads may be ordered either way.
        self.assertIs(H().create(0, 1).read(2, 6, "w1", 2).read(3, 5, "w2", 1).ok(), True)

    def test_one_owner_per_epoch(self):
        self.assertIs(H().create(0, 1).read(2, 3, "w1", 1).read(4, 5, "w2", 1).ok(), False)
        self.assertIs(H().create(0, 1).read(2, 3, "w1", 1).read(4, 5, "w1", 1, "handoff").ok(), True)

    def test_epoch_carries_over_a_delete(self):
        h = H().create(0, 1).read(2, 3, "w1", 3).delete(4, 5).create(6, 7)
        self.assertIs(h.read(8, 9, "w2", 4).ok(), True)
        h = H().create(0, 1).read(2, 3, "w1", 3).delete(4, 5).create(6, 7)
        self.assertIs(h.read(8, 9, "w2", 2).ok(), False)

    def test_unknown_outcome_stays_open(self):
        # A create without an answer may take effect much later...
        self.assertIs(H().create(0).absent(5, 6).read(7, 8, None, 0, "unassigned").ok(), True)
        # ...or never.
        self.assertIs(H().create(0).absent(5, 6).absent(7, 8).ok(), True)
        # But once seen, it cannot be undone by nothing.
        self.assertIs(H().create(0).read(5, 6, None, 0, "unassigned").absent(7, 8).ok(), False)
        # A delete without an answer likewise.
        self.assertIs(H().create(0, 1).delete(2).read(3, 4, "w1", 1).absent(5, 6).ok(), True)
        self.assertIs(H().create(0, 1).delete(2).absent(3, 4).read(5, 6, "w1", 1).ok(), False)

    def test_move_answers(self):
        self.assertIs(H().create(0, 1).op("move", 2, 3, to="w2").ok(), True)
        self.assertIs(H().op("move", 0, 1, to="w2").ok(), False)
        self.assertIs(H().op("move", 0, 1, status="fail", not_found=True).ok(), True)
        self.assertIs(H().create(0, 1).op("move", 2, 3, status="fail", not_found=True).ok(), False)
        self.assertIs(H().op("move", 0, 1, status="fail", conflict=True).ok(), False)

    def test_many_concurrent_ops(self):
        # 12 overlapping creates and deletes, then a read: needs search, and
        # memoization keeps it fast.
        h = H()
        h.create(0, 1)
        for i in range(6):
            h.delete(2 + i * 0.01, 10).create(2 + i * 0.01 + 0.005, 10)
        h.read(11, 12, None, 0, "unassigned")
        self.assertIs(h.ok(), True)
        h.absent(13, 14)
        self.assertIs(h.ok(), False)

    def test_budget_gives_could_not_decide(self):
        h = H()
        for i in range(40):
            h.create(i * 0.001, None) if i % 2 else h.delete(i * 0.001, None)
            h.read(i * 0.001, 50, "w%d" % i, i)
        h.absent(60, 61)
        budget = lin.Budget(0)
        self.assertIsNone(lin.linearizable(h.ops, budget))
        r = lin.check(h.ops, seconds=0)
        self.assertEqual(r["unknown"], ["s"])

    def test_check_reports_the_shortest_failing_window(self):
        h = H().create(0, 1)
        for i in range(20):
            h.read(2 + i, 2.5 + i, "w1", 1)
        h.read(30, 31, "w1", 0)  # the culprit: epoch went down
        for i in range(5):
            h.read(40 + i, 40.5 + i, "w1", 2)
        r = lin.check(h.ops, seconds=10)
        self.assertEqual(r["ok"], [])
        (shard, report), = r["fail"]
        self.assertEqual(shard, "s")
        self.assertEqual(report["t_end"], 31)
        self.assertEqual(report["culprit"].t_call, 30)
        self.assertLessEqual(len(report["window"]), 11)
        self.assertIn(report["culprit"], report["window"])

    def test_shards_are_checked_apart(self):
        a = H("a").create(0, 1).read(2, 3, None, 0, "unassigned").ops
        b = H("b").create(0, 1).absent(2, 3).ops
        r = lin.check(a + b, seconds=10)
        self.assertEqual(r["ok"], ["a"])
        self.assertEqual([s for s, _ in r["fail"]], ["b"])


def ev(rev, t, shard=None, worker=None, epoch=0, state=None):
    e = {"revision": rev, "type": t, "shard": shard, "worker": worker, "epoch": epoch}
    if state:
        e["state"] = state
    return e


def session(watcher, since, events, progress=None, worker=None):
    return {"watcher": watcher, "since": since, "t_open": 0.0, "status": 200, "worker": worker,
            "events": [[float(i), e] for i, e in enumerate(events)], "progress": progress, "end": "closed"}


LOG = [ev(2, "grant", "a", "w1", 1), ev(4, "grant", "b", "w2", 1), ev(5, "revoke", "a", "w1", 1),
       ev(6, "grant", "a", "w2", 2), ev(8, "revoke", "b", "w2", 1), ev(9, "shard_deleted", "b", None, 2)]


class WatchCheckTest(unittest.TestCase):

    def test_complete_streams_pass(self):
        ss = [session("w0", 0, LOG), session("w1", 4, LOG[2:]), session("w2", None, LOG[3:], progress=12)]
        anomalies, ref = watch_check.check(ss)
        self.assertEqual(anomalies, [])
        self.assertEqual(sorted(ref), [2, 4, 5, 6, 8, 9])
        self.assertEqual(watch_check.covered_prefix(ss), 12)

    def test_a_missed_event_is_reported(self):
        dropped = LOG[2:3] + LOG[4:]
        anomalies, _ = watch_check.check([session("w0", 0, LOG), session("w1", 4, dropped)])
        self.assertEqual(len(anomalies), 1, anomalies)
        self.assertIn("missed revision 6", anomalies[0])

    def test_duplicate_and_reorder_are_reported(self):
        anomalies, _ = watch_check.check([session("w0", 0, LOG[:3] + LOG[2:])])
        self.assertTrue(any("a duplicate" in a for a in anomalies), anomalies)
        anomalies, _ = watch_check.check([session("w0", 0, [LOG[1], LOG[0]] + LOG[2:])])
        self.assertTrue(any("out of order" in a for a in anomalies), anomalies)
        # A resume that replays what was already seen.
        anomalies, _ = watch_check.check([session("w0", 4, LOG)])
        self.assertTrue(any("revision 2 after 4" in a for a in anomalies), anomalies)

    def test_watchers_disagreeing_on_a_revision(self):
        other = [ev(6, "grant", "a", "w3", 2)]
        anomalies, _ = watch_check.check([session("w0", 0, LOG), session("w1", 5, other)])
        self.assertTrue(any("revision 6 seen as" in a for a in anomalies), anomalies)

    def test_epochs_in_the_log(self):
        bad = [ev(2, "grant", "a", "w1", 2), ev(3, "revoke", "a", "w1", 2), ev(4, "grant", "a", "w2", 2)]
        anomalies, _ = watch_check.check([session("w0", 0, bad)])
        self.assertTrue(any("grant at epoch 2 (rev 4)" in a for a in anomalies), anomalies)

    def test_worker_filter(self):
        w1 = [e for e in LOG if e["worker"] == "w1"]
        anomalies, _ = watch_check.check([session("w0", 0, LOG), session("f", 0, w1, worker="w1")])
        self.assertEqual(anomalies, [])
        anomalies, _ = watch_check.check([session("w0", 0, LOG), session("f", 0, w1[:1], progress=10, worker="w1")])
        self.assertTrue(any("missed revision 5" in a for a in anomalies), anomalies)
        anomalies, _ = watch_check.check([session("f", 0, LOG[:2], worker="w1")])
        self.assertTrue(any("another worker's event" in a for a in anomalies), anomalies)

    def test_coverage_gap(self):
        ss = [session("w0", 0, LOG[:2]), session("w0", 6, LOG[4:], progress=10)]
        self.assertEqual(watch_check.covered_prefix(ss), 4)

    def test_reads_against_the_events(self):
        _, ref = watch_check.check([session("w0", 0, LOG, progress=10)])

        def rd(shard, rev, exists, worker=None, epoch=None, state=None):
            return {"shard": shard, "revision": rev, "exists": exists, "worker": worker, "epoch": epoch,
                    "state": state}
        good = [rd("a", 3, True, "w1", 1, "active"), rd("a", 5, True, "w1", 1, "handoff"),
                rd("a", 7, True, "w2", 2, "active"), rd("b", 1, False), rd("b", 1, True, None, 0, "unassigned"),
                rd("b", 8, True, None, 2, "unassigned"), rd("b", 9, False), rd("b", 10, True, None, 2, "unassigned")]
        self.assertEqual(watch_check.reads_consistent(good, ref, 10), [])
        bad = [rd("a", 3, True, "w2", 1, "active"), rd("a", 7, True, "w1", 1, "active"), rd("a", 4, False),
               rd("b", 9, True, "w2", 1, "active")]
        self.assertEqual(len(watch_check.reads_consistent(bad, ref, 10)), 4)
        # Beyond the covered prefix nothing is claimed.
        self.assertEqual(watch_check.reads_consistent(bad, ref, 2), [])


class InvariantsTest(unittest.TestCase):

    def test_acknowledged_creation_must_survive(self):
        ops = H("a").create(0, 1).ops + H("b").create(0, 1).delete(2).ops + H("c").create(0, 1).ops
        out = invariants.acked_creations_exist(ops, {"c": {}})
        self.assertEqual(len(out), 1)
        self.assertTrue(out[0].startswith("a:"), out)

    def test_revision_never_goes_back_on_a_member(self):
        def s(m, t0, t1, rev, term=1, start=1):
            return {"member": m, "t_send": t0, "t_recv": t1, "revision": rev, "term": term, "start": start}
        ok = [s("c1", 0, 1, 5), s("c1", 2, 3, 7), s("c2", 0, 1, 9), s("c1", 4, 5, 7, 2, 2),
              s("c1", 5.5, 9, 6, 2, 2)]  # not ordered after the sample answered at 5? it is: 5 < 5.5
        out = invariants.monotonic_per_member(ok)
        self.assertEqual(len(out), 1, out)
        self.assertIn("revision went back from 7", out[0])
        # Reported once per high point, and only against samples answered
        # before the lower one was sent.
        drops = [s("c1", 0, 1, 9), s("c1", 2, 3, 5), s("c1", 4, 9, 6), s("c1", 5, 6, 4)]
        out = invariants.monotonic_per_member(drops, what=("revision",))
        self.assertEqual(len(out), 1, out)
        self.assertIn("from 9", out[0])
        overlapping = [s("c1", 0, 3, 8), s("c1", 1, 2, 7)]
        self.assertEqual(invariants.monotonic_per_member(overlapping), [])
        self.assertEqual(len(invariants.monotonic_per_member([s("c1", 0, 1, 5, 3), s("c1", 2, 3, 6, 2)])), 1)
        # A drop between two starts of the process counts like any other.
        across = [s("c1", 0, 1, 9, 1, 1), s("c1", 2, 3, 4, 1, 2)]
        self.assertEqual(len(invariants.monotonic_per_member(across)), 1)


def write(agent, shard, epoch, t0, t1, status=200, key=None, value=None):
    key = key or "k%s%d%g" % (agent, epoch, t0)
    return {"agent": agent, "shard": shard, "key": key, "value": value or key, "epoch": epoch, "t_call": t0,
            "t_ret": t1, "status": status}


class FencingTest(unittest.TestCase):
    REF = {2: ev(2, "grant", "a", "w1", 1), 5: ev(5, "revoke", "a", "w1", 1), 6: ev(6, "grant", "a", "w2", 2)}

    def check(self, writes, complete=True, readback=()):
        return fencing.check(writes, self.REF, complete, list(readback))

    def test_handoff_in_order_passes(self):
        ws = [write("w1", "a", 1, 0, 1), write("w1", "a", 1, 0.5, 2), write("w2", "a", 2, 3, 4),
              write("w1", "a", 1, 5, 6, status=409)]
        self.assertEqual(self.check(ws, readback=[(w, 200, w["value"], str(w["epoch"])) for w in ws[:3]]), [])

    def test_two_agents_at_one_epoch(self):
        out = self.check([write("w1", "a", 1, 0, 1), write("w2", "a", 1, 2, 3)])
        self.assertTrue(any("epoch 1 accepted by ['w1', 'w2']" in x for x in out), out)
        self.assertTrue(any("granted to w1" in x for x in out), out)

    def test_old_epoch_accepted_after_a_newer_one(self):
        out = self.check([write("w2", "a", 2, 0, 1), write("w1", "a", 1, 2, 3)])
        self.assertEqual(len(out), 1, out)
        self.assertIn("accepted epoch 1 (sent 2.000) after w2's write at epoch 2", out[0])
        # Overlapping in time: no order known, nothing to report.
        self.assertEqual(self.check([write("w2", "a", 2, 0, 3), write("w1", "a", 1, 1, 2)]), [])

    def test_never_granted(self):
        self.assertEqual(len(self.check([write("w3", "a", 7, 0, 1)])), 1)
        self.assertEqual(self.check([write("w3", "a", 7, 0, 1)], complete=False), [])

    def test_read_back(self):
        w = write("w1", "a", 1, 0, 1)
        self.assertEqual(len(self.check([w], readback=[(w, 404, "", None)])), 1)
        self.assertEqual(len(self.check([w], readback=[(w, 200, "other", "1")])), 1)
        self.assertEqual(len(self.check([w], readback=[(w, 200, w["value"], "2")])), 1)


class OneShotServer(threading.Thread):
    """Answers the first request on a kept-alive connection; reads the second
    and then, as a member killed mid-request, stops listening and drops the
    connection without an answer."""

    def __init__(self, keep_listening=False):
        super().__init__(daemon=True)
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(4)
        self.address = "127.0.0.1:%d" % self.listener.getsockname()[1]
        self.keep_listening = keep_listening
        self.requests_read = 0

    def _read_request(self, conn):
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(4096)
            if not chunk:
                return False
            data += chunk
        self.requests_read += 1
        return True

    def run(self):
        conn, _ = self.listener.accept()
        self._read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
        if self.keep_listening:
            conn.close()  # closed while idle; the retry's fresh connection is answered
            conn, _ = self.listener.accept()
            self._read_request(conn)
            conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
            conn.close()
            return
        self._read_request(conn)
        self.listener.close()
        conn.close()


class HttpRequestTest(unittest.TestCase):
    """What the chaos clients record depends on which error a lost request
    raises: a refused connection means never sent, anything else may have
    been applied."""

    def setUp(self):
        tenure_net.close_connections()

    def test_a_request_lost_with_its_server_is_not_reported_refused(self):
        server = OneShotServer()
        server.start()
        self.assertEqual(tenure_net.http_request(server.address, "GET", "/a").status, 200)
        with self.assertRaises(OSError) as raised:
            tenure_net.http_request(server.address, "DELETE", "/b", timeout=2.0)
        server.join(5)
        self.assertEqual(server.requests_read, 2)  # the server had the delete
        self.assertNotIsInstance(raised.exception, ConnectionRefusedError)
        self.assertEqual(workloads._classify_error(raised.exception), "info")

    def test_an_idle_connection_closed_by_the_server_is_retried(self):
        server = OneShotServer(keep_listening=True)
        server.start()
        self.assertEqual(tenure_net.http_request(server.address, "GET", "/a").status, 200)
        self.assertEqual(tenure_net.http_request(server.address, "GET", "/b").status, 204)
        server.join(5)

    def test_a_server_that_is_not_listening_refuses(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % s.getsockname()[1]
        s.close()
        with self.assertRaises(ConnectionRefusedError) as raised:
            tenure_net.http_request(address, "GET", "/a")
        self.assertEqual(workloads._classify_error(raised.exception), "fail")


if __name__ == "__main__":
    unittest.main(verbosity=2)
