#include "sim/history.h"

#include <sstream>

#include "sim/state_machine.h"

namespace tenure::sim {

std::string describe_entry(Term term, EntryType type, const std::string& data) {
  std::ostringstream os;
  os << "term=" << term;
  if (type == EntryType::kConfChange) {
    auto cc = consensus::decode_conf_change(data);
    os << " conf=" << (cc ? std::to_string(static_cast<int>(cc->type)) + ":" + cc->node.str() : "?");
  } else {
    os << " data=\"" << data << "\"";
  }
  return os.str();
}

std::optional<std::string> History::record(const NodeId& node, Term node_term, const Entry& e) {
  size_t k = e.index.value();
  if (k == 0) return std::nullopt;
  if (entries_.size() < k) entries_.resize(k);
  CommittedEntry& c = entries_[k - 1];
  if (!c.known) {
    c.known = true;
    c.term = e.term;
    c.type = e.type;
    c.data = e.data;
    c.commit_term = node_term;
    c.first_seen_on = node;
    if (e.type == EntryType::kNormal) {
      if (auto kv = KvRegister::decode_put(e.data)) writes_[kv->first][e.index] = kv->second;
    }
    return std::nullopt;
  }
  if (node_term < c.commit_term) c.commit_term = node_term;
  if (c.term == e.term && c.type == e.type && c.data == e.data) return std::nullopt;
  std::ostringstream os;
  os << "committed " << describe_entry(e.term, e.type, e.data) << " but " << c.first_seen_on << " committed "
     << describe_entry(c.term, c.type, c.data) << " at the same index";
  return os.str();
}

const CommittedEntry* History::at(LogIndex i) const {
  size_t k = i.value();
  if (k == 0 || k > entries_.size() || !entries_[k - 1].known) return nullptr;
  return &entries_[k - 1];
}

std::string History::value_at(const std::string& key, LogIndex index) const {
  auto it = writes_.find(key);
  if (it == writes_.end()) return "";
  auto w = it->second.upper_bound(index);
  if (w == it->second.begin()) return "";
  return std::prev(w)->second;
}

std::vector<std::string> History::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, w] : writes_) out.push_back(k);
  return out;
}

}  // namespace tenure::sim
