#!/usr/bin/env python3
"""Writes the seed corpora of the raft_wire, snapshot, raft_core, config,
http_router and route_bodies fuzz targets (fuzz/corpus/<target>/): a few small, valid inputs by hand, so
the fuzzer starts from bodies that get past the first checks. Rerun after a
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


CONFIG_SEEDS = {
    # Every key of both schemas, in the forms the loaders accept.
    "controller_full": """node_id: c1
data_dir: /var/lib/tenure/c1
listen: 127.0.0.1:7001
peers:
  - {id: c1, address: 127.0.0.1:7001}
  - {id: c2, address: "[::1]:7002"}
raft: {heartbeat_interval_ms: 100, election_timeout_ms: 1000, snapshot_threshold_entries: 10000}
worker_lease_ms: 3000
watch_events_kept: 200000
auth: {admin_token: a-1, agent_token: b-2, peer_token: c-3, read_token_file: read.token}
tls: {cert_file: c.crt, key_file: c.key, ca_file: ca.crt}
placement: {max_concurrent_moves: 64, join_delay_ms: 0}
limits: {max_watch_streams: 4096, max_connections: 10000}
""",
    "agent_full": """worker_id: w1
listen: 127.0.0.1:8101
advertise: localhost:8101
controllers: [127.0.0.1:7001, "[::1]:7002"]
data_dir: /var/lib/tenure/w1
zone: z1
capacity: 2.5
heartbeat_interval_ms: 500
auth: {agent_token: t-1, client_token_file: client.token}
tls:
  ca_file: ca.crt
""",
    "controller_minimal": "node_id: c1\ndata_dir: d\nlisten: 127.0.0.1:7001\n",
    "two_documents": "node_id: c1\n---\nworker_id: w1\n",
    "anchors_tags": "node_id: &n !!str c1\ndata_dir: *n\nlisten: {? a : b}\nraft: [1, {x: y}]\n",
}


def request(method, target, body=b"", headers=()):
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: 127.0.0.1"] + list(headers)
    if body:
        lines += ["Content-Type: application/json", "Content-Length: %d" % len(body)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def http_router_seeds():
    """Raw requests (some pipelined) for both routers."""
    return {
        "healthz": request("GET", "/healthz"),
        "create_then_get": request("POST", "/v1/shards", b'{"ids": ["a-1", "a-2"]}')
        + request("GET", "/v1/shards/a-1/history"),
        "lists": request("GET", "/v1/shards?limit=2&consistency=stale") + request("GET", "/v1/workers")
        + request("GET", "/v1/rebalance?limit=1"),
        "register_move": request("POST", "/v1/workers/w1/register", b'{"address": "127.0.0.1:8101"}')
        + request("POST", "/v1/shards/a-1/move", b'{"to": "w1"}') + request("POST", "/v1/rebalance?dry_run=true"),
        "watch": request("GET", "/v1/watch?after=0"),
        "agent_data": request("PUT", "/v1/data/s-1/k%20ey", b"value", ["Tenure-Epoch: 3"])
        + request("GET", "/v1/data/s-1/k%20ey") + request("POST", "/v1/fence", b'{"shard": "s-1", "epoch": 3}'),
        "chunked_close": b"POST /v1/members HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Connection: close\r\n\r\n5\r\n{\"id\"\r\n0\r\n\r\n",
        "head_http10": b"HEAD /v1/cluster HTTP/1.0\r\n\r\n",
        "absolute_form": request("GET", "http://127.0.0.1:7001/v1/members", headers=["Expect: 100-continue"]),
        "metrics_readyz": request("GET", "/metrics") + request("GET", "/readyz") + request("GET", "/ui/console.js"),
        "raft": request("POST", "/raft/messages", batch([(header(4, frm="c2", to="c1"), [])]), ["Tenure-From: c2"]),
        "workers": request("POST", "/v1/workers/w1/drain") + request("GET", "/v1/workers/w1")
        + request("DELETE", "/v1/workers/w1") + request("DELETE", "/v1/shards/a-2"),
    }


def route_bodies_seeds():
    """The first byte is the index of a route in route_bodies_fuzz.cc's kRoutes."""
    return {
        "create_ids": b"\x00" + b'{"ids": ["x-1", "x-2"]}',
        "create_count": b"\x00" + b'{"count": 3, "prefix": "p-"}',
        "move": b"\x01" + b'{"to": "w2"}',
        "drain": b"\x03",
        "register": b"\x05" + b'{"address": "127.0.0.1:9000", "zone": "z2", "capacity": 2.5}',
        "heartbeat": b"\x07" + b'{"revision": 5}',
        "release": b"\x08" + b'{"shards": [{"shard": "s-1", "epoch": 2}]}',
        "add_member": b"\x0a" + b'{"id": "c2", "address": "127.0.0.1:7002"}',
        "transfer": b"\x0b" + b'{"to": "c2"}',
        "raft_messages": b"\x0c" + batch([(header(0, frm="c2", to="c1"), [(3, 11, 0, b"cmd")])]),
        "snapshot_chunk": b"\x0d" + b"snapshot bytes",
        "snapshot_done": b"\x0e" + snapshot_meta(),
        "fence": b"\x0f" + b'{"shard": "s-1", "epoch": 3}',
        "data": b"\x10" + b"a value",
    }


def main():
    for name, data in http_router_seeds().items():
        write("http_router", name, data)
    for name, data in route_bodies_seeds().items():
        write("route_bodies", name, data)
    for name, text in CONFIG_SEEDS.items():
        write("config", name, text.encode())
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
