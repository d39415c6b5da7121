// The peer transport's size bounds (wire_limits.h, issue 8): a batch never
// exceeds max_batch_bytes unless one message alone does, the bound used for
// packing is above the real encoding, and the largest message the core can
// produce fits what the peer routes accept.
#include <gtest/gtest.h>

#include <deque>

#include "peers/peer_batch.h"
#include "peers/raft_wire.h"
#include "peers/wire_limits.h"

namespace tenure::peers {
namespace {

using consensus::Entry;
using consensus::LogIndex;
using consensus::NodeId;
using consensus::Message;
using consensus::MessageType;

Message append(size_t entries, size_t entry_bytes, uint64_t first_index = uint64_t{1} << 40) {
  Message m;
  m.type = MessageType::kAppend;
  m.from = NodeId(std::string(64, 'a'));
  m.to = NodeId(std::string(64, 'b'));
  m.term = consensus::Term(~0ull);
  m.index = LogIndex(first_index - 1);
  m.log_term = consensus::Term(~0ull);
  m.commit = LogIndex(~0ull);
  m.context = ~0ull;
  for (size_t i = 0; i < entries; ++i) {
    Entry e;
    e.term = consensus::Term(~0ull);
    e.index = LogIndex(first_index + i);
    e.data = std::string(entry_bytes, 'x');
    m.entries.push_back(std::move(e));
  }
  return m;
}

TEST(PeerBatch, SizeBoundIsAboveTheEncoding) {
  for (auto [n, bytes] : {std::pair<size_t, size_t>{0, 0}, {1, 0}, {1000, 1}, {3, 300000}}) {
    Message m = append(n, bytes);
    EXPECT_GE(wire_size_bound(m) + 16, encode_messages({m}).size()) << n << "x" << bytes;
  }
}

TEST(PeerBatch, BatchesStayUnderTheBoundAndKeepOrder) {
  std::deque<Message> q;
  for (int i = 0; i < 40; ++i) q.push_back(append(1, 100000, 100 + i));
  q.push_back(append(0, 0));  // a heartbeat-sized message
  size_t sent = 0;
  uint64_t next = 100;
  while (!q.empty()) {
    auto batch = take_batch(q, kMaxBatchBytes);
    ASSERT_FALSE(batch.empty());
    EXPECT_LE(encode_messages(batch).size(), kMaxBatchBytes);
    for (const auto& m : batch) {
      if (!m.entries.empty()) {
        EXPECT_EQ(m.entries[0].index.value(), next++);
      }
    }
    sent += batch.size();
  }
  EXPECT_EQ(sent, 41u);
}

TEST(PeerBatch, TheLargestAppendGoesAloneAndFitsThePeerLimit) {
  // One entry at the core's max entry size, then a full message of small ones:
  // each alone is the largest the core may send (max_bytes_per_msg counts
  // kEntryWireOverheadBytes per entry).
  std::deque<Message> q;
  q.push_back(append(1, kMaxEntryBytes));
  q.push_back(append(kMaxAppendBytes / (1 + kEntryWireOverheadBytes), 1));
  while (!q.empty()) {
    auto batch = take_batch(q, kMaxBatchBytes);
    ASSERT_EQ(batch.size(), 1u);
    size_t body = encode_messages(batch).size();
    EXPECT_LE(body, kMaxMessageBytes + 16);
    EXPECT_LE(body * 2, kPeerMaxBodyBytes);
  }
}

}  // namespace
}  // namespace tenure::peers
