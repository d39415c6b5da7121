// The peer wire format (controller/raft_wire.cc): version 2 bodies carry a
// CRC32C; any flipped bit is refused as a checksum failure, version 1
// bodies (no checksum, older members) are still read.
#include <gtest/gtest.h>

#include "common/crc32c.h"
#include "controller/raft_wire.h"

namespace tenure::controller {
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

}  // namespace
}  // namespace tenure::controller
