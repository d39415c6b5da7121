#include "dataplane_agent/grant_table.h"

#include <algorithm>
#include <set>

namespace tenure::agent {

std::optional<ShardRecord> after_grant(const ShardRecord& cur, Epoch epoch) {
  if (epoch <= cur.dropped_epoch || epoch < cur.max_epoch) return std::nullopt;  // stale
  if (cur.held && cur.max_epoch == epoch) return std::nullopt;                   // duplicate
  ShardRecord next = cur;
  next.max_epoch = epoch;
  next.held = true;
  return next;
}

std::optional<ShardRecord> after_drop(const ShardRecord& cur, Epoch epoch) {
  ShardRecord next = cur;
  next.max_epoch = std::max(cur.max_epoch, epoch);
  next.dropped_epoch = std::max(cur.dropped_epoch, epoch);
  // Held at max_epoch: a revoke of that epoch or a newer one ends the grant.
  next.held = cur.held && cur.max_epoch > epoch;
  if (next == cur) return std::nullopt;
  return next;
}

FenceResult check_record(const ShardRecord* rec, Epoch epoch) {
  if (rec == nullptr) return {FenceCode::kNotOwner, Epoch()};
  if (rec->held && rec->max_epoch == epoch) return {FenceCode::kOk, rec->max_epoch};
  if (epoch < rec->max_epoch) return {FenceCode::kStaleEpoch, rec->max_epoch};
  return {FenceCode::kNotOwner, rec->max_epoch};
}

const ShardRecord* GrantTable::find(std::string_view shard) const {
  auto it = records_.find(shard);
  return it == records_.end() ? nullptr : &it->second;
}

std::vector<ShardEpoch> GrantTable::held() const {
  std::vector<ShardEpoch> out;
  out.reserve(held_count_);
  for (const auto& [id, rec] : records_) {
    if (rec.held) out.push_back({ShardId(id), rec.max_epoch});
  }
  // Sorted: no output depends on hash order (DESIGN.md, house style 9).
  std::sort(out.begin(), out.end(), [](const ShardEpoch& a, const ShardEpoch& b) { return a.shard < b.shard; });
  return out;
}

void GrantTable::load(std::map<std::string, ShardRecord> records, Revision revision) {
  records_.clear();
  held_count_ = 0;
  for (auto& [id, rec] : records) {
    held_count_ += rec.held ? 1 : 0;
    records_.emplace(id, rec);
  }
  revision_ = revision;
}

void GrantTable::install(const GrantChanges& changes) {
  for (const auto& [id, rec] : changes.records()) {
    auto [it, inserted] = records_.try_emplace(id, rec);
    if (!inserted) {
      held_count_ -= it->second.held ? 1 : 0;
      it->second = rec;
    }
    held_count_ += rec.held ? 1 : 0;
  }
  if (changes.revision()) revision_ = *changes.revision();
}

ShardRecord GrantChanges::current(const ShardId& shard) const {
  auto it = records_.find(shard.str());
  if (it != records_.end()) return it->second;
  const ShardRecord* base = base_.find(shard.str());
  return base ? *base : ShardRecord{};
}

bool GrantChanges::grant(const ShardId& shard, Epoch epoch) {
  ShardRecord cur = current(shard);
  auto next = after_grant(cur, epoch);
  if (!next) {
    if (!(cur.held && cur.max_epoch == epoch)) ++refused_;  // stale, not a repeat
    return false;
  }
  records_[shard.str()] = *next;
  ++granted_;
  return true;
}

bool GrantChanges::drop(const ShardId& shard, Epoch epoch, const char* reason) {
  ShardRecord cur = current(shard);
  auto next = after_drop(cur, epoch);
  if (!next) return false;
  if (cur.held && !next->held) {
    ++dropped_;
    drop_reasons_[shard.str()] = reason;
  }
  records_[shard.str()] = *next;
  return true;
}

const char* GrantChanges::drop_reason(const std::string& shard) const {
  auto it = drop_reasons_.find(shard);
  return it == drop_reasons_.end() ? "revoked" : it->second;
}

void GrantChanges::drop_all(const char* reason) {
  // Everything held now: the base's held shards, overlaid with this batch.
  std::set<std::string> held;
  for (const auto& s : base_.held()) held.insert(s.shard.str());
  for (const auto& [id, rec] : records_) {
    if (rec.held) {
      held.insert(id);
    } else {
      held.erase(id);
    }
  }
  for (const auto& id : held) {
    ShardId shard(id);
    drop(shard, current(shard).max_epoch, reason);
  }
}

void GrantChanges::advance_revision(Revision r) {
  if (!revision_ || *revision_ < r) revision_ = std::max(r, base_.revision());
}

void GrantChanges::reset_revision(Revision r) { revision_ = r; }

void GrantChanges::revoke_for_release(const ShardEpoch& s) {
  if (drains_) {
    ShardRecord cur = current(s.shard);
    if (cur.held && cur.max_epoch == s.epoch && drains_(s)) {
      drain_.push_back(s);
      return;
    }
  }
  drop(s.shard, s.epoch, "handoff");
  // Confirm even when already dropped: an earlier release may have been lost.
  if (releasing_.emplace(s.shard.str(), s.epoch.value()).second) release_.push_back(s);
}

void GrantChanges::apply_event(const WatchEvent& e, const WorkerId& self) {
  using Kind = WatchEvent::Kind;
  switch (e.kind) {
    case Kind::kGrant:
      if (e.worker == self) grant(e.shard, e.epoch);
      break;
    case Kind::kRevoke:
      if (e.worker == self) revoke_for_release({e.shard, e.epoch});
      break;
    case Kind::kShardDeleted:
      // Carries no worker; only a shard we know of is worth a row.
      if (e.worker.empty() || e.worker == self) {
        if (base_.find(e.shard.str()) || records_.count(e.shard.str())) drop(e.shard, e.epoch, "deleted");
      }
      break;
    case Kind::kWorker:
      if (e.worker == self && (e.state == "dead" || e.state == "removed")) drop_all(e.state == "dead" ? "worker_dead" : "worker_removed");
      break;
    default: break;
  }
  if (e.kind != Kind::kError && e.kind != Kind::kUnknown) advance_revision(e.revision);
}

void GrantChanges::apply_listing(const ShardList& list) {
  std::set<std::string> listed;
  for (const auto& s : list.shards) {
    listed.insert(s.id.str());
    if (s.served()) {
      grant(s.id, s.epoch);
    } else {
      // A handoff past its prepare: revoked; confirm so the new owner need not wait.
      revoke_for_release({s.id, s.epoch});
    }
  }
  for (const auto& s : base_.held()) {
    if (!listed.count(s.shard.str())) drop(s.shard, s.epoch, "not_listed");
  }
  reset_revision(list.revision);
}

}  // namespace tenure::agent
