#include "peers/peer_batch.h"

#include "peers/wire_limits.h"

namespace tenure::peers {

using consensus::Message;

size_t wire_size_bound(const Message& m) {
  size_t bytes = kMessageHeaderBytes + 10;  // the header and the entry count
  for (const auto& e : m.entries) bytes += e.data.size() + kEntryWireOverheadBytes;
  return bytes;
}

std::vector<Message> take_batch(std::deque<Message>& queue, size_t max_bytes) {
  std::vector<Message> batch;
  size_t bytes = 16;  // the batch's version and count
  while (!queue.empty()) {
    size_t n = wire_size_bound(queue.front());
    if (!batch.empty() && bytes + n > max_bytes) break;
    bytes += n;
    batch.push_back(std::move(queue.front()));
    queue.pop_front();
  }
  return batch;
}

}  // namespace tenure::peers
