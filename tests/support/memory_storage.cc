#include "tests/support/memory_storage.h"

#include <algorithm>

namespace tenure::testing {

void MemoryStorage::set_initial(const InitialState& s) {
  hard_state_ = s.hard_state;
  snapshot_ = s.snapshot;
  entries_ = s.entries;
}

void MemoryStorage::persist(const Ready& rd) {
  if (rd.hard_state) hard_state_ = *rd.hard_state;
  if (rd.snapshot) {
    snapshot_ = *rd.snapshot;
    entries_.clear();
  }
  if (!rd.entries.empty()) {
    LogIndex first = rd.entries.front().index;
    while (!entries_.empty() && entries_.back().index >= first) entries_.pop_back();
    entries_.insert(entries_.end(), rd.entries.begin(), rd.entries.end());
  }
}

void MemoryStorage::compact(const Snapshot& snap, LogIndex compact_to) {
  if (snap.index > snapshot_.index) snapshot_ = snap;
  auto it = std::find_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return e.index > compact_to; });
  // Keep the entry at compact_to's successor onward; InitialState needs the
  // boundary term, which the snapshot gives only when compact_to == snap.index.
  entries_.erase(entries_.begin(), it);
}

InitialState MemoryStorage::initial_state() const {
  InitialState s;
  s.hard_state = hard_state_;
  s.snapshot = snapshot_;
  for (const auto& e : entries_) {
    if (e.index > snapshot_.index) s.entries.push_back(e);
  }
  return s;
}

LogIndex MemoryStorage::last_index() const {
  return entries_.empty() ? snapshot_.index : std::max(snapshot_.index, entries_.back().index);
}

Term MemoryStorage::term(LogIndex i) const {
  if (i == snapshot_.index) return snapshot_.term;
  for (auto it = entries_.rbegin(); it != entries_.rend(); ++it) {
    if (it->index == i) return it->term;
    if (it->index < i) break;
  }
  return Term(0);
}

}  // namespace tenure::testing
