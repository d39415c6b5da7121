#!/usr/bin/env python3
"""Crashes: SIGKILL of the leader (a new leader takes writes, the killed
member catches up on restart) and SIGKILL of every member (nothing
acknowledged is lost); SIGTERM is a clean exit 0."""

import threading

import tenure_harness as th


class FailoverTest(th.ClusterTestCase):

    def test_leader_sigkill_new_leader_and_catch_up(self):
        c = self.make_cluster(n=3)
        old = c.start()
        th.create_shards(old, ["before-%d" % i for i in range(10)])
        term_before = old.cluster_view()["term"]

        old.kill()
        survivors = c.running()
        new = c.wait_leader(survivors, exclude=old.id)
        self.assertNotEqual(new.id, old.id)
        self.assertGreater(new.cluster_view()["term"], term_before)
        # The new leader takes writes, also through the other survivor.
        other = [m for m in survivors if m.id != new.id][0]
        after = ["after-%d" % i for i in range(20)]
        for i, sid in enumerate(after):
            th.create_shards(new if i % 2 else other, [sid])
        leader_view = new.cluster_view()

        # The killed member restarts (same data_dir) and catches up.
        old.start()
        th.wait_until(lambda: old.cluster_view()["applied_index"] >= leader_view["commit_index"], 20,
                      "%s applied up to %d" % (old.id, leader_view["commit_index"]))
        _, stale = th.list_shards(old, "stale")
        expected = {"before-%d" % i for i in range(10)} | set(after)
        self.assertEqual(sorted(expected - set(stale)), [], "writes missing from a stale read at %s" % old.id)
        # It rejoined as a member that agrees on the leader (wait_leader asks all three).
        self.assertIn(c.wait_leader().id, ("c1", "c2", "c3"))

    def test_leader_sigkill_under_write_load_loses_nothing(self):
        c = self.make_cluster(n=3)
        old = c.start()
        writer = th.Writer(c, "w-")
        writer.start()
        try:
            th.wait_until(lambda: len(writer.acked) >= 30, 20, "writes acknowledged before the kill")
            old.kill()
            c.wait_leader([m for m in c.all() if m.id != old.id], exclude=old.id)
            n = len(writer.acked)
            th.wait_until(lambda: len(writer.acked) >= n + 30, 30, "writes acknowledged after the failover")
            old.start()
            n = len(writer.acked)
            th.wait_until(lambda: len(writer.acked) >= n + 30, 30, "writes acknowledged after the restart")
        finally:
            writer.stop()
        self.assertEqual(writer.errors, [])
        for m in c.all():
            missing = sorted(set(writer.acked) - set(th.list_shards(m)[1]))
            self.assertEqual(missing, [], "acknowledged writes missing at %s" % m.id)

    def test_a_dead_leaders_refused_port_starts_an_election_a_stopped_ones_does_not(self):
        # Followers dial a leader silent for 1.5 heartbeats. The port of a
        # SIGKILLed process refuses the connection: a survivor campaigns
        # without waiting out the election timeout (event=leader_unreachable).
        # A SIGSTOPped leader's kernel still accepts connections, so its
        # followers wait the election timeout out, as before. Direct peer
        # links: a proxy would accept for a dead member. Not timed: the
        # bench (bench/vs-etcd, failover rows) measures how much sooner.
        c = self.make_cluster(n=3, heartbeat_ms=50, election_ms=2000, direct_peers=True)
        old = c.start()
        term = old.cluster_view()["term"]
        old.pause()
        survivors = [m for m in c.all() if m.id != old.id]
        new = c.wait_leader(survivors, exclude=old.id)
        self.assertGreater(new.cluster_view()["term"], term)
        for m in survivors:
            self.assertNotIn("event=leader_unreachable", m.log_text(),
                             "%s took a stopped (live) leader for a dead one" % m.id)
        old.resume()
        c.wait_leader()

        leader = c.wait_leader()
        term = leader.cluster_view()["term"]
        leader.kill()
        survivors = [m for m in c.all() if m.id != leader.id]
        new = c.wait_leader(survivors, exclude=leader.id)
        self.assertGreater(new.cluster_view()["term"], term)
        told = [m.id for m in survivors if "event=leader_unreachable node=%s leader=%s" % (m.id, leader.id)
                in m.log_text()]
        self.assertNotEqual(told, [], "no survivor found the killed leader's port refusing connections")
        th.create_shards(new, ["after-kill"])

    def test_all_sigkilled_nothing_acknowledged_lost(self):
        c = self.make_cluster(n=3)
        c.start()
        # Many acknowledged writes from 4 concurrent clients at all members;
        # only 201 answers count as acknowledged.
        acked = []
        lock = threading.Lock()
        errors = []

        def client(k):
            members = c.all()
            try:
                for i in range(60):
                    m = members[(k + i) % 3]
                    sid = "k%d-%d" % (k, i)
                    try:
                        r = m.post("/v1/shards", {"ids": [sid]})
                    except OSError as e:
                        errors.append("%s: %r" % (sid, e))
                        continue
                    if r.status == 201:
                        with lock:
                            acked.append(sid)
                    elif r.status != 503:
                        errors.append("%s: %r" % (sid, r))
            finally:
                th.close_connections()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        self.assertGreaterEqual(len(acked), 200, "too few writes acknowledged for the test to mean much")
        revision = c.leader().cluster_view()["revision"]

        # kill -9 all at once, restart all with the same data_dirs.
        for m in c.all():
            m.signal(9)
        for m in c.all():
            m.kill()
        c.start()
        for m in c.all():
            rev, shards = th.list_shards(m)
            missing = sorted(set(acked) - set(shards))
            self.assertEqual(missing, [], "acknowledged shards lost at %s" % m.id)
            self.assertGreaterEqual(rev, revision)
        # The group goes on taking writes.
        th.create_shards(c.leader(), ["after-restart"])

    def test_sigterm_exits_cleanly_and_restarts(self):
        c = self.make_cluster(n=3)
        leader = c.start()
        th.create_shards(leader, ["x", "y"])
        for m in c.all():
            self.assertEqual(m.terminate(), 0, "%s exit code after SIGTERM\n%s" % (m.id, m.log_tail(10)))
            self.assertIn("event=stopped", m.log_tail(5))
        c.start()
        _, shards = th.list_shards(c.all()[0])
        self.assertEqual(sorted(shards), ["x", "y"])


if __name__ == "__main__":
    th.main()
