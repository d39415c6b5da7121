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

namespace {

/// One eligible worker, as the quotas see it. The inputs are in id order:
/// a worker's position stands for its id in every tie-break, so that the
/// sorts compare integers, not ids (10,000 ids sorted by strings were most
/// of a placement pass).
struct QuotaInput {
  double capacity;
  uint32_t zone;     ///< index of its zone, numbered in order of first appearance
  uint64_t held;     ///< what it holds (once the handoffs in flight complete)
};

/// The largest-remainder quotas of `in` (see fair_quotas), one per input.
std::vector<uint64_t> fair_shares(const std::vector<QuotaInput>& in, size_t zones, uint64_t total) {
  std::vector<uint64_t> quota(in.size(), 0);
  std::vector<bool> holds_more(in.size());  // each holds more than its share rounded down
  double sum = 0;
  for (const auto& w : in) sum += w.capacity;
  if (in.empty() || sum <= 0) return {};
  struct Candidate {
    uint32_t pos;  ///< in `in`, so in id order
    double frac;
  };
  std::vector<double> zone_cap(zones, 0), zone_quota(zones, 0);
  std::vector<Candidate> cands;
  cands.reserve(in.size());
  uint64_t given = 0;
  for (uint32_t i = 0; i < in.size(); ++i) {
    double exact = static_cast<double>(total) * in[i].capacity / sum;
    auto whole = static_cast<uint64_t>(std::floor(exact));
    quota[i] = whole;
    given += whole;
    holds_more[i] = in[i].held > whole;
    cands.push_back(Candidate{i, exact - static_cast<double>(whole)});
    zone_cap[in[i].zone] += in[i].capacity;
    zone_quota[in[i].zone] += static_cast<double>(whole);
  }
  // The leftovers (fewer than workers: one each at most) go to the largest
  // fractions; among fractions equal within 1e-12, to a worker of the zone
  // filled least so far, then to one that holds more than its whole share,
  // then to the smallest id. Sorted once and taken
  // group by group (a scan of every worker per leftover cost O(workers²):
  // seconds on the leader's strand for 10,000 workers).
  std::sort(cands.begin(), cands.end(), [](const Candidate& a, const Candidate& b) {
    return a.frac != b.frac ? a.frac > b.frac : a.pos < b.pos;
  });
  auto first = [&holds_more](const Candidate& a, const Candidate& b) {
    bool ha = holds_more[a.pos], hb = holds_more[b.pos];
    return ha != hb ? ha : a.pos < b.pos;
  };
  std::vector<std::vector<const Candidate*>> by_zone(zones);
  std::vector<size_t> next(zones);  // zone -> position of its next worker
  std::vector<uint32_t> present;    // the zones of a group, ascending
  for (size_t g = 0; g < cands.size() && given < total;) {
    size_t end = g + 1;
    while (end < cands.size() && std::abs(cands[end].frac - cands[g].frac) <= 1e-12) ++end;
    // Per zone, this group's workers, those that hold more first, then in
    // id order (fractions that differ by rounding only are one group).
    // Only the group's own zones are touched: with a zone per worker and
    // unequal capacities (a group per worker), a pass over every zone per
    // group would be quadratic in the workers.
    std::sort(cands.begin() + static_cast<std::ptrdiff_t>(g), cands.begin() + static_cast<std::ptrdiff_t>(end), first);
    for (uint32_t zone : present) {
      by_zone[zone].clear();
      next[zone] = 0;
    }
    present.clear();
    for (size_t k = g; k < end; ++k) {
      uint32_t zone = in[cands[k].pos].zone;
      if (by_zone[zone].empty()) present.push_back(zone);
      by_zone[zone].push_back(&cands[k]);
    }
    std::sort(present.begin(), present.end());
    for (size_t n = end - g; n > 0 && given < total; --n, ++given) {
      const Candidate* best = nullptr;
      size_t best_zone = 0;
      double best_fill = 0;
      for (uint32_t zone : present) {
        size_t at = next[zone];
        if (at == by_zone[zone].size()) continue;
        const Candidate* c = by_zone[zone][at];
        double fill = zone_quota[zone] / zone_cap[zone];
        if (!best || fill < best_fill || (fill == best_fill && first(*c, *best))) {
          best = c;
          best_zone = zone;
          best_fill = fill;
        }
      }
      ++quota[best->pos];
      zone_quota[best_zone] += 1;
      ++next[best_zone];
    }
    g = end;
  }
  return quota;
}

}  // namespace

std::map<WorkerId, uint64_t> fair_quotas(const std::map<WorkerId, double>& capacity, uint64_t total,
                                         const std::map<WorkerId, std::string>& zone_of, const HeldCount& held) {
  std::vector<QuotaInput> in;
  in.reserve(capacity.size());
  std::unordered_map<std::string, uint32_t> zone_index;
  for (const auto& [id, c] : capacity) {
    auto z = zone_of.find(id);
    uint32_t zone = zone_index
                        .try_emplace(z == zone_of.end() ? std::string() : z->second,
                                     static_cast<uint32_t>(zone_index.size()))
                        .first->second;
    in.push_back(QuotaInput{c, zone, held ? held(id) : 0});
  }
  std::vector<uint64_t> shares = fair_shares(in, zone_index.size(), total);
  std::map<WorkerId, uint64_t> quota;
  auto share = shares.begin();
  if (!shares.empty()) {
    for (const auto& [id, c] : capacity) quota.emplace_hint(quota.end(), id, *share++);
  }
  return quota;
}

namespace {

/// Who is eligible, what each should hold and what each will hold once the
/// handoffs in flight complete; hands out owners to whoever lacks most.
///
/// Built on every placement pass, over every worker, so it keeps no map:
/// its per-worker state lives in one vector in id order, filled by walking
/// the workers beside the state's per-worker indexes (also in id order),
/// and found by binary search; its heap holds positions, not ids. Maps
/// keyed by id cost a pass 34 ms at 10,000 workers (six of them), then
/// 11.6 ms (three, with a hash index), most of it comparing ids, on the
/// leader's strand every two seconds and after every change
/// (BM_PlacementPassBalanced, BM_PlacementPassAssigning).
class LoadModel {
 public:
  /// `excluded` (sorted) are not eligible, as if gone.
  LoadModel(const StateMachine& sm, const PlacementOptions& opt, const std::vector<WorkerId>& excluded) {
    std::vector<QuotaInput> in;
    std::unordered_map<std::string_view, uint32_t> zone_index;
    auto owned = sm.shards_by_worker().begin();
    auto leaving = sm.handoffs_by_worker().begin();
    for (const auto& [id, w] : sm.workers()) {
      bool settled = opt.join_delay_ms == 0 || opt.now_ms >= w.since_ms + opt.join_delay_ms;
      if (w.state != WorkerState::kAlive || !settled || std::binary_search(excluded.begin(), excluded.end(), id)) {
        continue;
      }
      auto [z, fresh] = zone_index.try_emplace(w.zone, static_cast<uint32_t>(zones_.size()));
      if (fresh) zones_.push_back(Zone{});
      zones_[z->second].capacity += w.capacity;
      slots_.push_back(Slot{&id, z->second, 0, 0});
      in.push_back(QuotaInput{w.capacity, z->second, 0});
      // What it holds once the handoffs in flight complete: what it owns,
      // less what it is handing off (plus what is handed to it, below).
      add_load(static_cast<uint32_t>(slots_.size() - 1),
               count_of(id, owned, sm.shards_by_worker()) - count_of(id, leaving, sm.handoffs_by_worker()));
    }
    for (const auto& [id, h] : sm.handoffs()) {
      if (auto i = find(h.target)) add_load(*i, 1);
    }
    for (size_t i = 0; i < slots_.size(); ++i) in[i].held = slots_[i].load;
    std::vector<uint64_t> shares = fair_shares(in, zones_.size(), sm.shards().size());
    if (shares.size() != slots_.size()) {  // no capacity at all: nobody is eligible
      slots_.clear();
      return;
    }
    for (uint32_t i = 0; i < slots_.size(); ++i) {
      slots_[i].quota = shares[i];
      push(i);
    }
  }

  bool empty() const { return slots_.empty(); }
  bool eligible(const WorkerId& w) const { return find(w).has_value(); }
  /// Each eligible worker's quota (placement_quotas).
  std::map<WorkerId, uint64_t> quotas() const {
    std::map<WorkerId, uint64_t> q;
    for (const auto& s : slots_) q.emplace_hint(q.end(), *s.id, s.quota);
    return q;
  }
  int64_t surplus(const WorkerId& w) const { return surplus(*find(w)); }
  /// For a walk over StateMachine::workers(): whether `w` (the state's own
  /// key) is the eligible worker at `cursor`, which then moves past it.
  /// Eligible workers are in id order, as the state's, so the walk needs
  /// no lookup.
  std::optional<uint32_t> next_eligible(const WorkerId& w, uint32_t& cursor) const {
    if (cursor == slots_.size() || slots_[cursor].id != &w) return std::nullopt;
    return cursor++;
  }
  int64_t surplus_at(uint32_t i) const { return surplus(i); }

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
  using PerWorker = std::map<WorkerId, ShardIdSet>;
  /// The size of `id`'s set in `index`, moving `at` forward (ids come in order).
  static uint64_t count_of(const WorkerId& id, PerWorker::const_iterator& at, const PerWorker& index) {
    while (at != index.end() && at->first < id) ++at;
    return at != index.end() && at->first == id ? at->second.size() : 0;
  }
  std::optional<uint32_t> find(const WorkerId& w) const {
    auto it = std::lower_bound(slots_.begin(), slots_.end(), w, [](const Slot& s, const WorkerId& id) { return *s.id < id; });
    if (it == slots_.end() || *it->id != w) return std::nullopt;
    return static_cast<uint32_t>(it - slots_.begin());
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

  std::vector<Slot> slots_;
  std::vector<Zone> zones_;
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
  if (model.empty()) return plan;
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
  uint32_t cursor = 0;
  for (const auto& [id, w] : sm.workers()) {
    auto slot = model.next_eligible(id, cursor);
    if (w.state == WorkerState::kDead) continue;
    if (!slot) {
      draining.push_back(&id);
    } else if (model.surplus_at(*slot) > 0) {
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

std::map<WorkerId, uint64_t> placement_quotas(const StateMachine& sm, const PlacementOptions& opt) {
  return LoadModel(sm, opt, {}).quotas();
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
