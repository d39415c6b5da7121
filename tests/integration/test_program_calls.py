#!/usr/bin/env python3
"""The data-plane program in the loop (CONTRACT.md, "Agent and program"),
with real tenure-agents calling a real HTTP program (a stdlib server in
this process standing in for the data-plane program of each worker):

- the program is told of every grant it holds; a grant it does not
  acknowledge (503) is sent again until it is;
- a manual move asks the source's program to drain first: while it drains,
  the source still accepts fenced writes at its epoch (the program flushes
  through the fence), the target is granted only after the drain was
  answered, and the source's program then hears the revoke (reason
  handoff) and its fence refuses the old epoch;
- a program that never answers a drain holds the move up only for
  app.drain_timeout_ms (counted as a timeout), never for good;
- a planned move's target is asked to prepare first, while the source still
  serves (no drain asked, its fence admits the old epoch); the source is
  asked to drain only once the target answered; the phases show in
  GET /v1/rebalance and in the shard's history; a prepare that never
  answers holds the move for app.prepare_timeout_ms, and a target whose
  agent never says "prepared" for placement.prepare_timeout_ms (the
  leader's bound);
- GET /v1/grants/watch streams the current grants, then each change as it
  takes effect; a resume token replays what came after it, and a token
  the agent cannot honour starts over with a reset and the grants.
"""

import http.client
import json
import queue
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import fleet_harness as fh
import tenure_harness as th

LEASE_MS = 3000
HEARTBEAT_MS = 250


class Program:
    """One worker's program: records every call; answers drains after
    `drain_delay` seconds (after `on_drain(shard, epoch)` ran), or never
    when `drain_hangs`; refuses the first `refuse_grants` grants with 503."""

    def __init__(self, worker):
        self.worker = worker
        self.calls = []  # (monotonic time, call, shard, epoch, reason)
        self.lock = threading.Lock()
        self.drain_delay = 0.0
        self.prepare_delay = 0.0
        self.grant_delay = 0.0
        self.token = None  # when set, calls without it get 401 (app.token)
        self.drain_hangs = False
        self.refuse_grants = 0
        self.on_drain = None
        self.release_hang = threading.Event()

    def record(self, call, body):
        with self.lock:
            self.calls.append((time.monotonic(), call, body["shard"], body["epoch"], body["reason"]))

    def of(self, call, shard=None):
        with self.lock:
            return [c for c in self.calls if c[1] == call and (shard is None or c[2] == shard)]

    def held(self):
        """{shard: epoch} from the grants and revokes it was told, in order."""
        out = {}
        with self.lock:
            for _, call, shard, epoch, _ in self.calls:
                if call == "grant":
                    out[shard] = epoch
                elif call == "revoke" and out.get(shard) == epoch:
                    del out[shard]
        return out


class Programs:
    """An HTTP server routing /WORKER/tenure/v1/CALL to that worker's Program."""

    def __init__(self):
        self.by_worker = {}
        programs = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                parts = self.path.strip("/").split("/")
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                p = programs.by_worker.get(parts[0])
                if p is None or parts[1:3] != ["tenure", "v1"]:
                    return self.answer(404)
                call = parts[3]
                if p.token and self.headers.get("Authorization") != "Bearer " + p.token:
                    p.record("unauthorized", body)
                    return self.answer(401)
                if call == "grant" and p.refuse_grants > 0:
                    p.refuse_grants -= 1
                    p.record("grant_refused", body)
                    return self.answer(503)
                if call == "prepare":
                    time.sleep(p.prepare_delay)  # the program's own load time
                if call == "grant":
                    time.sleep(p.grant_delay)  # a load it did not do ahead
                if call == "drain":
                    p.record("drain_asked", body)
                    if p.drain_hangs:
                        p.release_hang.wait(30)
                        return self.answer(200)
                    if p.on_drain:
                        p.on_drain(body["shard"], body["epoch"])
                    time.sleep(p.drain_delay)  # the program's own flush time
                p.record(call, body)
                self.answer(200)

            def answer(self, status):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, worker):
        self.by_worker[worker] = Program(worker)
        return "http://127.0.0.1:%d/%s" % (self.server.server_address[1], worker)

    def stop(self):
        for p in self.by_worker.values():
            p.release_hang.set()
        self.server.shutdown()
        self.server.server_close()


class GrantStream:
    """GET /v1/grants/watch on an agent, its lines collected by a thread."""

    def __init__(self, agent, resume=None):
        host, port = agent.address.rsplit(":", 1)
        self.conn = http.client.HTTPConnection(host, int(port), timeout=30)
        path = "/v1/grants/watch" + ("?resume=%s" % resume if resume else "")
        self.conn.request("GET", path)
        self.response = self.conn.getresponse()
        self.status = self.response.status
        self.lines = queue.Queue()
        threading.Thread(target=self.read, daemon=True).start()

    def read(self):
        try:
            for raw in self.response:
                self.lines.put(json.loads(raw))
        except Exception:  # the stream ended or was closed by the test
            pass

    def next(self, timeout=10, skip_progress=True):
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if not (skip_progress and line["type"] == "progress"):
                return line

    def until(self, pred, timeout=10):
        """Lines up to and including the first for which pred holds."""
        out = []
        deadline = time.monotonic() + timeout
        while True:
            line = self.next(timeout=max(0.01, deadline - time.monotonic()))
            out.append(line)
            if pred(line):
                return out

    def close(self):
        self.conn.close()


class ProgramCallsTest(fh.FleetTestCase):

    def start_with_programs(self, drain_timeout_ms=5000, refuse_grants=0, prepare_timeout_ms=5000, controller_yaml="",
                            app_token=None):
        programs = Programs()
        self.addCleanup(programs.stop)
        f = self.make_fleet(agents=2, lease_ms=LEASE_MS, heartbeat_ms=HEARTBEAT_MS, start=False,
                            controller_yaml=controller_yaml)
        for a in f.all():
            a.app = {"url": programs.url(a.id), "drain_timeout_ms": drain_timeout_ms,
                     "prepare_timeout_ms": prepare_timeout_ms}
            programs.by_worker[a.id].refuse_grants = refuse_grants
            if app_token:
                a.app["token"] = app_token
                programs.by_worker[a.id].token = app_token
        f.cluster.start()
        f.start()
        ids = f.create_shards(6)
        views, _ = f.wait_agreement(timeout=30)
        self.assertEqual(sorted(views), sorted(ids))
        return f, programs, views

    def wait_told(self, f, programs):
        """Every program was told exactly the grants its agent holds."""
        def agree():
            return all(programs.by_worker[a.id].held() == a.grants(timeout=2).claims() for a in f.all())
        th.wait_until(agree, 15, "each program told of the grants its agent holds", interval=0.05)

    def test_grants_are_told_and_retried_until_acknowledged(self):
        f, programs, views = self.start_with_programs(refuse_grants=2)
        self.wait_told(f, programs)
        for a in f.all():
            p = programs.by_worker[a.id]
            if p.of("grant"):
                self.assertTrue(p.of("grant_refused"), "%s: the first grants were refused" % a.id)
        m = f.agent("w1").metrics()
        self.assertGreaterEqual(m.get('tenure_agent_program_calls_total{call="grant",result="error"}', 0) +
                                f.agent("w2").metrics().get(
                                    'tenure_agent_program_calls_total{call="grant",result="error"}', 0), 2)

    def test_a_planned_move_drains_the_source_before_the_target_is_granted(self):
        # With app.token: every call carries it (the programs refuse calls without).
        f, programs, views = self.start_with_programs(app_token="webhook-s3cret")
        self.wait_told(f, programs)
        sid = sorted(s for s, v in views.items() if v["worker"] == "w1")[0]
        epoch = views[sid]["epoch"]
        source, target = programs.by_worker["w1"], programs.by_worker["w2"]
        flushed = []

        listed = []

        def flush(shard, e):
            # The program flushes through the fence while it drains: admitted.
            flushed.append(f.agent("w1").put(shard, "last", e, "flushed").status)
            # And a program restarted now would see the shard marked as draining.
            listed.extend(g for g in f.agent("w1").get("/v1/grants").json["grants"] if g["shard"] == shard)
        source.on_drain = flush
        source.drain_delay = 0.3
        self.assertStatus(f.move(sid, "w2"), 202)
        th.wait_until(lambda: target.of("grant", sid), 15, "the target's program granted %s" % sid, interval=0.02)
        self.assertEqual(flushed, [200], "a write at the old epoch during the drain")
        self.assertEqual(listed, [{"shard": sid, "epoch": epoch, "draining": True}])
        drained_at = source.of("drain", sid)[0][0]
        granted_at = target.of("grant", sid)[0][0]
        self.assertGreaterEqual(granted_at, drained_at, "granted before the source drained")
        self.assertEqual(target.of("grant", sid)[0][3], epoch + 1)
        th.wait_until(lambda: source.of("revoke", sid), 5, "the source's program told of the revoke")
        revoke = source.of("revoke", sid)[0]
        self.assertEqual((revoke[3], revoke[4]), (epoch, "handoff"))
        self.assertLessEqual(revoke[0], granted_at + 1.0)
        r = f.agent("w1").put(sid, "late", epoch, "x")
        self.assertNotEqual(r.status, 200, "the old epoch is refused after the drain")
        self.assertEqual(f.agent("w1").get_data(sid, "last").status, 200)
        m = f.agent("w1").metrics()
        self.assertGreaterEqual(m.get('tenure_agent_program_calls_total{call="drain",result="ok"}', 0), 1)
        for p in programs.by_worker.values():
            self.assertEqual(p.of("unauthorized"), [], "a webhook without the app token")

    def test_a_drain_that_never_answers_holds_the_move_for_its_timeout_only(self):
        f, programs, views = self.start_with_programs(drain_timeout_ms=600)
        self.wait_told(f, programs)
        sid = sorted(s for s, v in views.items() if v["worker"] == "w1")[0]
        source, target = programs.by_worker["w1"], programs.by_worker["w2"]
        source.drain_hangs = True
        moved_at = time.monotonic()
        self.assertStatus(f.move(sid, "w2"), 202)
        th.wait_until(lambda: target.of("grant", sid), 15, "the target granted despite a hung drain",
                      interval=0.02)
        asked_at = source.of("drain_asked", sid)[0][0]
        granted_at = target.of("grant", sid)[0][0]
        self.assertGreaterEqual(granted_at - asked_at, 0.5, "the drain's timeout was not waited for")
        self.assertLess(granted_at - moved_at, LEASE_MS / 1000.0, "a hung drain held the move past a lease")
        m = f.agent("w1").metrics()
        self.assertGreaterEqual(m.get('tenure_agent_program_calls_total{call="drain",result="timeout"}', 0), 1)

    def test_the_target_prepares_while_the_source_serves_then_the_source_drains(self):
        f, programs, views = self.start_with_programs()
        self.wait_told(f, programs)
        sid = sorted(s for s, v in views.items() if v["worker"] == "w1")[0]
        epoch = views[sid]["epoch"]
        source, target = programs.by_worker["w1"], programs.by_worker["w2"]
        target.prepare_delay = 0.6
        self.assertStatus(f.move(sid, "w2"), 202)
        # While the target prepares: the phase shows, the source serves, no drain.
        def preparing():
            moves = f.ctl("GET", "/v1/rebalance").json.get("moves", [])
            return [m for m in moves if m["shard"] == sid and m["phase"] == "preparing"]
        th.wait_until(preparing, 5, "the move of %s preparing" % sid, interval=0.02)
        self.assertStatus(f.agent("w1").put(sid, "during-prepare", epoch, "v"), 200)
        self.assertEqual(source.of("drain_asked", sid), [])
        th.wait_until(lambda: target.of("grant", sid), 15, "the target's program granted %s" % sid, interval=0.02)
        prepared = target.of("prepare", sid)
        self.assertEqual(len(prepared), 1)
        self.assertEqual(prepared[0][3], epoch + 1, "prepare names the epoch of the grant to come")
        drain_asked = source.of("drain_asked", sid)[0][0]
        self.assertGreaterEqual(drain_asked, prepared[0][0], "the source drained before the target was prepared")
        self.assertGreaterEqual(target.of("grant", sid)[0][0], source.of("drain", sid)[0][0])
        last = f.history(sid)[-1]
        self.assertEqual((last["reason"], last["to"]), ("manual", "w2"))
        self.assertGreaterEqual(last["phases"]["prepare_ms"], 500)
        self.assertFalse(last["phases"]["prepare_timed_out"])
        self.assertFalse(last["phases"]["drain_timed_out"])
        m = f.agent("w2").metrics()
        self.assertGreaterEqual(m.get('tenure_agent_program_calls_total{call="prepare",result="ok"}', 0), 1)
        leader = f.cluster.leader()
        self.assertGreaterEqual(leader.metrics().get('tenure_handoff_phase_seconds_count{phase="prepare"}', 0), 1)

    def test_a_prepare_that_never_answers_holds_the_move_for_its_timeout_only(self):
        f, programs, views = self.start_with_programs(prepare_timeout_ms=700)
        self.wait_told(f, programs)
        sid = sorted(s for s, v in views.items() if v["worker"] == "w1")[0]
        source, target = programs.by_worker["w1"], programs.by_worker["w2"]
        target.prepare_delay = 30  # never, for this test
        moved_at = time.monotonic()
        self.assertStatus(f.move(sid, "w2"), 202)
        th.wait_until(lambda: target.of("grant", sid), 15, "the target granted despite a hung prepare",
                      interval=0.02)
        waited = source.of("drain_asked", sid)[0][0] - moved_at
        self.assertGreaterEqual(waited, 0.6, "the prepare's timeout was not waited for")
        self.assertLess(waited, LEASE_MS / 1000.0)
        m = f.agent("w2").metrics()
        self.assertGreaterEqual(m.get('tenure_agent_program_calls_total{call="prepare",result="timeout"}', 0), 1)

    def test_the_leader_ends_a_prepare_nobody_reports(self):
        # The target's agent would wait 20 s for its program; the leader's
        # own bound (placement.prepare_timeout_ms) moves on after 800 ms.
        f, programs, views = self.start_with_programs(
            prepare_timeout_ms=20000, controller_yaml="placement: {prepare_timeout_ms: 800}\n")
        self.wait_told(f, programs)
        sid = sorted(s for s, v in views.items() if v["worker"] == "w1")[0]
        programs.by_worker["w2"].prepare_delay = 30
        self.assertStatus(f.move(sid, "w2"), 202)
        th.wait_until(lambda: programs.by_worker["w1"].of("drain", sid), 10, "the source drained", interval=0.02)
        th.wait_until(lambda: f.shard(sid)["worker"] == "w2", 10, "%s moved to w2" % sid, interval=0.02)
        last = f.history(sid)[-1]
        self.assertTrue(last["phases"]["prepare_timed_out"])
        self.assertGreaterEqual(last["phases"]["prepare_ms"], 700)
        leader = f.cluster.leader()
        self.assertGreaterEqual(
            leader.metrics().get('tenure_handoff_phase_timeouts_total{phase="prepare"}', 0), 1)

    def test_the_grants_stream_resumes_after_a_cut(self):
        f, programs, views = self.start_with_programs()
        w1 = f.agent("w1")
        held = w1.grants().claims()
        s = GrantStream(w1)
        self.addCleanup(s.close)
        self.assertEqual(s.status, 200)
        first = s.until(lambda l: l["type"] == "synced")
        self.assertEqual({l["shard"]: l["epoch"] for l in first if l["type"] == "grant"}, held)
        self.assertTrue(all(l.get("initial") for l in first if l["type"] == "grant"))
        token = first[-1]["resume"]
        sid = sorted(held)[0]
        self.assertStatus(f.move(sid, "w2"), 202)
        revoke = s.until(lambda l: l["type"] == "revoke")[-1]
        self.assertEqual((revoke["shard"], revoke["epoch"], revoke["reason"]), (sid, held[sid], "handoff"))
        s.close()
        # Resumed from before the revoke: only what came after, no snapshot.
        again = GrantStream(w1, resume=token)
        self.addCleanup(again.close)
        line = again.next()
        self.assertEqual((line["type"], line["shard"], line["resume"]), ("revoke", sid, revoke["resume"]))
        # A token of another life (or garbage) starts over.
        other = GrantStream(w1, resume="1.5")
        self.addCleanup(other.close)
        lines = other.until(lambda l: l["type"] == "synced")
        self.assertEqual(lines[0]["type"], "reset")
        now = {l["shard"]: l["epoch"] for l in lines if l["type"] == "grant"}
        self.assertEqual(now, w1.grants().claims())
        self.assertNotIn(sid, now)
        garbage = GrantStream(w1, resume="not-a-token")
        self.addCleanup(garbage.close)
        self.assertEqual(garbage.next()["type"], "reset")
        bad = w1.get("/v1/grants/watch?since=3")
        self.assertStatus(bad, 400)
        self.assertEqual(bad.json["field"], "since")


if __name__ == "__main__":
    th.main()
