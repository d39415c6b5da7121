#include "peers/raft_wire.h"

#include <algorithm>

#include "common/crc32c.h"
#include "common/codec.h"

namespace tenure::peers {

using consensus::Entry;
using consensus::EntryType;
using consensus::LogIndex;
using consensus::Message;
using consensus::MessageType;
using consensus::NodeId;
using consensus::Term;
using tenure::Reader;
using tenure::Writer;

namespace {

constexpr uint8_t kMaxMessageType = static_cast<uint8_t>(MessageType::kReadIndexResponse);

void put_header(Writer& w, const Message& m) {
  w.u8(static_cast<uint8_t>(m.type));
  w.str(m.from.str());
  w.str(m.to.str());
  w.varint(m.term.value());
  w.varint(m.log_term.value());
  w.varint(m.index.value());
  w.varint(m.commit.value());
  w.u8(m.reject ? 1 : 0);
  w.varint(m.reject_hint.value());
  w.varint(m.context);
}

bool get_header(Reader& r, Message& m) {
  uint8_t type = r.u8();
  if (type > kMaxMessageType) return false;
  m.type = static_cast<MessageType>(type);
  m.from = NodeId(r.str());
  m.to = NodeId(r.str());
  m.term = Term(r.varint());
  m.log_term = Term(r.varint());
  m.index = LogIndex(r.varint());
  m.commit = LogIndex(r.varint());
  m.reject = r.u8() != 0;
  m.reject_hint = LogIndex(r.varint());
  m.context = r.varint();
  return !r.failed();
}

void put_conf(Writer& w, const consensus::ConfState& c) {
  w.varint(c.voters.size());
  for (const auto& v : c.voters) w.str(v.str());
  w.varint(c.learners.size());
  for (const auto& l : c.learners) w.str(l.str());
}

consensus::ConfState get_conf(Reader& r) {
  consensus::ConfState c;
  for (uint64_t n = r.varint(); n > 0 && !r.failed(); --n) c.voters.insert(NodeId(r.str()));
  for (uint64_t n = r.varint(); n > 0 && !r.failed(); --n) c.learners.insert(NodeId(r.str()));
  return c;
}

void seal(Writer& w) {
  uint32_t crc = crc32c(w.buffer());
  for (int i = 0; i < 4; ++i) w.u8(static_cast<uint8_t>(crc >> (8 * i)));
}

// The payload of a body after its checksum, if any, is verified.
std::optional<std::string_view> unseal(std::string_view body, WireError* error) {
  auto fail = [&](WireError e) {
    if (error) *error = e;
    return std::optional<std::string_view>();
  };
  if (body.empty()) return fail(WireError::kMalformed);
  uint8_t version = static_cast<uint8_t>(body[0]);
  if (version == kWireVersionNoChecksum) return body;
  if (version != kWireVersion || body.size() < 5) return fail(WireError::kMalformed);
  std::string_view payload = body.substr(0, body.size() - 4);
  uint32_t stored = 0;
  for (int i = 0; i < 4; ++i) stored |= uint32_t(static_cast<uint8_t>(body[body.size() - 4 + i])) << (8 * i);
  if (crc32c(payload) != stored) return fail(WireError::kChecksum);
  return payload;
}

}  // namespace

std::string encode_messages(const std::vector<Message>& msgs) {
  Writer w;
  w.u8(kWireVersion);
  w.varint(msgs.size());
  for (const auto& m : msgs) {
    put_header(w, m);
    w.varint(m.entries.size());
    for (const auto& e : m.entries) {
      w.varint(e.term.value());
      w.varint(e.index.value());
      w.u8(static_cast<uint8_t>(e.type));
      w.str(e.data);
    }
  }
  seal(w);
  return w.take();
}

std::optional<std::vector<Message>> decode_messages(std::string_view wire, WireError* error) {
  auto sealed = unseal(wire, error);
  if (!sealed) return std::nullopt;
  if (error) *error = WireError::kMalformed;  // for every early return below
  std::string_view body = *sealed;
  Reader r(body);
  r.u8();  // the version, checked by unseal
  std::vector<Message> out;
  uint64_t n = r.varint();
  if (n > body.size()) return std::nullopt;  // each message takes at least a byte
  out.reserve(std::min<uint64_t>(n, 1024));  // a count is input: never reserve by it alone
  for (uint64_t i = 0; i < n; ++i) {
    Message m;
    if (!get_header(r, m)) return std::nullopt;
    uint64_t k = r.varint();
    if (k > body.size()) return std::nullopt;
    m.entries.reserve(std::min<uint64_t>(k, 1024));
    for (uint64_t j = 0; j < k && !r.failed(); ++j) {
      Entry e;
      e.term = Term(r.varint());
      e.index = LogIndex(r.varint());
      uint8_t t = r.u8();
      if (t > static_cast<uint8_t>(EntryType::kConfChange)) return std::nullopt;
      e.type = static_cast<EntryType>(t);
      e.data = r.str();
      m.entries.push_back(std::move(e));
    }
    if (r.failed() || m.type == MessageType::kSnapshot) return std::nullopt;
    out.push_back(std::move(m));
  }
  if (r.failed() || !r.done()) return std::nullopt;
  return out;
}

std::string encode_snapshot_meta(const Message& m, uint32_t data_crc) {
  Writer w;
  w.u8(kWireVersion);
  put_header(w, m);
  w.varint(m.snapshot->index.value());
  w.varint(m.snapshot->term.value());
  put_conf(w, m.snapshot->conf);
  w.varint(data_crc);
  seal(w);
  return w.take();
}

std::optional<Message> decode_snapshot_meta(std::string_view wire, std::optional<uint32_t>* data_crc,
                                            WireError* error) {
  auto sealed = unseal(wire, error);
  if (!sealed) return std::nullopt;
  if (error) *error = WireError::kMalformed;
  Reader r(*sealed);
  bool checksummed = r.u8() == kWireVersion;
  Message m;
  if (!get_header(r, m) || m.type != MessageType::kSnapshot) return std::nullopt;
  consensus::Snapshot s;
  s.index = LogIndex(r.varint());
  s.term = Term(r.varint());
  s.conf = get_conf(r);
  uint64_t crc = checksummed ? r.varint() : 0;
  if (r.failed() || !r.done() || crc > 0xffffffffu) return std::nullopt;
  *data_crc = checksummed ? std::optional<uint32_t>(static_cast<uint32_t>(crc)) : std::nullopt;
  m.snapshot = std::move(s);
  return m;
}

}  // namespace tenure::peers
