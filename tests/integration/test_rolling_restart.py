#!/usr/bin/env python3
"""Rolling restart (docs/operations.md "Rolling restart and upgrade"):
every member restarted one by one under write load, followers first, the
leader last after handing leadership over. No acknowledged write is lost,
a follower's restart changes no leader, the leader's at most once, and
every agent keeps its lease and its shards throughout."""

import fleet_harness as fh
import tenure_harness as th


class RollingRestartTest(fh.FleetTestCase):

    def caught_up(self, member, leader):
        target = leader.cluster_view()["commit_index"]
        th.wait_until(lambda: member.cluster_view()["applied_index"] >= target, 30,
                      "%s applied up to %d" % (member.id, target))

    def restart(self, member):
        """SIGTERM (a clean exit 0), then start again on the same data_dir."""
        self.assertEqual(member.terminate(), 0, "%s did not exit cleanly on SIGTERM" % member.id)
        member.start()

    def test_rolling_restart_under_load(self):
        f, _ = self.start_fleet(shards=40, agents=3, lease_ms=3000)
        c = f.cluster
        poller = fh.GrantPoller(f).start()
        writer = th.Writer(c, "roll-")
        writer.start()
        leader = c.wait_leader()
        try:
            th.wait_until(lambda: len(writer.acked) >= 20, 20, "writes acknowledged before the restarts")
            term = leader.cluster_view()["term"]
            for follower in c.followers(leader):
                n = len(writer.acked)
                self.restart(follower)
                self.caught_up(follower, leader)
                th.wait_until(lambda: len(writer.acked) >= n + 10, 30, "writes after %s restarted" % follower.id)
                self.assertEqual(c.wait_leader().id, leader.id, "restarting follower %s moved leadership" % follower.id)
                self.assertEqual(leader.cluster_view()["term"], term,
                                 "restarting follower %s raised the term" % follower.id)

            # The leader last: hand leadership to a caught-up follower first.
            target = c.followers(leader)[0]
            self.caught_up(target, leader)
            self.assertStatus(leader.post("/v1/members/transfer-leadership", {"to": target.id},
                                          headers=c.admin_headers()), 202)
            c.wait_leader_is(target.id)
            self.assertEqual(target.cluster_view()["term"], term + 1, "the handover took more than one election")
            n = len(writer.acked)
            self.restart(leader)
            self.caught_up(leader, target)
            th.wait_until(lambda: len(writer.acked) >= n + 10, 30, "writes after the old leader restarted")
            self.assertEqual(c.wait_leader().id, target.id, "the old leader's restart moved leadership again")
            self.assertEqual(target.cluster_view()["term"], term + 1, "the old leader's restart raised the term")
        finally:
            writer.stop()
            poller.catch_up().stop()

        self.assertEqual(writer.errors, [])
        for m in c.all():
            missing = sorted(set(writer.acked) - set(th.list_shards(m)[1]))
            self.assertEqual(missing, [], "acknowledged writes missing at %s" % m.id)
        # Agents: every answer in the whole run had a valid lease, and no
        # shard was ever held twice or went back an epoch.
        for a in f.all():
            answers = [s for s in poller.samples[a.id] if s.grants is not None]
            self.assertGreater(len(answers), 10, "agent %s was barely polled" % a.id)
            lapsed = [s for s in answers if not s.grants.lease_valid]
            self.assertEqual(lapsed[:3], [], "agent %s lost its lease %d times" % (a.id, len(lapsed)))
        self.assertNoViolations(poller.violations(), "ownership during the rolling restart")
        fh.verbose("rolling restart: %d writes acknowledged, %d failed (503 or refused while a member restarted)"
                   % (len(writer.acked), writer.failed))


if __name__ == "__main__":
    th.main()
