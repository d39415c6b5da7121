// Fuzzes the peer wire decoders (controller/raft_wire.cc): every body a
// peer POSTs to /raft/messages and /raft/snapshot/done goes through them.
// Whatever the bytes, decoding returns nullopt or messages, never crashes or
// allocates by an input count; and what decodes re-encodes (as version 2,
// checksummed) to a body that decodes to the same messages.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "peers/raft_wire.h"

namespace {

using tenure::consensus::Message;

bool same(const Message& a, const Message& b) {
  return a.type == b.type && a.from == b.from && a.to == b.to && a.term == b.term && a.log_term == b.log_term &&
         a.index == b.index && a.commit == b.commit && a.reject == b.reject && a.reject_hint == b.reject_hint &&
         a.context == b.context && a.entries == b.entries;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  tenure::peers::WireError err;
  if (auto msgs = tenure::peers::decode_messages(bytes, &err)) {
    std::string again = tenure::peers::encode_messages(*msgs);
    auto round = tenure::peers::decode_messages(again);
    if (!round || round->size() != msgs->size()) std::abort();
    for (size_t i = 0; i < msgs->size(); ++i) {
      if (!same((*msgs)[i], (*round)[i])) std::abort();
    }
  }
  std::optional<uint32_t> crc;
  if (auto m = tenure::peers::decode_snapshot_meta(bytes, &crc, &err)) {
    if (!m->snapshot) std::abort();
    std::string again = tenure::peers::encode_snapshot_meta(*m, crc.value_or(0));
    std::optional<uint32_t> crc2;
    auto round = tenure::peers::decode_snapshot_meta(again, &crc2);
    if (!round || !same(*m, *round) || round->snapshot->index != m->snapshot->index ||
        round->snapshot->term != m->snapshot->term || !(round->snapshot->conf == m->snapshot->conf) ||
        crc2 != crc.value_or(0)) {
      std::abort();
    }
  }
  return 0;
}
