// Snapshots of the state machine (the data of a Raft snapshot, thesis §5.1)
// and the event log that watches read.
#include <algorithm>
#include <iterator>

#include "common/codec.h"
#include "controlplane/state_machine.h"

namespace tenure::controlplane {

namespace {
// 2 added the handoff phases (shards, history) and Worker::prepares;
// 3 keeps only each shard's last change (LastChange) instead of its whole
// history, which lives in the HistorySink now, and a move's fields only
// for a shard being handed off. Versions 1 and 2 are still
// read (every new field at its default); their history records are handed
// to the sink, so that a member upgraded in place keeps them.
constexpr uint8_t kSnapshotVersion = 3;

void put_result(Writer& w, const ApplyResult& r) {
  w.u8(static_cast<uint8_t>(r.code));
  w.str(r.message);
  w.varint(r.revision.value());
  w.varint(r.created.size());
  for (const auto& id : r.created) w.str(id.str());
  w.varint(r.existing.size());
  for (const auto& id : r.existing) w.str(id.str());
  w.varint(r.changed);
}

bool valid_reason(ChangeReason r) { return static_cast<uint8_t>(r) <= static_cast<uint8_t>(ChangeReason::kReleased); }

/// The 32-bit phase durations of a LastChange (a larger value is not a
/// snapshot of ours), and its reason in range.
bool valid_last_change(Reader& r, LastChange& last) {
  uint64_t prepare_ms = r.varint(), drain_ms = r.varint();
  if (prepare_ms > UINT32_MAX || drain_ms > UINT32_MAX || !valid_reason(last.reason)) return false;
  last.prepare_ms = static_cast<uint32_t>(prepare_ms);
  last.drain_ms = static_cast<uint32_t>(drain_ms);
  return true;
}

/// A version 1 or 2 shard's history list: its last record becomes the
/// shard's LastChange, and all of them are kept for the sink.
bool read_legacy_history(Reader& r, bool phases, const ShardId& id, LastChange& last,
                         std::vector<std::pair<ShardId, HistoryRecord>>& out) {
  for (uint64_t k = r.varint(); k > 0 && !r.failed(); --k) {
    HistoryRecord h;
    h.revision = Revision(r.varint());
    h.epoch = Epoch(r.varint());
    h.from = WorkerId(r.str());
    h.to = WorkerId(r.str());
    h.reason = static_cast<ChangeReason>(r.u8());
    h.at_ms = r.varint();
    LastChange c;
    c.reason = h.reason;
    if (phases) {
      if (!valid_last_change(r, c)) return false;
      uint8_t flags = r.u8();
      c.prepare_timed_out = flags & 1;
      c.drain_timed_out = flags & 2;
      c.prepared = flags & 4;
    } else if (!valid_reason(c.reason)) {
      return false;
    }
    h.prepare_ms = c.prepare_ms;
    h.drain_ms = c.drain_ms;
    h.prepared = c.prepared;
    h.prepare_timed_out = c.prepare_timed_out;
    h.drain_timed_out = c.drain_timed_out;
    last = c;
    out.emplace_back(id, std::move(h));
  }
  return !r.failed();
}

ApplyResult get_result(Reader& r) {
  ApplyResult a;
  a.code = static_cast<ApplyCode>(r.u8());
  a.message = r.str();
  a.revision = Revision(r.varint());
  for (uint64_t n = r.varint(); n > 0 && !r.failed(); --n) a.created.emplace_back(r.str());
  for (uint64_t n = r.varint(); n > 0 && !r.failed(); --n) a.existing.emplace_back(r.str());
  a.changed = r.varint();
  return a;
}
}  // namespace

std::vector<Event> StateMachine::events_after(Revision after, const WorkerId& worker, size_t max) const {
  std::vector<Event> out;
  auto it = std::upper_bound(events_.begin(), events_.end(), after,
                             [](Revision r, const Event& e) { return r < e.revision; });
  for (; it != events_.end() && out.size() < max; ++it) {
    if (!worker.empty() && it->worker != worker) continue;
    out.push_back(*it);
  }
  return out;
}

std::vector<Event> StateMachine::events_window(Revision after, const WorkerId& worker, size_t max_scanned,
                                               Revision& scanned_to) const {
  std::vector<Event> out;
  scanned_to = after;
  if (max_scanned == 0) return out;
  auto it = std::upper_bound(events_.begin(), events_.end(), after,
                             [](Revision r, const Event& e) { return r < e.revision; });
  scanned_to = std::max(after, revision_);
  for (size_t n = 0; it != events_.end(); ++it, ++n) {
    if (n == max_scanned) {
      scanned_to = std::prev(it)->revision;
      break;
    }
    if (worker.empty() || it->worker == worker) out.push_back(*it);
  }
  return out;
}

void StateMachine::visit_events_after(Revision after, const std::function<void(const Event&)>& fn) const {
  auto it = std::upper_bound(events_.begin(), events_.end(), after,
                             [](Revision r, const Event& e) { return r < e.revision; });
  for (; it != events_.end(); ++it) fn(*it);
}

Revision StateMachine::worker_events_revision(const WorkerId& worker) const {
  auto it = worker_events_.find(worker);
  return it != worker_events_.end() ? it->second : events_compacted_;
}

std::string StateMachine::snapshot() const {
  Writer w;
  w.u8(kSnapshotVersion);
  w.varint(revision_.value());
  w.varint(shards_.size());
  for (const auto& [id, s] : shards_) {
    w.str(id.str());
    w.str(s.worker.str());
    w.varint(s.epoch.value());
    w.u8(static_cast<uint8_t>(s.state));
    if (s.state == ShardState::kHandoff) {
      const Handoff& h = handoffs_.at(id);
      w.str(h.target.str());
      w.varint(h.since_ms);
      w.u8(static_cast<uint8_t>(h.reason));
      w.u8(static_cast<uint8_t>(h.phase));
      w.varint(h.drain_since_ms);
      w.u8((h.prepare_timed_out ? 1 : 0) | (h.prepared ? 2 : 0));
    }
    w.u8(static_cast<uint8_t>(s.last.reason));
    w.u8((s.last.prepare_timed_out ? 1 : 0) | (s.last.drain_timed_out ? 2 : 0) | (s.last.prepared ? 4 : 0));
    w.varint(s.last.prepare_ms);
    w.varint(s.last.drain_ms);
  }
  w.varint(deleted_epochs_.size());
  for (const auto& [id, e] : deleted_epochs_) {
    w.str(id.str());
    w.varint(e.value());
  }
  w.varint(workers_.size());
  for (const auto& [id, wk] : workers_) {
    w.str(id.str());
    w.str(wk.address);
    w.str(wk.zone);
    w.f64(wk.capacity);
    w.u8(static_cast<uint8_t>(wk.state));
    w.varint(wk.since_ms);
    w.u8(wk.drain_requested ? 1 : 0);
    w.u8(wk.prepares ? 1 : 0);
  }
  w.varint(events_compacted_.value());
  w.varint(events_.size());
  for (const auto& e : events_) {
    w.varint(e.revision.value());
    w.u8(static_cast<uint8_t>(e.type));
    w.str(e.shard.str());
    w.str(e.worker.str());
    w.varint(e.epoch.value());
    w.str(e.worker_state);
    w.varint(e.at_ms);
  }
  w.varint(request_order_.size());
  for (const auto& id : request_order_) {
    w.str(id);
    put_result(w, request_results_.at(id).unpack());
  }
  w.varint(started_members_.size());
  for (const auto& id : started_members_) w.str(id);
  return w.take();
}

bool StateMachine::restore(const std::string& data) {
  Reader r(data);
  const uint8_t version = r.u8();
  if (version < 1 || version > kSnapshotVersion) return false;
  const bool phases = version >= 2;
  StateMachine next(limits_);
  // Versions 1 and 2: the records they carry, for the sink once all decoded.
  std::vector<std::pair<ShardId, HistoryRecord>> legacy_history;
  next.revision_ = Revision(r.varint());
  for (uint64_t n = r.varint(); n > 0 && !r.failed(); --n) {
    ShardId id(r.str());
    Shard s;
    WorkerId owner(r.str());
    s.epoch = Epoch(r.varint());
    s.state = static_cast<ShardState>(r.u8());
    // Versions 1 and 2 carry a move's fields for every shard; 3 only for
    // one being handed off.
    Handoff h;
    if (version < 3 || s.state == ShardState::kHandoff) {
      h.target = WorkerId(r.str());
      h.since_ms = r.varint();
      h.reason = static_cast<ChangeReason>(r.u8());
      if (phases) {
        h.phase = static_cast<HandoffPhase>(r.u8());
        h.drain_since_ms = r.varint();
        uint8_t flags = r.u8();
        h.prepare_timed_out = flags & 1;
        h.prepared = flags & 2;
      } else {
        h.drain_since_ms = h.since_ms;
      }
    }
    if (version >= 3) {
      s.last.reason = static_cast<ChangeReason>(r.u8());
      uint8_t flags = r.u8();
      s.last.prepare_timed_out = flags & 1;
      s.last.drain_timed_out = flags & 2;
      s.last.prepared = flags & 4;
      if (!valid_last_change(r, s.last)) return false;
    } else if (!read_legacy_history(r, phases, id, s.last, legacy_history)) {
      return false;
    }
    // A snapshot is input (a leader's, or a disk's): every enum in range,
    // no id twice (the counts and indexes below would disagree with the map).
    if (static_cast<size_t>(s.state) > 2 || !valid_reason(h.reason) || static_cast<uint8_t>(h.phase) > 1 ||
        next.shards_.count(id)) {
      return false;
    }
    ++next.shard_counts_[static_cast<size_t>(s.state)];
    next.shard_id_bytes_ += id.str().size();
    // The indexes point to the map's own copy of the id (ShardIdSet), the
    // shard to its owner's entry in the index (OwnerRef).
    auto owned = next.owned_.end();
    if (!owner.empty()) {
      owned = next.owned_.try_emplace(std::move(owner)).first;
      s.worker = OwnerRef(&owned->first);
    }
    const auto& [key, shard] = *next.shards_.emplace_hint(next.shards_.end(), std::move(id), std::move(s));
    if (shard.state == ShardState::kUnassigned) next.unassigned_.insert_last(key);
    if (owned != next.owned_.end()) owned->second.insert_last(key);
    if (shard.state == ShardState::kHandoff) {
      next.handoffs_.emplace_hint(next.handoffs_.end(), key, std::move(h));
      next.handoffs_from_[shard.worker].insert_last(key);
    }
  }
  for (uint64_t n = r.varint(); n > 0 && !r.failed(); --n) {
    ShardId id(r.str());
    if (!next.deleted_epochs_.emplace(std::move(id), Epoch(r.varint())).second) return false;
  }
  for (uint64_t n = r.varint(); n > 0 && !r.failed(); --n) {
    WorkerId id(r.str());
    Worker wk;
    wk.address = r.str();
    wk.zone = r.str();
    wk.capacity = r.f64();
    wk.state = static_cast<WorkerState>(r.u8());
    wk.since_ms = r.varint();
    wk.drain_requested = r.u8() != 0;
    if (phases) wk.prepares = r.u8() != 0;
    if (static_cast<uint8_t>(wk.state) > 2) return false;
    ++next.worker_counts_[static_cast<size_t>(wk.state)];
    if (!next.workers_.emplace(std::move(id), std::move(wk)).second) return false;
  }
  next.events_compacted_ = Revision(r.varint());
  if (next.events_compacted_ > next.revision_) return false;
  for (uint64_t n = r.varint(); n > 0 && !r.failed(); --n) {
    Event e;
    e.revision = Revision(r.varint());
    e.type = static_cast<EventType>(r.u8());
    e.shard = ShardId(r.str());
    e.worker = WorkerId(r.str());
    e.epoch = Epoch(r.varint());
    e.worker_state = r.str();
    e.at_ms = r.varint();
    // Watches binary-search the events by revision: strictly increasing,
    // after the compacted revision, never past the state's revision.
    Revision prev = next.events_.empty() ? next.events_compacted_ : next.events_.back().revision;
    if (static_cast<uint8_t>(e.type) > 4 || e.revision <= prev || e.revision > next.revision_) return false;
    if (!e.worker.empty() && next.workers_.count(e.worker)) next.worker_events_[e.worker] = e.revision;
    next.events_.push_back(std::move(e));
  }
  for (uint64_t n = r.varint(); n > 0 && !r.failed(); --n) {
    std::string id = r.str();
    ApplyResult result = get_result(r);
    // Results are kept with their ids packed ('\n' between them): only
    // shard ids, which never hold it nor are empty, are results of ours.
    for (const auto* ids : {&result.created, &result.existing}) {
      for (const auto& shard : *ids) {
        if (!valid_shard_id(shard.str())) return false;
      }
    }
    next.request_results_[id] = StoredResult::pack(result);
    next.remember_scope(id);
    next.request_order_.push_back(std::move(id));
  }
  for (uint64_t n = r.varint(); n > 0 && !r.failed(); --n) next.started_members_.insert(r.str());
  if (r.failed() || !r.done()) return false;
  next.history_ = history_;
  *this = std::move(next);
  if (history_) {
    for (const auto& [id, h] : legacy_history) history_->record(id, h);
  }
  return true;
}

}  // namespace tenure::controlplane
