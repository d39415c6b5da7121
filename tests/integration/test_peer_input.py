#!/usr/bin/env python3
"""Peer input is checked, never trusted (issue 8 §2).

Hand-made Raft wire bodies, posted to a follower's peer routes: garbage, a
batch whose CRC32C does not match, an append with a term of 2^64-1 (it would
wrap), and a snapshot whose data does not decode. Each is refused and
counted in tenure_raft_messages_dropped_total{reason}; the follower keeps its
term, stays up, keeps committing with the group, and restarts cleanly (the
bad snapshot was never made durable).
"""

import os
import sys

import tenure_harness as th

APPEND, SNAPSHOT = 0, 8


# The wire encoders live once, in the fuzz seed generator.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "fuzz"))
from make_seeds import crc32c, s, seal, varint  # noqa: E402
import make_seeds  # noqa: E402


def header(mtype, frm, to, term, log_term=0, index=0, commit=0):
    return make_seeds.header(mtype, frm, to, term, log_term=log_term, index=index, commit=commit)


def batch(*messages):
    """A wire-v2 batch of entry-less messages."""
    return make_seeds.batch([(m, []) for m in messages])


class PeerInputTest(th.ClusterTestCase):

    def dropped(self, member, reason):
        return member.metric('tenure_raft_messages_dropped_total{reason="%s"}' % reason, 0)

    def test_hostile_peer_bodies_are_dropped_and_counted(self):
        c = self.make_cluster(n=3)
        leader = c.start()
        th.create_shards(leader, ["a-1"])
        f = c.followers(leader)[0]
        term = f.cluster_view()["term"]
        hdr = {"Tenure-From": leader.id, "Content-Type": "application/octet-stream"}

        r = f.post("/raft/messages", b"\x09garbage", headers=hdr)
        self.assertStatus(r, 400)
        th.wait_until(lambda: self.dropped(f, "undecodable") >= 1, 10, "undecodable counted")

        good = batch(header(APPEND, leader.id, f.id, term))
        bad = bytearray(good)
        bad[5] ^= 0x10
        self.assertStatus(f.post("/raft/messages", bytes(bad), headers=hdr), 400)
        th.wait_until(lambda: self.dropped(f, "checksum") >= 1, 10, "checksum counted")

        wrap = batch(header(APPEND, leader.id, f.id, 2**64 - 1, index=2**64 - 1))
        self.assertStatus(f.post("/raft/messages", wrap, headers=hdr), 204)
        th.wait_until(lambda: self.dropped(f, "out_of_range") >= 1, 10, "out_of_range counted")
        self.assertEqual(f.cluster_view()["term"], term, "a term of 2^64-1 was refused, not adopted")

        # A read-index request from an id no member knows (a vote request from
        # one goes to the core: a candidate added after our configuration).
        stranger = batch(header(APPEND + 10, "zz9", f.id, term))
        self.assertStatus(f.post("/raft/messages", stranger, headers=hdr), 204)
        th.wait_until(lambda: self.dropped(f, "unknown_sender") >= 1, 10, "unknown_sender counted")

        # A snapshot whose data is not a state machine: decoded before it can be made durable.
        data = b"not a snapshot at all"
        chunk = f.post("/raft/snapshot/chunk?transfer=x1&offset=0&crc=%d" % crc32c(data), data, headers=hdr)
        self.assertStatus(chunk, 204)
        meta = (bytes([2]) + header(SNAPSHOT, leader.id, f.id, term) + varint(10**6) + varint(term)
                + varint(3) + b"".join(s(i) for i in sorted(c.members)) + varint(0)
                + varint(crc32c(data)))
        done = f.post("/raft/snapshot/done?transfer=x1&total=%d" % len(data), seal(meta), headers=hdr)
        self.assertStatus(done, 204)
        th.wait_until(lambda: self.dropped(f, "bad_snapshot_data") >= 1, 10, "bad_snapshot_data counted")

        # A well-formed append (checksummed, right term, right place, its
        # commit index past it) whose entry is no command this build can
        # apply: refused before the core stores it. Accepted, it would be
        # committed and then stop the member at apply, start after start.
        view = f.cluster_view()
        last = view["commit_index"]
        forged = make_seeds.batch([(header(APPEND, leader.id, f.id, term, log_term=term, index=last, commit=last + 1),
                                    [(term, last + 1, 0, "\x07not a command of any build")])])
        self.assertStatus(f.post("/raft/messages", forged, headers=hdr), 400)
        th.wait_until(lambda: self.dropped(f, "bad_entry_data") >= 1, 10, "bad_entry_data counted")

        # The follower is alive, keeps its term and log, and commits with the group.
        th.create_shards(c.leader(), ["a-2"])
        view = c.leader().cluster_view()
        th.wait_until(lambda: f.cluster_view()["applied_index"] >= view["commit_index"], 20, "follower applies")
        self.assertEqual(f.cluster_view()["term"], term)
        # Nothing bad was made durable: it restarts and catches up.
        f.kill()
        f.start()
        th.create_shards(c.leader(), ["a-3"])
        view = c.leader().cluster_view()
        th.wait_until(lambda: f.cluster_view()["applied_index"] >= view["commit_index"], 30, "restarted follower applies")
        _, shards = th.list_shards(f)
        self.assertEqual(sorted(shards), ["a-1", "a-2", "a-3"])


if __name__ == "__main__":
    th.main()
