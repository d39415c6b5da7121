// The peer wire format (controller/raft_wire.cc): every message type round
// trips with every field; version 2 bodies carry a CRC32C and any flipped
// bit is refused as a checksum failure; version 1 bodies (no checksum, older
// members) are still read; truncated, padded, oversized and garbage bodies
// are refused as kMalformed without allocating by a count they claim.
#include <random>
#include <set>

#include <gtest/gtest.h>

#include "common/crc32c.h"
#include "peers/raft_wire.h"
#include "peers/wire_limits.h"
#include "common/codec.h"

namespace tenure::peers {
namespace {

using namespace tenure::consensus;

std::vector<Message> batch() {
  Message a;
  a.type = MessageType::kAppend;
  a.from = NodeId("c1");
  a.to = NodeId("c2");
  a.term = Term(7);
  a.log_term = Term(6);
  a.index = LogIndex(41);
  a.commit = LogIndex(40);
  a.entries = {Entry{Term(7), LogIndex(42), EntryType::kNormal, std::string("cmd\0bytes", 9)},
               Entry{Term(7), LogIndex(43), EntryType::kConfChange, "cc"}};
  Message r;
  r.type = MessageType::kAppendResponse;
  r.from = NodeId("c1");
  r.to = NodeId("c3");
  r.term = Term(7);
  r.reject = true;
  r.index = LogIndex(9);
  r.reject_hint = LogIndex(5);
  r.log_term = Term(3);
  r.context = 99;
  return {a, r};
}

TEST(RaftWire, BatchRoundTrips) {
  auto msgs = batch();
  auto back = decode_messages(encode_messages(msgs));
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), 2u);
  EXPECT_EQ((*back)[0].entries, msgs[0].entries);
  EXPECT_EQ((*back)[0].index, LogIndex(41));
  EXPECT_EQ((*back)[1].reject_hint, LogIndex(5));
  EXPECT_EQ((*back)[1].context, 99u);
}

TEST(RaftWire, EveryFlippedBitIsRefused) {
  std::string body = encode_messages(batch());
  ASSERT_EQ(static_cast<uint8_t>(body[0]), kWireVersion);
  for (size_t i = 0; i < body.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = body;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      WireError err = WireError::kMalformed;
      ASSERT_FALSE(decode_messages(bad, &err)) << "byte " << i << " bit " << bit;
      // Past the version byte a flip is always caught by the checksum.
      if (i > 0) {
        EXPECT_EQ(err, WireError::kChecksum) << "byte " << i << " bit " << bit;
      }
    }
  }
}

TEST(RaftWire, Version1BodiesWithoutChecksumAreStillRead) {
  std::string body = encode_messages(batch());
  std::string v1 = body.substr(0, body.size() - 4);
  v1[0] = static_cast<char>(kWireVersionNoChecksum);
  auto back = decode_messages(v1);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->size(), 2u);
}

TEST(RaftWire, TruncatedOrPaddedBodiesAreMalformedOrChecksumFailures) {
  std::string body = encode_messages(batch());
  for (size_t n = 0; n < body.size(); ++n) EXPECT_FALSE(decode_messages(body.substr(0, n))) << n;
  EXPECT_FALSE(decode_messages(body + "x"));
  WireError err = WireError::kChecksum;
  EXPECT_FALSE(decode_messages("", &err));
  EXPECT_EQ(err, WireError::kMalformed);
  EXPECT_FALSE(decode_messages(std::string(1, '\x09'), &err));
  EXPECT_EQ(err, WireError::kMalformed);
}

TEST(RaftWire, SnapshotMetaCarriesTheDataChecksum) {
  Message m;
  m.type = MessageType::kSnapshot;
  m.from = NodeId("c1");
  m.to = NodeId("c2");
  m.term = Term(4);
  Snapshot s;
  s.index = LogIndex(100);
  s.term = Term(3);
  s.conf.voters = {NodeId("c1"), NodeId("c2")};
  s.conf.learners = {NodeId("c9")};
  m.snapshot = s;
  std::string body = encode_snapshot_meta(m, crc32c("data"));
  std::optional<uint32_t> crc;
  auto back = decode_snapshot_meta(body, &crc);
  ASSERT_TRUE(back);
  EXPECT_EQ(crc, crc32c("data"));
  EXPECT_EQ(back->snapshot->index, LogIndex(100));
  EXPECT_EQ(back->snapshot->conf, s.conf);
  std::string bad = body;
  bad[body.size() / 2] ^= 1;
  WireError err = WireError::kMalformed;
  EXPECT_FALSE(decode_snapshot_meta(bad, &crc, &err));
  EXPECT_EQ(err, WireError::kChecksum);
  // A snapshot message is never accepted inside a batch (its data would be missing).
  EXPECT_FALSE(decode_messages(encode_messages({m})));
}

/// Every field of `a` and `b` (Message has no operator==: the core never
/// compares messages).
void expect_same(const Message& a, const Message& b) {
  EXPECT_EQ(a.type, b.type);
  EXPECT_EQ(a.from, b.from);
  EXPECT_EQ(a.to, b.to);
  EXPECT_EQ(a.term, b.term);
  EXPECT_EQ(a.log_term, b.log_term);
  EXPECT_EQ(a.index, b.index);
  EXPECT_EQ(a.entries, b.entries);
  EXPECT_EQ(a.commit, b.commit);
  EXPECT_EQ(a.reject, b.reject);
  EXPECT_EQ(a.reject_hint, b.reject_hint);
  EXPECT_EQ(a.context, b.context);
  EXPECT_EQ(a.snapshot.has_value(), b.snapshot.has_value());
}

/// One message of `type` with every header field set to a distinct value
/// (the largest varints for the odd types, so no field is cut short).
Message full_message(MessageType type, bool max_values) {
  uint64_t big = max_values ? UINT64_MAX : 0;
  Message m;
  m.type = type;
  m.from = NodeId("member-a");
  m.to = NodeId("member-b");
  m.term = Term(big ? big : 11);
  m.log_term = Term(big ? big - 1 : 10);
  m.index = LogIndex(big ? big - 2 : 100);
  m.commit = LogIndex(big ? big - 3 : 99);
  m.reject = max_values;
  m.reject_hint = LogIndex(big ? big - 4 : 7);
  m.context = big ? big - 5 : 12345;
  return m;
}

TEST(RaftWire, EveryMessageTypeRoundTripsWithEveryField) {
  std::vector<Message> msgs;
  for (uint8_t t = 0; t <= static_cast<uint8_t>(MessageType::kReadIndexResponse); ++t) {
    if (static_cast<MessageType>(t) == MessageType::kSnapshot) continue;  // travels as meta + chunks (below)
    for (bool max_values : {false, true}) msgs.push_back(full_message(static_cast<MessageType>(t), max_values));
  }
  msgs.front().entries = {Entry{Term(1), LogIndex(101), EntryType::kNormal, ""},
                          Entry{Term(UINT64_MAX), LogIndex(UINT64_MAX), EntryType::kConfChange, std::string(300, '\xff')}};
  WireError err = WireError::kChecksum;
  auto back = decode_messages(encode_messages(msgs), &err);
  ASSERT_TRUE(back);
  ASSERT_EQ(back->size(), msgs.size());
  for (size_t i = 0; i < msgs.size(); ++i) {
    SCOPED_TRACE(to_string(msgs[i].type));
    expect_same((*back)[i], msgs[i]);
  }
  // An empty batch is a valid body too (nothing to deliver).
  auto none = decode_messages(encode_messages({}));
  ASSERT_TRUE(none);
  EXPECT_TRUE(none->empty());
}

TEST(RaftWire, SnapshotMetaRoundTripsAndVersion1MetaHasNoChecksum) {
  Message m = full_message(MessageType::kSnapshot, true);
  Snapshot s;
  s.index = LogIndex(UINT64_MAX);
  s.term = Term(UINT64_MAX);
  s.conf.voters = {NodeId("a"), NodeId("b"), NodeId("c")};
  m.snapshot = s;
  std::optional<uint32_t> crc;
  auto back = decode_snapshot_meta(encode_snapshot_meta(m, 0xffffffffu), &crc);
  ASSERT_TRUE(back);
  expect_same(*back, m);
  EXPECT_EQ(back->snapshot->index, s.index);
  EXPECT_EQ(back->snapshot->term, s.term);
  EXPECT_EQ(back->snapshot->conf, s.conf);
  EXPECT_EQ(crc, 0xffffffffu);
  // Version 1: the same fields without the data CRC and the body's checksum.
  tenure::Writer w;
  w.u8(kWireVersionNoChecksum);
  w.u8(static_cast<uint8_t>(MessageType::kSnapshot));
  for (const char* id : {"c1", "c2"}) w.str(id);
  for (int i = 0; i < 4; ++i) w.varint(5);
  w.u8(0);
  w.varint(0);
  w.varint(0);
  w.varint(20);  // snapshot index
  w.varint(4);   // snapshot term
  w.varint(1);
  w.str("c1");
  w.varint(0);
  auto v1 = decode_snapshot_meta(w.take(), &crc);
  ASSERT_TRUE(v1);
  EXPECT_EQ(crc, std::nullopt);
  EXPECT_EQ(v1->snapshot->index, LogIndex(20));
  EXPECT_EQ(v1->snapshot->conf.voters, (std::set<NodeId>{NodeId("c1")}));
}

/// `payload` (which starts with the version byte) sealed as version 2 does:
/// garbage with a valid checksum, so the decoder's own checks are reached.
std::string sealed(std::string payload) {
  uint32_t crc = crc32c(payload);
  for (int i = 0; i < 4; ++i) payload.push_back(static_cast<char>(crc >> (8 * i)));
  return payload;
}

void expect_malformed(const std::string& body, const char* what) {
  WireError err = WireError::kChecksum;
  EXPECT_FALSE(decode_messages(body, &err)) << what;
  EXPECT_EQ(err, WireError::kMalformed) << what;
}

TEST(RaftWire, OversizedCountsAndLengthsAreMalformed) {
  auto varint = [](uint64_t v) {
    tenure::Writer w;
    w.varint(v);
    return w.take();
  };
  const std::string v2(1, static_cast<char>(kWireVersion));
  // A batch claiming 2^63 messages, or one message claiming 2^63 entries:
  // refused by the bytes left, before any reserve() by the claimed count.
  expect_malformed(sealed(v2 + varint(uint64_t{1} << 63)), "message count");
  std::string header = encode_messages({full_message(MessageType::kAppend, false)});
  header = header.substr(0, header.size() - 4 - 1);  // drop the checksum and the entry count (0)
  expect_malformed(sealed(header + varint(uint64_t{1} << 63)), "entry count");
  // A member id claiming more bytes than the body holds.
  expect_malformed(sealed(v2 + varint(1) + std::string(1, 0) + varint(UINT64_MAX)), "id length");
  // A varint longer than 64 bits.
  expect_malformed(sealed(v2 + std::string(11, '\x80')), "varint");
}

TEST(RaftWire, UnknownTypesVersionsAndTrailingBytesAreMalformed) {
  std::string good = encode_messages({full_message(MessageType::kAppend, false)});
  std::string payload = good.substr(0, good.size() - 4);
  // Message type past the last one (byte 2: after the version and the count).
  std::string bad_type = payload;
  bad_type[2] = static_cast<char>(static_cast<uint8_t>(MessageType::kReadIndexResponse) + 1);
  expect_malformed(sealed(bad_type), "message type");
  // Entry type past kConfChange.
  Message a = full_message(MessageType::kAppend, false);
  a.entries = {Entry{Term(1), LogIndex(1), EntryType::kNormal, "x"}};
  std::string with_entry = encode_messages({a});
  std::string p = with_entry.substr(0, with_entry.size() - 4);
  size_t type_at = p.size() - 1 /*data*/ - 1 /*length*/ - 1 /*type*/;
  ASSERT_EQ(p[type_at], static_cast<char>(EntryType::kNormal));
  p[type_at] = static_cast<char>(static_cast<uint8_t>(EntryType::kConfChange) + 1);
  expect_malformed(sealed(p), "entry type");
  // A snapshot message inside a batch.
  std::string snap = payload;
  snap[2] = static_cast<char>(MessageType::kSnapshot);
  expect_malformed(sealed(snap), "snapshot in a batch");
  // Bytes after the last message, under a valid checksum.
  expect_malformed(sealed(payload + "x"), "trailing byte");
  // Versions that were never written.
  for (uint8_t version : {0, 3, 255}) {
    std::string v = good;
    v[0] = static_cast<char>(version);
    expect_malformed(v, "version");
  }
  // Snapshot meta: a batch is not meta, nor meta with a CRC above 32 bits.
  std::optional<uint32_t> crc;
  WireError err = WireError::kChecksum;
  EXPECT_FALSE(decode_snapshot_meta(good, &crc, &err));
  EXPECT_EQ(err, WireError::kMalformed);
  Message m = full_message(MessageType::kSnapshot, false);
  m.snapshot = Snapshot{};
  std::string meta = encode_snapshot_meta(m, 1);
  std::string meta_payload = meta.substr(0, meta.size() - 4 - 1);  // drop checksum and the CRC varint (1)
  tenure::Writer big;
  big.varint(uint64_t{1} << 32);
  err = WireError::kChecksum;
  EXPECT_FALSE(decode_snapshot_meta(sealed(meta_payload + big.take()), &crc, &err));
  EXPECT_EQ(err, WireError::kMalformed);
}

TEST(RaftWire, GarbageNeverDecodesIntoACrashOrAHugeBatch) {
  // Random bodies, sealed so that the checksum passes: each is refused as
  // malformed or decodes into at most as many messages as it has bytes.
  std::mt19937_64 rng(20261205);
  for (int i = 0; i < 20000; ++i) {
    std::string payload(1 + rng() % 64, '\0');
    for (auto& c : payload) c = static_cast<char>(rng());
    payload[0] = static_cast<char>(kWireVersion);
    std::string body = sealed(payload);
    WireError err = WireError::kChecksum;
    auto out = decode_messages(body, &err);
    if (out) {
      EXPECT_LE(out->size(), body.size());
    } else {
      EXPECT_EQ(err, WireError::kMalformed) << i;
    }
    std::optional<uint32_t> crc;
    err = WireError::kChecksum;
    if (!decode_snapshot_meta(body, &crc, &err)) {
      EXPECT_EQ(err, WireError::kMalformed) << i;
    }
  }
}

TEST(RaftWire, TheLargestAppendFitsTheDocumentedBounds) {
  // wire_limits.h: a message's header is at most kMessageHeaderBytes and an
  // entry's envelope at most kEntryWireOverheadBytes, so the largest append
  // (one entry of kMaxEntryBytes, ids of 64 bytes, every varint at its
  // widest) stays within kMaxMessageBytes and the peer routes' body limit.
  Message m = full_message(MessageType::kAppend, true);
  m.from = NodeId(std::string(64, 'f'));
  m.to = NodeId(std::string(64, 't'));
  m.entries = {Entry{Term(UINT64_MAX), LogIndex(UINT64_MAX), EntryType::kNormal, std::string(kMaxEntryBytes, 'x')}};
  std::string body = encode_messages({m});
  const size_t batch_framing = 1 /*version*/ + 10 /*count*/ + 4 /*checksum*/;
  EXPECT_LE(body.size(), kMaxMessageBytes + batch_framing);
  EXPECT_LE(body.size(), kPeerMaxBodyBytes);
  auto back = decode_messages(body);
  ASSERT_TRUE(back);
  expect_same(back->front(), m);
}

}  // namespace
}  // namespace tenure::peers
