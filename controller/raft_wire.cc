#include "controller/raft_wire.h"

#include "controlplane/codec.h"

namespace tenure::controller {

using consensus::Entry;
using consensus::EntryType;
using consensus::LogIndex;
using consensus::Message;
using consensus::MessageType;
using consensus::NodeId;
using consensus::Term;
using controlplane::Reader;
using controlplane::Writer;

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
  return w.take();
}

std::optional<std::vector<Message>> decode_messages(const std::string& body) {
  Reader r(body);
  if (r.u8() != kWireVersion) return std::nullopt;
  std::vector<Message> out;
  uint64_t n = r.varint();
  if (n > body.size()) return std::nullopt;  // each message takes at least a byte
  out.reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    Message m;
    if (!get_header(r, m)) return std::nullopt;
    uint64_t k = r.varint();
    if (k > body.size()) return std::nullopt;
    m.entries.reserve(k);
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

std::string encode_snapshot_meta(const Message& m) {
  Writer w;
  w.u8(kWireVersion);
  put_header(w, m);
  w.varint(m.snapshot->index.value());
  w.varint(m.snapshot->term.value());
  put_conf(w, m.snapshot->conf);
  return w.take();
}

std::optional<Message> decode_snapshot_meta(const std::string& body) {
  Reader r(body);
  if (r.u8() != kWireVersion) return std::nullopt;
  Message m;
  if (!get_header(r, m) || m.type != MessageType::kSnapshot) return std::nullopt;
  consensus::Snapshot s;
  s.index = LogIndex(r.varint());
  s.term = Term(r.varint());
  s.conf = get_conf(r);
  if (r.failed() || !r.done()) return std::nullopt;
  m.snapshot = std::move(s);
  return m;
}

}  // namespace tenure::controller
