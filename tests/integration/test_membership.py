#!/usr/bin/env python3
"""Controller-group membership under write load: a fourth member added (as a
learner, promoted to voter once caught up) and an original one removed, with
nothing acknowledged lost."""

import tenure_harness as th


class MembershipTest(th.ClusterTestCase):

    def roles(self, member):
        return {m["id"]: m["role"] for m in member.get("/v1/members").json["members"]}

    def test_add_and_remove_member_under_write_load(self):
        c = self.make_cluster(n=3)
        leader = c.start()
        writer = th.Writer(c, "load-")
        writer.start()
        try:
            th.wait_until(lambda: len(writer.acked) >= 20, 20, "20 writes acknowledged before the change")

            # Add c4: it starts with a config that does not list itself (it joins),
            # then the leader adds it through the API (asked at a follower: forwarded).
            c4 = c.new_member("c4")
            c4.start()
            asked = c.followers(c.leader())[0]
            r = c.add_member("c4", via=asked)
            self.assertStatus(r, 201)
            self.assertEqual(r.json["role"], "learner")
            # Promoted from learner to voter once caught up, as every member sees it.
            for m in c.running():
                th.wait_until(lambda: self.roles(m).get("c4") in ("follower", "leader"), 30,
                              "c4 a voter in %s's /v1/members" % m.id)
            acked_at_add = len(writer.acked)
            th.wait_until(lambda: len(writer.acked) >= acked_at_add + 20, 20, "writes go on after the add")

            # Remove an original member that is not the leader.
            leader = c.leader()
            victim = [m for m in c.followers(leader) if m.id != "c4"][0]
            r = leader.delete("/v1/members/" + victim.id)
            self.assertStatus(r, 200)
            for m in c.running():
                if m.id == victim.id:
                    continue
                th.wait_until(lambda: victim.id not in self.roles(m), 20,
                              "%s gone from %s's /v1/members" % (victim.id, m.id))
            victim.kill()
            acked_at_remove = len(writer.acked)
            th.wait_until(lambda: len(writer.acked) >= acked_at_remove + 20, 30, "writes go on after the removal")
        finally:
            writer.stop()
        self.assertEqual(writer.errors, [])

        survivors = c.running()
        self.assertEqual(sorted(m.id for m in survivors), sorted(["c4"] + [m.id for m in c.all()
                                                                            if m.id not in ("c4", victim.id)]))
        roles = self.roles(c.leader())
        self.assertEqual(sorted(roles), sorted(m.id for m in survivors))
        self.assertEqual(sorted(roles.values()), ["follower", "follower", "leader"])
        # Every acknowledged write is there, read linearizably at every survivor (c4 included).
        for m in survivors:
            _, shards = th.list_shards(m)
            missing = sorted(set(writer.acked) - set(shards))
            self.assertEqual(missing, [], "acknowledged writes missing at %s" % m.id)
        # c4 has applied as far as the leader.
        lv = c.leader().cluster_view()
        th.wait_until(lambda: c4.cluster_view()["applied_index"] >= lv["commit_index"], 20,
                      "c4 applied up to the leader's commit index")

    def test_remove_the_leader_under_write_load(self):
        c = self.make_cluster(n=3)
        old = c.start()
        writer = th.Writer(c, "rl-")
        writer.start()
        try:
            th.wait_until(lambda: len(writer.acked) >= 20, 20, "writes acknowledged before the removal")
            r = old.delete("/v1/members/" + old.id)
            self.assertStatus(r, 200)
            old.in_group = False
            rest = [m for m in c.all() if m.id != old.id]
            new = c.wait_leader(rest, exclude=old.id)
            th.wait_until(lambda: sorted(self.roles(new)) == sorted(m.id for m in rest), 20,
                          "%s gone from /v1/members" % old.id)
            old.kill()
            n = len(writer.acked)
            th.wait_until(lambda: len(writer.acked) >= n + 20, 30, "writes go on after the leader's removal")
        finally:
            writer.stop()
        self.assertEqual(writer.errors, [])
        self.assertEqual(sorted(self.roles(c.leader()).values()), ["follower", "leader"])
        for m in rest:
            missing = sorted(set(writer.acked) - set(th.list_shards(m)[1]))
            self.assertEqual(missing, [], "acknowledged writes missing at %s" % m.id)

    def test_bad_membership_requests(self):
        c = self.make_cluster(n=3)
        leader = c.start()
        rev = leader.cluster_view()["revision"]
        self.assertStatus(leader.post("/v1/members", {"id": "c2", "address": "127.0.0.1:1"}), 409, "conflict")
        self.assertStatus(leader.post("/v1/members", {"id": "bad id", "address": "127.0.0.1:1"}), 400, "bad_request")
        self.assertStatus(leader.post("/v1/members", {"id": "c9", "address": "nowhere"}), 400, "bad_request")
        self.assertStatus(leader.post("/v1/members", {"id": "c9"}), 400, "bad_request")
        self.assertStatus(leader.delete("/v1/members/c9"), 404, "not_found")
        self.assertEqual(sorted(self.roles(leader)), ["c1", "c2", "c3"])
        self.assertEqual(leader.cluster_view()["revision"], rev)


if __name__ == "__main__":
    th.main()
