#!/usr/bin/env python3
"""Each shard's history lives in each controller's history.db, not in RAM
and not in snapshots (member/history_store.h). What must hold from the
outside:

- a member restarted after its log was compacted below the grants still
  answers their history (it was made durable before the log was dropped),
  without a gap;
- a member that joined through the leader's snapshot has no records from
  before it: until it has copied them from the leader (in the background,
  api/history_backfill.h) it forwards history reads to the leader, and
  then answers them itself, the same as the leader;
- records written after it joined are its own.
"""

import tenure_harness as th


def history(member, shard, headers=None):
    r = member.get("/v1/shards/%s/history" % shard, headers=headers)
    assert r.status == 200, (member.id, r.status, r.body)
    return r.json


def wait_all_granted(leader, ids):
    def granted():
        _, shards = th.list_shards(leader)
        owners = {s: leader.get("/v1/shards/" + s).json.get("worker") for s in ids[:3] + ids[-3:]}
        return set(ids) <= set(shards) and all(w == "w1" for w in owners.values())
    th.wait_until(granted, 30, "every shard granted to w1")


class HistoryTest(th.ClusterTestCase):

    def test_history_survives_compaction_and_restarts_and_a_joiner_forwards_its_gap(self):
        c = self.make_cluster(n=3, snapshot_threshold=50, worker_lease_ms=300000)
        leader = c.start()
        self.assertStatus(leader.post("/v1/workers/w1/register", {"address": "127.0.0.1:9"}), 200)
        first = ["s-%d" % i for i in range(120)]
        for i in range(0, len(first), 2):  # one entry per request: the log grows past the threshold
            th.create_shards(leader, first[i:i + 2])
        wait_all_granted(leader, first)
        before = history(leader, "s-0")
        self.assertEqual([(h["to"], h["reason"], h["epoch"]) for h in before["history"]], [("w1", "created", 1)])
        self.assertNotIn("gap_through_revision", before)
        # The writer's metrics: every grant's record written, none queued or
        # dropped, no gap.
        th.wait_until(lambda: leader.metric("tenure_history_records_written_total", 0) >= len(first) and
                      leader.metric("tenure_history_queued_records", -1) == 0 and
                      leader.metric("tenure_history_queued_bytes", -1) == 0, 20, "the leader's history written")
        self.assertEqual(leader.metric("tenure_history_records_dropped_total", -1), 0)
        self.assertEqual(leader.metric("tenure_history_gap_through_revision", -1), 0)

        # A restart: the log below the member's snapshot is gone, the records are not.
        follower, victim = c.followers(leader)
        th.wait_until(lambda: follower.metric("tenure_raft_snapshots_taken_total", 0) > 0, 20,
                      "%s compacted its log" % follower.id)
        follower.restart()
        th.wait_until(lambda: follower.cluster_view()["caught_up"], 20, "%s caught up" % follower.id)
        self.assertEqual(history(follower, "s-0", headers={"tenure-forwarded": "test"}), before)

        # A member that lost its disk comes back through the leader's snapshot.
        victim.kill()
        victim.in_group = False
        self.assertStatus(leader.delete("/v1/members/" + victim.id), 200)
        th.wait_until(lambda: victim.id not in {m["id"] for m in leader.get("/v1/members").json["members"]}, 20,
                      "%s removed" % victim.id)
        victim.wipe()
        more = ["t-%d" % i for i in range(120)]
        for i in range(0, len(more), 2):
            th.create_shards(leader, more[i:i + 2])
        c.prepare_rejoin(victim.id)
        victim.start()
        self.assertStatus(c.add_member(victim.id), 201)
        th.wait_until(lambda: victim.metric("tenure_raft_snapshots_installed_total", 0) > 0, 30,
                      "%s installed a snapshot" % victim.id)
        th.wait_until(lambda: victim.cluster_view()["applied_index"] >= leader.cluster_view()["commit_index"], 20,
                      "%s caught up" % victim.id)
        # Its own store starts empty with a gap (the snapshot carries no
        # history) and is filled from the leader's pages in the background;
        # meanwhile a read at it is forwarded to the leader.
        own = history(victim, "s-0", headers={"tenure-forwarded": "test"})
        if "gap_through_revision" in own:
            self.assertGreaterEqual(own["gap_through_revision"], before["history"][0]["revision"])
            self.assertIn(own["history"], ([], before["history"]))
        self.assertEqual(history(victim, "s-0"), before, "forwarded to the leader, or filled")
        th.wait_until(lambda: history(victim, "s-0", headers={"tenure-forwarded": "test"}) == before, 30,
                      "%s filled its history from the leader's" % victim.id)
        th.wait_until(lambda: "event=backfill_end" in victim.log_tail(200), 10, "the copy's end logged")
        self.assertIn("result=done", [l for l in victim.log_tail(200).splitlines() if "event=backfill_end" in l][-1])
        th.wait_until(lambda: victim.metric("tenure_history_gap_through_revision", -1) == 0, 10,
                      "%s's gap metric cleared once filled" % victim.id)
        for sid in ("s-1", "s-119", "t-0", "t-119"):
            self.assertEqual(history(victim, sid, headers={"tenure-forwarded": "test"}), history(leader, sid), sid)

        # The peer route the copy reads is peer input like any other: a bad
        # parameter is a 400 naming them, and a page is bounded.
        for query in ("", "through=x", "through=5&limit=0", "through=5&limit=10001",
                      "through=5&after=bad%20id", "through=5&after_revision=-1"):
            r = leader.get("/raft/history?" + query)
            self.assertStatus(r, 400)
            self.assertIn("through", r.json["message"])
        page = leader.get("/raft/history?through=%d&limit=3" % leader.cluster_view()["revision"]).json
        self.assertEqual(len(page["records"]), 3)
        self.assertTrue(page["more"])

        # What it applies after joining is its own.
        th.create_shards(leader, ["after-join"])
        wait_all_granted(leader, ["after-join"])
        th.wait_until(lambda: victim.cluster_view()["revision"] >= leader.cluster_view()["revision"], 20,
                      "%s applied the grant" % victim.id)
        at_leader = history(leader, "after-join")
        own = history(victim, "after-join", headers={"tenure-forwarded": "test"})
        self.assertEqual(own["history"], at_leader["history"])
        self.assertEqual(len(own["history"]), 1)


if __name__ == "__main__":
    th.main()
