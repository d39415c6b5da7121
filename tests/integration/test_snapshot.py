#!/usr/bin/env python3
"""A follower that lost its data_dir, rebuilt through InstallSnapshot.

The safe path: the wiped member is removed from the group, restarted with a
config that does not list itself (so it does not bootstrap a group of its
own) and added back; the leader, whose log is compacted (small
raft.snapshot_threshold_entries), sends it a snapshot.

The unsafe path is refused: a member restarted with an empty data_dir and
its own id among its config's peers asks its peers whether it already took
part in the group, and if so refuses to bootstrap (it forgot its vote and the
entries it acknowledged, so it could help elect a leader that lacks an
acknowledged write).
"""

import os
import re
import time

import tenure_harness as th


class SnapshotTest(th.ClusterTestCase):

    def wiped_member_out_of_a_compacted_group(self):
        """A group whose leader compacted its log, and a follower that lost
        its disk and was removed meanwhile: (cluster, victim, shard ids)."""
        c = self.make_cluster(n=3, snapshot_threshold=50)
        leader = c.start()
        first = ["s-%d" % i for i in range(120)]
        for i in range(0, len(first), 2):  # one entry per request: the log grows past the threshold
            th.create_shards(leader, first[i:i + 2])
        victim = c.followers(leader)[0]
        th.wait_until(lambda: victim.cluster_view()["applied_index"] >= leader.cluster_view()["commit_index"], 20,
                      "%s caught up before it is stopped" % victim.id)

        # The member loses its disk: stop it, remove it from the group, wipe it.
        victim.kill()
        victim.in_group = False
        leader = c.leader()
        self.assertStatus(leader.delete("/v1/members/" + victim.id), 200)
        th.wait_until(lambda: victim.id not in {m["id"] for m in leader.get("/v1/members").json["members"]}, 20,
                      "%s removed" % victim.id)
        victim.wipe()
        second = ["t-%d" % i for i in range(120)]
        for i in range(0, len(second), 2):
            th.create_shards(leader, second[i:i + 2])
        self.assertGreater(leader.metric("tenure_raft_snapshots_taken_total", 0), 0,
                           "the leader compacted its log")
        return c, victim, first + second

    def test_wiped_member_removed_and_readded_catches_up_via_snapshot(self):
        c, victim, ids = self.wiped_member_out_of_a_compacted_group()
        leader = c.leader()
        # It comes back empty, as a joiner, and is added again.
        c.prepare_rejoin(victim.id)
        victim.start()
        self.assertStatus(c.add_member(victim.id), 201)
        th.wait_until(lambda: victim.metric("tenure_raft_snapshots_installed_total", 0) > 0, 30,
                      "%s installed a snapshot" % victim.id)
        # The leader held no snapshot bytes in memory: it streamed its file.
        sends = [l for l in leader.log_text().splitlines() if "event=snapshot_send to=%s " % victim.id in l]
        self.assertTrue(sends, "the leader logged no snapshot_send to %s" % victim.id)
        self.assertIn("from=file", sends[-1])
        view = c.leader().cluster_view()
        th.wait_until(lambda: victim.cluster_view()["applied_index"] >= view["commit_index"], 20,
                      "%s applied up to the leader's commit index" % victim.id)
        _, stale = th.list_shards(victim, "stale")
        self.assertEqual(sorted(set(ids) - set(stale)), [], "shards missing at %s" % victim.id)
        _, lin = th.list_shards(victim)
        self.assertEqual(sorted(set(ids) - set(lin)), [])
        # It is a voter again, and the group goes on.
        th.wait_until(lambda: {m["id"]: m["role"] for m in c.leader().get("/v1/members").json["members"]}
                      .get(victim.id) == "follower", 20, "%s promoted to voter" % victim.id)
        th.create_shards(victim, ["after-rejoin"])

    def test_a_snapshot_file_rotted_on_the_leaders_disk_is_never_sent(self):
        """A bit flipped in the leader's snapshot file (a failing disk): the
        leader checks the bytes it streams against the checksum raft.db
        recorded, sends none of them, takes a new snapshot, and the rejoining
        member installs that one. Before, the rotted bytes went out and the
        follower's decode was the only check (it refused them, over and over,
        or took them if the flip hit a value)."""
        c, victim, ids = self.wiped_member_out_of_a_compacted_group()
        leader = c.leader()

        seen = {}

        def settled_snapshot_file():
            """The file of the leader's last recorded snapshot once it stays
            so for half a second with no newer file beside it. No write
            follows, so a snapshot still due starts at once and takes a few
            milliseconds here; a child writing a newer file after the rot
            would replace the rotted one (CI caught that race)."""
            taken = [int(m) for m in re.findall(r"event=snapshot_taken node=%s index=(\d+) " % leader.id,
                                                 leader.log_text())]
            files = sorted(f for f in os.listdir(leader.data_dir) if f.startswith("snapshot-") and f.endswith(".snap"))
            if not taken or not files or int(files[-1].split("-")[1]) != max(taken):
                seen.clear()
                return None
            state = (max(taken), files[-1])
            if seen.get("state") != state:
                seen.update(state=state, since=time.monotonic())
                return None
            if time.monotonic() - seen["since"] < 0.5:
                return None
            return os.path.join(leader.data_dir, files[-1])
        path = th.wait_until(settled_snapshot_file, 20, "the leader's snapshots settled")
        with open(path, "r+b") as f:
            data = bytearray(f.read())
            data[len(data) // 2] ^= 0x10
            f.seek(0)
            f.write(data)
        taken = leader.metric("tenure_raft_snapshots_taken_total", 0)

        c.prepare_rejoin(victim.id)
        victim.start()
        self.assertStatus(c.add_member(victim.id), 201)
        th.wait_until(lambda: victim.metric("tenure_raft_snapshots_installed_total", 0) > 0, 30,
                      "%s installed a snapshot" % victim.id)
        self.assertIn("event=snapshot_file_corrupt to=%s " % victim.id, leader.log_text())
        self.assertGreater(leader.metric("tenure_raft_snapshots_taken_total", 0), taken,
                           "the leader took a new snapshot")
        self.assertEqual(victim.metric('tenure_raft_messages_dropped_total{reason="bad_snapshot_data"}', 0), 0,
                         "rotted bytes reached %s" % victim.id)
        view = c.leader().cluster_view()
        th.wait_until(lambda: victim.cluster_view()["applied_index"] >= view["commit_index"], 20,
                      "%s applied up to the leader's commit index" % victim.id)
        _, stale = th.list_shards(victim, "stale")
        self.assertEqual(sorted(set(ids) - set(stale)), [], "shards missing at %s" % victim.id)

    def test_follower_paused_past_the_payloads_kept_catches_up_from_raft_db(self):
        """A member keeps only the newest 8 MiB of applied payloads in memory;
        a follower further behind than that is sent the older entries read
        back from the leader's raft.db (before any snapshot is due)."""
        c = self.make_cluster(n=3)
        leader = c.start()
        victim = c.followers(leader)[0]
        victim.pause()
        prefix = "readback-" + "x" * 100 + "-"
        total = 0
        for b in range(6):  # ~2.3 MB of ids per create: ~14 MB of entries
            r = leader.post("/v1/shards", {"count": 20000, "prefix": prefix + "%d-" % b}, timeout=60)
            self.assertStatus(r, 201)
            total += len(r.json["created"])
        # A probe sent to the paused follower may already have read some back.
        before = leader.metric("tenure_raft_log_entries_read_back_total")
        victim.resume()
        th.wait_until(lambda: victim.cluster_view()["applied_index"] >= leader.cluster_view()["commit_index"], 60,
                      "%s caught up" % victim.id)
        after = leader.metric("tenure_raft_log_entries_read_back_total")
        self.assertGreater(after, 0, "the leader read no entry back from raft.db")
        self.assertGreater(after, before, "the follower's catch-up read no entry back")
        self.assertEqual(victim.metric("tenure_raft_snapshots_installed_total", 0), 0, "caught up by a snapshot")
        self.assertLess(leader.metric("tenure_raft_log_payload_bytes"), 9 * 2 ** 20)
        self.assertEqual(victim.metric("tenure_shards{state=\"unassigned\"}", 0), total)

    def test_wiped_member_refuses_to_bootstrap_again(self):
        """An empty data_dir with its id among peers would bootstrap anew,
        having forgotten its vote and the entries it acknowledged: with
        leader L, followers A and B, L->A cut and W acknowledged by L and B,
        a wiped B that bootstrapped could elect A (without W) once L dies.
        The member asks its peers first: they know it took part (the leader
        records every member it heard acknowledge entries), so it refuses to
        start, and W survives."""
        c = self.make_cluster(n=3)
        leader = c.start()
        th.create_shards(leader, ["base"])
        a, b = c.followers(leader)

        def started(view_of, member_id):
            return {m["id"]: m.get("started") for m in view_of.get("/v1/members").json["members"]}.get(member_id)
        # The precondition of the guard: the group has recorded that b took part.
        th.wait_until(lambda: started(a, b.id) and started(leader, b.id), 20, "%s recorded as started" % b.id)
        c.cut(leader.id, a.id, "refuse")
        th.create_shards(leader, ["W"])  # acknowledged: committed by the leader and b
        b.kill()
        b.wipe()
        c.cut(leader.id, b.id, "refuse")
        b.start(wait_healthy=False)
        th.wait_until(lambda: not b.alive(), 30, "%s refusing to start" % b.id)
        self.assertNotEqual(b.proc.returncode, 0)
        self.assertIn("must not bootstrap again", b.log_tail(5))
        # The acknowledged write is still there for the group to serve.
        c.heal_all()
        _, shards = th.list_shards(c.wait_leader([leader, a], timeout=20))
        self.assertIn("W", shards)

    def test_removed_member_restarted_empty_refuses_to_found_a_group_of_its_own(self):
        """A member removed from the group, wiped and restarted with its
        first config (its own id among peers) must not bootstrap: the group
        no longer lists it, so nobody remembers it took part, and two such
        members of three would elect each other and depose the real group
        with their newer terms (chaos seeds 301 and 302). A peer that runs a
        group without it makes it refuse, and the group keeps its leader."""
        c = self.make_cluster(n=3)
        leader = c.start()
        th.create_shards(leader, ["base"])
        a, b = c.followers(leader)
        r = leader.delete("/v1/members/" + b.id)
        self.assertStatus(r, 200)
        b.in_group = False
        th.wait_until(lambda: b.id not in [m["id"] for m in a.get("/v1/members").json["members"]], 20,
                      "%s gone from %s's member list" % (b.id, a.id))
        term = leader.cluster_view()["term"]
        b.kill()
        b.wipe()
        b.start(wait_healthy=False)
        th.wait_until(lambda: not b.alive(), 30, "%s refusing to start" % b.id)
        self.assertNotEqual(b.proc.returncode, 0)
        self.assertIn("runs a group without member %s" % b.id, b.log_tail(5))
        self.assertEqual(c.wait_leader([leader, a]).id, leader.id)
        self.assertEqual(leader.cluster_view()["term"], term)

    def test_wiped_member_cut_off_at_start_waits_for_a_peer_then_refuses(self):
        """The guard must also hold when no peer answers at first (a
        partition, its peers restarting): a first start bootstraps only once
        a peer has answered. Same scenario: L->A cut, W acknowledged by L and
        B; B wiped and restarted while all its links are cut, so it waits
        (serving, not bootstrapping); L dies; A<->B heal: A tells B it took
        part, B refuses to start, and W survives."""
        c = self.make_cluster(n=3)
        leader = c.start()
        th.create_shards(leader, ["base"])
        a, b = c.followers(leader)

        def started(view_of, member_id):
            return {m["id"]: m.get("started") for m in view_of.get("/v1/members").json["members"]}.get(member_id)
        th.wait_until(lambda: started(a, b.id) and started(leader, b.id), 20, "%s recorded as started" % b.id)
        c.cut(leader.id, a.id, "refuse")
        th.create_shards(leader, ["W"])  # acknowledged: committed by the leader and b
        b.kill()
        b.wipe()
        c.isolate(b.id, "refuse")
        b.start()  # it serves, but asks its peers before bootstrapping
        th.wait_until(lambda: "waiting_for_peers" in b.log_tail(5), 10, "%s waiting for a peer" % b.id)
        self.assertEqual(b.get("/readyz").status, 503)
        leader.kill()
        for x, y in ((a.id, b.id), (b.id, a.id)):
            c.heal(x, y)
        th.wait_until(lambda: not b.alive(), 30, "%s refusing to start once %s answers" % (b.id, a.id))
        self.assertNotEqual(b.proc.returncode, 0)
        self.assertIn("must not bootstrap again", b.log_tail(5))
        # W survives: with the old leader back, the group serves it.
        c.heal_all()
        leader.start()
        _, shards = th.list_shards(c.wait_leader([leader, a], timeout=30))
        self.assertIn("W", shards)


if __name__ == "__main__":
    th.main()
