// The checkers that watch what clients were told.
#include <sstream>

#include "sim/checkers.h"

namespace tenure::sim {

Check AckedWrites::compare(const History& h, const Ack& a) {
  const CommittedEntry* c = h.at(a.index);
  if (c && c->term == a.term && c->data == a.data) return std::nullopt;
  std::ostringstream os;
  os << "write \"" << a.data << "\" acknowledged at term " << a.term << " but the committed history has "
     << (c ? describe_entry(c->term, c->type, c->data) : std::string("nothing")) << " there";
  return Violation{"acked-writes", a.via, a.term, a.index, os.str()};
}

Check AckedWrites::on_ack(const History& h, Ack ack) {
  acks_.push_back(std::move(ack));
  return compare(h, acks_.back());
}

Check AckedWrites::final(const History& h, const NodeId& leader, const RaftLog* leader_log) const {
  for (const auto& a : acks_) {
    if (auto v = compare(h, a)) return v;
    if (!leader_log || a.index < leader_log->first_index()) continue;
    auto t = leader_log->term(a.index);
    if (t && *t == a.term) continue;
    std::ostringstream os;
    os << "write \"" << a.data << "\" acknowledged at term " << a.term << " is missing from the final leader's log";
    return Violation{"acked-writes", leader, a.term, a.index, os.str()};
  }
  return std::nullopt;
}

Check LinearizableReads::on_read(const History& h, const ReadRecord& r) const {
  std::ostringstream os;
  if (r.read_index < r.min_index) {
    os << "read of " << r.key << " got read index " << r.read_index << " though a write at index " << r.min_index
       << " was acknowledged before the read began";
  } else if (r.served_index < r.read_index) {
    os << "read of " << r.key << " served at applied index " << r.served_index << " before its read index "
       << r.read_index;
  } else if (r.served_index > h.last() || (r.served_index > LogIndex(0) && !h.at(r.served_index))) {
    os << "read of " << r.key << " served at index " << r.served_index << " beyond the committed history (last "
       << h.last() << ")";
  } else {
    std::string want = h.value_at(r.key, r.served_index);
    if (want == r.value) return std::nullopt;
    os << "read of " << r.key << " at index " << r.served_index << " returned \"" << r.value
       << "\" but the committed history has \"" << want << "\"";
  }
  return Violation{"linearizable-reads", r.server, Term(0), r.served_index, os.str()};
}

}  // namespace tenure::sim
