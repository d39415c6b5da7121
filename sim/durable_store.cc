#include "sim/durable_store.h"

#include <algorithm>
#include <sstream>

namespace tenure::sim {

void DurableStore::set_initial(const InitialState& s) {
  hard_state_ = s.hard_state;
  snapshot_ = s.snapshot;
  entries_ = s.entries;
}

std::optional<std::string> DurableStore::persist(const Ready& rd, bool with_hard_state) {
  if (rd.hard_state && with_hard_state) hard_state_ = *rd.hard_state;
  if (rd.snapshot) {
    snapshot_ = *rd.snapshot;
    entries_.clear();
  }
  if (rd.entries.empty()) return std::nullopt;
  LogIndex first = rd.entries.front().index;
  if (first > last_index().next()) {
    std::ostringstream os;
    os << "Ready entries start at " << first << " but the durable log ends at " << last_index();
    return os.str();
  }
  while (!entries_.empty() && entries_.back().index >= first) entries_.pop_back();
  for (const auto& e : rd.entries) {
    if (!entries_.empty() && e.index != entries_.back().index.next()) return "Ready entries are not contiguous";
    entries_.push_back(e);
  }
  return std::nullopt;
}

void DurableStore::compact(const Snapshot& snap, LogIndex compact_to) {
  if (snap.index > snapshot_.index) snapshot_ = snap;
  auto keep = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.index > compact_to; });
  entries_.erase(entries_.begin(), keep);
}

InitialState DurableStore::initial_state() const {
  InitialState s;
  s.hard_state = hard_state_;
  s.snapshot = snapshot_;
  for (const auto& e : entries_) {
    if (e.index > snapshot_.index) s.entries.push_back(e);
  }
  return s;
}

LogIndex DurableStore::last_index() const {
  return entries_.empty() ? snapshot_.index : std::max(snapshot_.index, entries_.back().index);
}

std::optional<Term> DurableStore::term(LogIndex i) const {
  if (i == snapshot_.index && !snapshot_.empty()) return snapshot_.term;
  if (entries_.empty() || i < entries_.front().index || i > entries_.back().index) {
    if (i == LogIndex(0)) return Term(0);
    return std::nullopt;
  }
  return entries_[i.value() - entries_.front().index.value()].term;
}

std::vector<Entry> DurableStore::read(LogIndex lo, LogIndex hi, size_t max_bytes, size_t overhead_bytes) const {
  std::vector<Entry> out;
  if (entries_.empty() || lo < entries_.front().index) return out;
  size_t bytes = 0;
  for (LogIndex i = lo; i <= hi && i <= entries_.back().index; i = i.next()) {
    const Entry& e = entries_[i.value() - entries_.front().index.value()];
    bytes += e.data.size() + overhead_bytes;
    if (!out.empty() && bytes > max_bytes) break;
    out.push_back(e);
  }
  return out;
}

bool DurableStore::covers(LogIndex i, Term t) const {
  if (i <= snapshot_.index) return true;
  auto stored = term(i);
  return stored && *stored == t;
}

}  // namespace tenure::sim
