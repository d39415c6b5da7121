#include "consensus/raft_log.h"

#include <algorithm>
#include <limits>

#include "consensus/assert.h"

namespace tenure::consensus {

RaftLog::RaftLog(Snapshot snapshot, std::vector<Entry> entries, LogIndex commit)
    : snapshot_(std::move(snapshot)),
      offset_(snapshot_.index),
      offset_term_(snapshot_.term),
      entries_(std::move(entries)) {
  for (size_t k = 0; k < entries_.size(); ++k) {
    TENURE_CHECK(entries_[k].index == offset_.plus(k + 1), "restored log has a gap at " << k);
    resident_bytes_ += entries_[k].data.size();
  }
  released_ = offset_;
  stable_ = last_index();
  committed_ = std::max(snapshot_.index, std::min(commit, last_index()));
  applied_ = snapshot_.index;
}

std::optional<Term> RaftLog::term(LogIndex i) const {
  if (i == offset_) return offset_term_;
  if (i < offset_ || i > last_index()) return std::nullopt;
  return at(i).term;
}

Entry RaftLog::entry(LogIndex i) const {
  TENURE_CHECK(i > offset_ && i <= last_index(), "entry " << i << " outside (" << offset_ << ", " << last_index() << "]");
  if (i <= released_) return std::move(read_back(i, i, 0, 0).front());
  return at(i);
}

size_t RaftLog::payload_size(LogIndex i) const {
  TENURE_CHECK(i > released_ && i <= last_index(), "payload of entry " << i << " is not in memory");
  return at(i).data.size();
}

std::vector<Entry> RaftLog::read_back(LogIndex lo, LogIndex hi, size_t max_bytes, size_t overhead_bytes) const {
  TENURE_CHECK(reader_ != nullptr && lo > offset_ && hi <= released_, "read back " << lo << ".." << hi);
  std::vector<Entry> out = reader_->read_entries(lo, hi, max_bytes, overhead_bytes);
  // The store must hold what we released: same indexes, same terms. A
  // mismatch is a broken store, never something to send on.
  TENURE_CHECK(!out.empty() && out.size() <= hi.value() - lo.value() + 1, "read back " << lo << ".." << hi << ": "
                                                                           << out.size() << " entries");
  for (size_t k = 0; k < out.size(); ++k) {
    LogIndex i = lo.plus(k);
    TENURE_CHECK(out[k].index == i && out[k].term == at(i).term && out[k].type == at(i).type,
                 "read back entry " << i << ": store has index " << out[k].index << " term " << out[k].term);
  }
  read_back_entries_ += out.size();
  return out;
}

bool RaftLog::is_up_to_date(LogIndex index, Term t) const {
  Term lt = last_term();
  return t > lt || (t == lt && index >= last_index());
}

void RaftLog::append(std::vector<Entry> entries) {
  for (auto& e : entries) {
    TENURE_CHECK(e.index == last_index().next(), "append out of order at " << e.index);
    resident_bytes_ += e.data.size();
    entries_.push_back(std::move(e));
  }
}

void RaftLog::truncate_after(LogIndex i) {
  TENURE_CHECK(i >= committed_, "truncating committed entries: at " << i << " committed " << committed_);
  // Nothing past the commit index is ever released.
  for (LogIndex k = i.next(); k <= last_index(); k = k.next()) resident_bytes_ -= at(k).data.size();
  entries_.resize(i.value() - offset_.value());
  if (stable_ > i) stable_ = i;
}

std::optional<LogIndex> RaftLog::maybe_append(LogIndex prev, Term prev_term,
                                              std::vector<Entry> entries) {
  if (!matches(prev, prev_term)) return std::nullopt;
  LogIndex last_new = prev.plus(entries.size());
  // Skip entries we already have; truncate from the first conflicting one.
  size_t k = 0;
  for (; k < entries.size(); ++k) {
    const Entry& e = entries[k];
    if (e.index <= offset_) continue;  // covered by our snapshot
    auto t = term(e.index);
    if (!t) break;  // past our end
    if (*t != e.term) {
      truncate_after(e.index.prev());
      break;
    }
  }
  for (; k < entries.size(); ++k) {
    if (entries[k].index <= offset_) continue;
    resident_bytes_ += entries[k].data.size();
    entries_.push_back(std::move(entries[k]));
  }
  return last_new;
}

LogIndex RaftLog::find_conflict_by_term(LogIndex index, Term t) const {
  index = std::min(index, last_index());
  while (index > offset_) {
    auto tt = term(index);
    if (!tt || *tt <= t) break;
    index = index.prev();
  }
  return index;
}

std::vector<Entry> RaftLog::entries_from(LogIndex from, size_t max_bytes, size_t overhead_bytes) const {
  std::vector<Entry> out;
  if (from > last_index()) return out;
  TENURE_CHECK(from > offset_, "entries_from compacted index " << from);
  size_t bytes = 0;
  if (from <= released_) {
    // A follower this far behind: what the store holds first, then from
    // memory within the same budget, so that a message holds the same
    // entries whether or not their payloads were released.
    out = read_back(from, released_, max_bytes, overhead_bytes);
    for (const Entry& e : out) bytes += e.data.size() + overhead_bytes;
    if (out.back().index < released_ || released_ == last_index()) return out;
    from = released_.next();
  }
  // Find the end first, then copy once: growing the vector entry by entry
  // reallocated it about log2(n) times per message on the replication path.
  auto first = entries_.begin() + static_cast<long>(from.value() - offset_.value() - 1);
  auto last = first;
  if (out.empty()) {  // at least one entry, whatever its size
    bytes = first->data.size() + overhead_bytes;
    ++last;
  }
  for (; last != entries_.end() && bytes + last->data.size() + overhead_bytes <= max_bytes; ++last) {
    bytes += last->data.size() + overhead_bytes;
  }
  out.insert(out.end(), first, last);
  return out;
}

std::vector<Entry> RaftLog::slice(LogIndex lo, LogIndex hi) const {
  std::vector<Entry> out;
  if (lo > hi) return out;
  TENURE_CHECK(lo > offset_ && hi <= last_index(), "slice out of range " << lo << ".." << hi);
  if (lo <= released_) {
    out = read_back(lo, std::min(hi, released_), std::numeric_limits<size_t>::max(), 0);
    TENURE_CHECK(out.back().index == std::min(hi, released_), "read back " << lo << ".." << hi << " came short");
    lo = out.back().index.next();
  }
  out.reserve(out.size() + (hi.value() + 1 - lo.value()));
  for (LogIndex i = lo; i <= hi; i = i.next()) out.push_back(at(i));
  return out;
}

std::vector<Entry> RaftLog::unstable_entries() const {
  return slice(std::max(stable_, offset_).next(), last_index());
}

std::vector<Entry> RaftLog::next_committed_entries(size_t max_bytes) const {
  LogIndex lo = std::max(applied_, offset_).next();
  if (max_bytes == 0 || lo > committed_) return slice(lo, committed_);
  LogIndex hi = lo;
  for (size_t bytes = at(lo).data.size(); hi < committed_; hi = hi.next()) {
    bytes += at(hi.next()).data.size();
    if (bytes > max_bytes) break;
  }
  return slice(lo, hi);
}

void RaftLog::commit_to(LogIndex i) {
  if (i <= committed_) return;
  TENURE_CHECK(i <= last_index(), "commit " << i << " past last index " << last_index());
  committed_ = i;
}

void RaftLog::applied_to(LogIndex i) {
  TENURE_CHECK(i <= committed_ && i >= applied_, "applied " << i << " outside [" << applied_ << ", " << committed_ << "]");
  applied_ = i;
}

void RaftLog::stable_to(LogIndex i) { stable_ = std::min(std::max(stable_, i), last_index()); }

void RaftLog::release_payloads(size_t keep_bytes) {
  if (reader_ == nullptr) return;
  const LogIndex limit = std::min(applied_, stable_);
  while (resident_bytes_ > keep_bytes && released_ < limit) {
    released_ = released_.next();
    std::string& data = entries_[released_.value() - offset_.value() - 1].data;
    resident_bytes_ -= data.size();
    std::string().swap(data);  // clear() would keep the capacity
  }
}

void RaftLog::restore(Snapshot snap) {
  snapshot_ = std::move(snap);
  offset_ = snapshot_.index;
  offset_term_ = snapshot_.term;
  entries_.clear();
  released_ = offset_;
  resident_bytes_ = 0;
  committed_ = applied_ = stable_ = offset_;
}

void RaftLog::compact(Snapshot snap, LogIndex compact_to) {
  TENURE_CHECK(snap.index <= applied_, "snapshot at " << snap.index << " beyond applied " << applied_);
  TENURE_CHECK(compact_to <= snap.index, "compacting past the snapshot");
  if (snap.index > snapshot_.index) snapshot_ = std::move(snap);
  if (compact_to <= offset_) return;
  Term t = *term(compact_to);
  for (LogIndex k = std::max(released_, offset_).next(); k <= compact_to; k = k.next()) resident_bytes_ -= at(k).data.size();
  released_ = std::max(released_, compact_to);
  entries_.erase(entries_.begin(), entries_.begin() + static_cast<long>(compact_to.value() - offset_.value()));
  offset_ = compact_to;
  offset_term_ = t;
}

}  // namespace tenure::consensus
