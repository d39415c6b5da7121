#!/usr/bin/env python3
"""Writes the seed corpora of the raft_wire, snapshot and raft_core fuzz
targets (fuzz/corpus/<target>/): a few small, valid inputs by hand, so the
fuzzer starts from bodies that get past the first checks. Rerun after a
format change: python3 fuzz/make_seeds.py"""

import os
import random
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def s(text):
    b = text if isinstance(text, bytes) else text.encode()
    return varint(len(b)) + b


def header(mtype, frm="c1", to="c2", term=3, log_term=2, index=10, commit=9, reject=0, hint=0, ctx=0):
    return (bytes([mtype]) + s(frm) + s(to) + varint(term) + varint(log_term) + varint(index) + varint(commit)
            + bytes([reject]) + varint(hint) + varint(ctx))


def seal(body):
    return body + struct.pack("<I", crc32c(body))


def batch(msgs, version=2):
    body = bytes([version]) + varint(len(msgs))
    for hdr, entries in msgs:
        body += hdr + varint(len(entries))
        for term, index, etype, data in entries:
            body += varint(term) + varint(index) + bytes([etype]) + s(data)
    return seal(body) if version == 2 else body


def snapshot_meta(index=100, term=3, voters=("c1", "c2", "c3"), learners=(), data_crc=0):
    body = bytes([2]) + header(8) + varint(index) + varint(term)
    body += varint(len(voters)) + b"".join(s(v) for v in voters)
    body += varint(len(learners)) + b"".join(s(v) for v in learners)
    return seal(body + varint(data_crc))


def state_snapshot(shards=(), workers=(), events=(), started=()):
    out = bytes([1]) + varint(7)  # version, revision
    out += varint(len(shards))
    for sid, worker, epoch, state in shards:
        out += s(sid) + s(worker) + varint(epoch) + bytes([state]) + s("") + varint(0) + bytes([0])
        out += varint(1) + varint(5) + varint(epoch) + s("") + s(worker) + bytes([0]) + varint(1000)
    out += varint(1) + s("gone") + varint(4)  # a deleted shard's epoch
    out += varint(len(workers))
    for wid, state in workers:
        out += s(wid) + s("10.0.0.1:7000") + s("z1") + struct.pack("<d", 1.0) + bytes([state]) + varint(5) + bytes([0])
    out += varint(0)  # events compacted
    out += varint(len(events))
    for rev, etype, shard, worker in events:
        out += varint(rev) + bytes([etype]) + s(shard) + s(worker) + varint(1) + s("") + varint(1000)
    out += varint(1) + s("req-1") + bytes([0]) + s("") + varint(7) + varint(1) + s("s-1") + varint(0) + varint(1)
    out += varint(len(started)) + b"".join(s(m) for m in started)
    return out


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    write("raft_wire", "append", batch([(header(0), [(3, 11, 0, b"cmd"), (3, 12, 1, b"\x00" + b"\x02\x00\x00\x00c4" + b"\x00" * 4)])]))
    write("raft_wire", "responses", batch([(header(1, reject=1, hint=7), []), (header(7, ctx=4), []),
                                           (header(3), []), (header(11, ctx=9), [])]))
    write("raft_wire", "votes_v1", batch([(header(4), []), (header(2), [])], version=1))
    write("raft_wire", "empty_batch", batch([]))
    write("raft_wire", "snapshot_meta", snapshot_meta(learners=("c4",), data_crc=crc32c(b"data")))
    write("snapshot", "empty", state_snapshot())
    write("snapshot", "small", state_snapshot(shards=[("s-1", "w1", 3, 1), ("s-2", "", 1, 0)],
                                              workers=[("w1", 0), ("w2", 2)],
                                              events=[(5, 0, "s-1", "w1"), (6, 3, "", "w2")], started=["c1", "c2"]))
    rng = random.Random(8)
    for k in range(4):
        write("raft_core", "steps-%d" % k, bytes(rng.randrange(256) for _ in range(64 + 64 * k)))


if __name__ == "__main__":
    main()
