#include "controlplane/placement.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <queue>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace tenure::controlplane {

std::map<WorkerId, uint64_t> fair_quotas(const std::map<WorkerId, double>& capacity, uint64_t total,
                                         const std::map<WorkerId, std::string>& zone_of, const HeldCount& held) {
  std::map<WorkerId, uint64_t> quota;
  double sum = 0;
  for (const auto& [id, c] : capacity) sum += c;
  if (capacity.empty() || sum <= 0) return quota;
  struct Candidate {
    const WorkerId* id;
    double frac;
    size_t zone;  ///< index into zones
    uint64_t* quota;
    bool holds_more;  ///< holds more than its share rounded down: keeps the leftover if it can
  };
  std::vector<std::string> zones;
  std::unordered_map<std::string, size_t> zone_index;
  std::vector<double> zone_cap, zone_quota;
  std::vector<Candidate> cands;
  cands.reserve(capacity.size());
  uint64_t given = 0;
  for (const auto& [id, c] : capacity) {
    double exact = static_cast<double>(total) * c / sum;
    auto whole = static_cast<uint64_t>(std::floor(exact));
    auto z = zone_of.find(id);
    const std::string& zone = z == zone_of.end() ? std::string() : z->second;
    auto [zi, fresh] = zone_index.try_emplace(zone, zones.size());
    if (fresh) {
      zones.push_back(zone);
      zone_cap.push_back(0);
      zone_quota.push_back(0);
    }
    auto& q = quota.emplace_hint(quota.end(), id, whole)->second;
    given += whole;
    cands.push_back(Candidate{&id, exact - static_cast<double>(whole), zi->second, &q, held && held(id) > whole});
    zone_cap[zi->second] += c;
    zone_quota[zi->second] += static_cast<double>(whole);
  }
  // The leftovers (fewer than workers: one each at most) go to the largest
  // fractions; among fractions equal within 1e-12, to a worker of the zone
  // filled least so far, then to one that holds more than its whole share,
  // then to the smallest id. Sorted once and taken
  // group by group (a scan of every worker per leftover cost O(workers²):
  // seconds on the leader's strand for 10,000 workers).
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    return a.frac != b.frac ? a.frac > b.frac : *a.id < *b.id;
  });
  for (size_t g = 0; g < cands.size() && given < total;) {
    size_t end = g + 1;
    while (end < cands.size() && std::abs(cands[end].frac - cands[g].frac) <= 1e-12) ++end;
    // Per zone, this group's workers, those that hold more first, then in
    // id order (fractions that differ by rounding only are one group).
    auto first = [](const Candidate& a, const Candidate& b) {
      return a.holds_more != b.holds_more ? a.holds_more : *a.id < *b.id;
    };
    std::sort(cands.begin() + static_cast<std::ptrdiff_t>(g), cands.begin() + static_cast<std::ptrdiff_t>(end), first);
    std::map<size_t, std::vector<const Candidate*>> by_zone;
    for (size_t k = g; k < end; ++k) by_zone[cands[k].zone].push_back(&cands[k]);
    std::map<size_t, size_t> next;  // zone -> position of its next worker
    for (size_t n = end - g; n > 0 && given < total; --n, ++given) {
      const Candidate* best = nullptr;
      double best_fill = 0;
      for (const auto& [zone, members] : by_zone) {
        size_t at = next[zone];
        if (at == members.size()) continue;
        const Candidate* c = members[at];
        double fill = zone_quota[zone] / zone_cap[zone];
        if (!best || fill < best_fill || (fill == best_fill && first(*c, *best))) {
          best = c;
          best_fill = fill;
        }
      }
      ++*best->quota;
      zone_quota[best->zone] += 1;
      ++next[best->zone];
    }
    g = end;
  }
  return quota;
}

namespace {

/// Who is eligible, what each should hold and what each will hold once the
/// handoffs in flight complete; hands out owners to whoever lacks most.
///
/// Built on every placement pass, over every worker: its per-worker state
/// lives in one vector in id order, found by a hash of the id, and its heap
/// holds positions, not ids. Maps keyed by id (six of them) cost a pass 34 ms
/// at 10,000 workers, most of it comparing ids, on the leader's strand every
/// two seconds at least (BM_PlacementPassBalanced).
class LoadModel {
 public:
  /// `excluded` (sorted) are not eligible, as if gone.
  LoadModel(const StateMachine& sm, const PlacementOptions& opt, const std::vector<WorkerId>& excluded) {
    std::map<WorkerId, double> capacity;
    std::map<WorkerId, std::string> zone_of;
    std::unordered_map<std::string_view, uint32_t> zone_index;
    for (const auto& [id, w] : sm.workers()) {
      bool settled = opt.join_delay_ms == 0 || opt.now_ms >= w.since_ms + opt.join_delay_ms;
      if (w.state != WorkerState::kAlive || !settled || std::binary_search(excluded.begin(), excluded.end(), id)) {
        continue;
      }
      capacity.emplace_hint(capacity.end(), id, w.capacity);
      zone_of.emplace_hint(zone_of.end(), id, w.zone);
      auto [z, fresh] = zone_index.try_emplace(w.zone, static_cast<uint32_t>(zones_.size()));
      if (fresh) zones_.push_back(Zone{});
      zones_[z->second].capacity += w.capacity;
      slots_.push_back(Slot{&id, z->second, 0, 0});
    }
    index_.reserve(slots_.size());
    for (uint32_t i = 0; i < slots_.size(); ++i) index_.emplace(slots_[i].id->str(), i);
    // What each holds once the handoffs in flight complete, from the
    // indexes (a pass over every shard took a million string compares each
    // time): what it owns, less what it is handing off, plus what is being
    // handed to it. The excluded workers are not eligible: they count nothing.
    for (uint32_t i = 0; i < slots_.size(); ++i) {
      const WorkerId& id = *slots_[i].id;
      add_load(i, sm.shards_of(id).size() - sm.handoffs_from(id).size());
    }
    for (const auto& [id, h] : sm.handoffs()) {
      if (auto i = find(h.target)) add_load(*i, 1);
    }
    quota_ = fair_quotas(capacity, sm.shards().size(), zone_of,
                         [this](const WorkerId& w) { return slots_[*find(w)].load; });
    if (quota_.size() != slots_.size()) {  // no capacity at all: nobody is eligible
      slots_.clear();
      index_.clear();
    }
    auto q = quota_.begin();  // in id order, as the slots
    for (uint32_t i = 0; i < slots_.size(); ++i, ++q) slots_[i].quota = q->second;
    for (uint32_t i = 0; i < slots_.size(); ++i) push(i);
  }

  bool eligible(const WorkerId& w) const { return find(w).has_value(); }
  const std::map<WorkerId, uint64_t>& quota() const { return quota_; }
  int64_t surplus(const WorkerId& w) const { return surplus(*find(w)); }

  /// The worker that lacks most (zone fill breaks ties), or empty if none lacks any.
  WorkerId take() {
    while (!heap_.empty()) {
      Key k = heap_.top();
      heap_.pop();
      if (k.deficit != -surplus(k.slot)) continue;  // stale entry
      if (k.deficit <= 0) return WorkerId();
      add_load(k.slot, 1);
      push(k.slot);
      return *slots_[k.slot].id;
    }
    return WorkerId();
  }
  void release(const WorkerId& w) {
    auto i = find(w);
    if (!i) return;
    --slots_[*i].load;
    --zones_[slots_[*i].zone].load;
    push(*i);
  }

 private:
  struct Slot {
    const WorkerId* id;  ///< the state machine's own key (the model lives within one pass)
    uint32_t zone;
    uint64_t quota;
    uint64_t load;
  };
  struct Zone {
    double capacity = 0;
    uint64_t load = 0;
  };
  struct Key {
    int64_t deficit;
    double zone_fill;
    uint32_t slot;  ///< slots are in id order
    bool operator<(const Key& o) const {  // max-heap: largest deficit, then emptiest zone, then smallest id
      if (deficit != o.deficit) return deficit < o.deficit;
      if (zone_fill != o.zone_fill) return zone_fill > o.zone_fill;
      return o.slot < slot;
    }
  };
  std::optional<uint32_t> find(const WorkerId& w) const {
    auto it = index_.find(w.str());
    if (it == index_.end()) return std::nullopt;
    return it->second;
  }
  int64_t surplus(uint32_t i) const {
    return static_cast<int64_t>(slots_[i].load) - static_cast<int64_t>(slots_[i].quota);
  }
  void add_load(uint32_t i, uint64_t n) {
    slots_[i].load += n;
    zones_[slots_[i].zone].load += n;
  }
  void push(uint32_t i) {
    const Zone& z = zones_[slots_[i].zone];
    heap_.push(Key{-surplus(i), static_cast<double>(z.load) / z.capacity, i});
  }

  std::map<WorkerId, uint64_t> quota_;
  std::vector<Slot> slots_;
  std::vector<Zone> zones_;
  // Looked up once per shard: hashed (never iterated, so order cannot leak).
  std::unordered_map<std::string_view, uint32_t> index_;
  std::priority_queue<Key> heap_;
};

ChangeReason reason_for_unassigned(const Shard& s) {
  return s.epoch == Epoch(0) ? ChangeReason::kCreated : s.last.reason;
}

}  // namespace

Plan plan_placement(const StateMachine& sm, const PlacementOptions& opt) {
  Plan plan;
  // Nobody can take shards: skip the pass (it runs often while shards are
  // being created and no worker has registered yet).
  if (sm.count(WorkerState::kAlive) == 0) return plan;
  LoadModel model(sm, opt, {});
  plan.quota = model.quota();
  if (plan.quota.empty()) return plan;
  // Unassigned shards first, in id order: they have no owner at all. A
  // pass grants at most max_assignments_per_pass of them (the rest wait for
  // the next pass), so that a million new shards become a stream of
  // bounded commands rather than one burst that stalls every member's apply.
  for (const auto& id : sm.unassigned()) {
    const Shard& s = *sm.shard(id);
    if ((opt.hold_formerly_owned && s.epoch > Epoch(0)) || (opt.held && opt.held->count(id))) continue;
    if (plan.assignments.size() >= opt.max_assignments_per_pass) return plan;
    WorkerId to = model.take();
    if (to.empty()) return plan;  // no worker lacks any: nobody can take a move either
    plan.assignments.push_back({id, WorkerId(), to, s.epoch, reason_for_unassigned(s)});
  }
  size_t in_flight = sm.count(ShardState::kHandoff);
  size_t budget = opt.max_concurrent_moves > in_flight ? opt.max_concurrent_moves - in_flight : 0;
  if (budget == 0) return plan;
  // Owners that must give some up: those that may not keep any (draining,
  // not settled) and those above their quota. Surpluses do not change
  // while unassigned shards are placed (those go to deficits). A dead
  // worker's shards move by its failover (FailoverShards), never here.
  std::vector<const WorkerId*> draining, above_quota;
  for (const auto& [id, w] : sm.workers()) {
    if (w.state == WorkerState::kDead) continue;
    if (!model.eligible(id)) {
      draining.push_back(&id);
    } else if (model.surplus(id) > 0) {
      above_quota.push_back(&id);
    }
  }
  // Shards of workers that may not keep them move first, in id order.
  for (const WorkerId* owner : draining) {
    for (const auto& id : sm.shards_of(*owner)) {
      const Shard& s = *sm.shard(id);
      if (s.state != ShardState::kActive) continue;
      if (budget == 0) return plan;
      WorkerId to = model.take();
      if (to.empty()) return plan;
      plan.moves.push_back({id, *owner, to, s.epoch, ChangeReason::kDrain});
      --budget;
    }
  }
  // Then balance: each worker above its quota gives exactly its surplus,
  // from its largest ids; a shard an operator moved there last goes only
  // when the others do not cover the surplus (the operator chose where it
  // runs; balance needs a count, not that shard).
  for (const WorkerId* owner : above_quota) {
    const auto& owned = sm.shards_of(*owner);
    for (bool manual : {false, true}) {
      for (auto it = owned.rbegin(); it != owned.rend() && model.surplus(*owner) > 0; ++it) {
        const Shard& s = *sm.shard(*it);
        if (s.state != ShardState::kActive || (s.last.reason == ChangeReason::kManual) != manual) continue;
        if (budget == 0) return plan;
        WorkerId to = model.take();
        if (to.empty()) return plan;
        model.release(*owner);
        plan.moves.push_back({*it, *owner, to, s.epoch, ChangeReason::kRebalance});
        --budget;
      }
    }
  }
  return plan;
}

std::vector<Placement> plan_failover(const StateMachine& sm, const WorkerId& dead, const PlacementOptions& opt) {
  return plan_failovers(sm, {dead}, opt).front();
}

std::vector<std::vector<Placement>> plan_failovers(const StateMachine& sm, const std::vector<WorkerId>& dead,
                                                   const PlacementOptions& opt) {
  std::vector<std::vector<Placement>> out(dead.size());
  // The model costs a pass over every worker: built once for all of them,
  // and not at all when they held nothing (thousands of workers whose
  // leases ran out together, as when a whole fleet restarts, stalled the
  // leader's strand for seconds with a model each).
  bool any = std::any_of(dead.begin(), dead.end(), [&](const WorkerId& d) { return !sm.shards_of(d).empty(); });
  if (!any || opt.max_failovers_per_pass == 0) return out;
  std::vector<WorkerId> excluded(dead);
  std::sort(excluded.begin(), excluded.end());
  LoadModel model(sm, opt, excluded);
  size_t budget = opt.max_failovers_per_pass;
  for (size_t k = 0; k < dead.size() && budget > 0; ++k) {
    out[k].reserve(std::min(budget, sm.shards_of(dead[k]).size()));
    for (const auto& id : sm.shards_of(dead[k])) {
      if (budget == 0) break;
      --budget;
      const Shard* s = sm.shard(id);
      // A shard already being handed off goes to its target (counted there).
      const Handoff* h = sm.handoff(id);
      if (h && model.eligible(h->target)) {
        out[k].push_back(Placement{id, h->target, s->epoch});
        continue;
      }
      // Nobody can take it: it becomes unassigned (empty worker) until someone can.
      out[k].push_back(Placement{id, model.take(), s->epoch});
    }
  }
  return out;
}

}  // namespace tenure::controlplane
