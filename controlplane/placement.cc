#include "controlplane/placement.h"

#include <algorithm>
#include <cmath>
#include <queue>
#include <unordered_map>

namespace tenure::controlplane {

std::map<WorkerId, uint64_t> fair_quotas(const std::map<WorkerId, double>& capacity, uint64_t total,
                                         const std::map<WorkerId, std::string>& zone_of) {
  std::map<WorkerId, uint64_t> quota;
  double sum = 0;
  for (const auto& [id, c] : capacity) sum += c;
  if (capacity.empty() || sum <= 0) return quota;
  std::map<WorkerId, double> frac;
  std::map<std::string, double> zone_cap, zone_quota;
  auto zone = [&](const WorkerId& id) {
    auto it = zone_of.find(id);
    return it == zone_of.end() ? std::string() : it->second;
  };
  uint64_t given = 0;
  for (const auto& [id, c] : capacity) {
    double exact = static_cast<double>(total) * c / sum;
    auto whole = static_cast<uint64_t>(std::floor(exact));
    quota[id] = whole;
    given += whole;
    frac[id] = exact - static_cast<double>(whole);
    zone_cap[zone(id)] += c;
    zone_quota[zone(id)] += static_cast<double>(whole);
  }
  // Fewer leftovers than workers, so each worker gets at most one.
  for (; given < total; ++given) {
    const WorkerId* best = nullptr;
    double best_fill = 0;
    for (const auto& [id, f] : frac) {
      if (f < 0) continue;  // already got its leftover
      double fill = zone_quota[zone(id)] / zone_cap[zone(id)];
      if (!best || f > frac[*best] + 1e-12 || (std::abs(f - frac[*best]) <= 1e-12 && fill < best_fill)) {
        best = &id;
        best_fill = fill;
      }
    }
    ++quota[*best];
    zone_quota[zone(*best)] += 1;
    frac[*best] = -1;
  }
  return quota;
}

namespace {

/// Who is eligible, what each should hold and what each will hold once the
/// handoffs in flight complete; hands out owners to whoever lacks most.
class LoadModel {
 public:
  LoadModel(const StateMachine& sm, const PlacementOptions& opt, const WorkerId& excluded) {
    std::map<WorkerId, double> capacity;
    for (const auto& [id, w] : sm.workers()) {
      bool settled = opt.join_delay_ms == 0 || opt.now_ms >= w.since_ms + opt.join_delay_ms;
      if (id == excluded || w.state != WorkerState::kAlive || !settled) continue;
      capacity[id] = w.capacity;
      zone_of_[id] = w.zone;
      zone_capacity_[w.zone] += w.capacity;
      worker_capacity_[id] = w.capacity;
    }
    quota_ = fair_quotas(capacity, sm.shards().size(), zone_of_);
    for (const auto& [id, q] : quota_) load_[id.str()] = Slot{q, 0};
    for (const auto& [id, s] : sm.shards()) {
      const WorkerId& holder = s.state == ShardState::kHandoff ? s.target : s.worker;
      if (s.worker == excluded && s.state == ShardState::kActive) continue;
      add_load(holder);
    }
    for (const auto& [id, q] : quota_) push(id);
  }

  bool eligible(const WorkerId& w) const { return load_.count(w.str()) > 0; }
  const std::map<WorkerId, uint64_t>& quota() const { return quota_; }
  int64_t surplus(const WorkerId& w) const {
    const Slot& slot = load_.at(w.str());
    return static_cast<int64_t>(slot.load) - static_cast<int64_t>(slot.quota);
  }

  /// The worker that lacks most (zone fill breaks ties), or empty if none lacks any.
  WorkerId take() {
    while (!heap_.empty()) {
      Key k = heap_.top();
      heap_.pop();
      if (k.deficit != deficit(k.id)) continue;  // stale entry
      if (k.deficit <= 0) return WorkerId();
      add_load(k.id);
      push(k.id);
      return k.id;
    }
    return WorkerId();
  }
  void release(const WorkerId& w) {
    if (!eligible(w)) return;
    --load_[w.str()].load;
    --zone_load_[zone_of_[w]];
    push(w);
  }

 private:
  struct Key {
    int64_t deficit;
    double zone_fill;
    WorkerId id;
    bool operator<(const Key& o) const {  // max-heap: largest deficit, then emptiest zone, then smallest id
      if (deficit != o.deficit) return deficit < o.deficit;
      if (zone_fill != o.zone_fill) return zone_fill > o.zone_fill;
      return o.id < id;
    }
  };
  int64_t deficit(const WorkerId& w) const { return -surplus(w); }
  void add_load(const WorkerId& w) {
    auto it = load_.find(w.str());
    if (it == load_.end()) return;
    ++it->second.load;
    ++zone_load_[zone_of_[w]];
  }
  void push(const WorkerId& w) {
    const std::string& z = zone_of_[w];
    heap_.push(Key{deficit(w), static_cast<double>(zone_load_[z]) / zone_capacity_[z], w});
  }

  std::map<WorkerId, uint64_t> quota_;
  struct Slot {
    uint64_t quota = 0;
    uint64_t load = 0;
  };
  // Looked up once per shard: hashed (never iterated, so order cannot leak).
  std::unordered_map<std::string, Slot> load_;
  std::map<WorkerId, std::string> zone_of_;
  std::map<WorkerId, double> worker_capacity_;
  std::map<std::string, double> zone_capacity_;
  std::map<std::string, uint64_t> zone_load_;
  std::priority_queue<Key> heap_;
};

/// A dead worker's shards move by its failover (FailoverShards), never by a handoff.
bool held_by_dead(const StateMachine& sm, const Shard& s) {
  const Worker* w = sm.worker(s.worker);
  return !w || w->state == WorkerState::kDead;
}

ChangeReason reason_for_unassigned(const Shard& s) {
  if (s.epoch == Epoch(0) || s.history.empty()) return ChangeReason::kCreated;
  return s.history.back().reason;
}

}  // namespace

Plan plan_placement(const StateMachine& sm, const PlacementOptions& opt) {
  Plan plan;
  // Nobody can take shards: skip the pass over every shard (it runs often
  // while shards are being created and no worker has registered yet).
  if (sm.count(WorkerState::kAlive) == 0) return plan;
  LoadModel model(sm, opt, WorkerId());
  plan.quota = model.quota();
  if (plan.quota.empty()) return plan;
  size_t in_flight = sm.count(ShardState::kHandoff);
  size_t budget = opt.max_concurrent_moves > in_flight ? opt.max_concurrent_moves - in_flight : 0;
  // Active shards of owners that must give some up, in id order. Surpluses
  // do not change while unassigned shards are placed (those go to deficits).
  std::map<WorkerId, std::vector<const ShardId*>> movable;
  for (const auto& [id, s] : sm.shards()) {
    if (s.state == ShardState::kUnassigned) {
      if ((opt.hold_formerly_owned && s.epoch > Epoch(0)) || (opt.held && opt.held->count(id))) continue;
      WorkerId to = model.take();
      if (to.empty()) continue;
      plan.assignments.push_back({id, WorkerId(), to, s.epoch, reason_for_unassigned(s)});
    } else if (s.state == ShardState::kActive && (!model.eligible(s.worker) || model.surplus(s.worker) > 0) &&
               !held_by_dead(sm, s)) {
      movable[s.worker].push_back(&id);
    }
  }
  // Shards of workers that may not keep them (draining) move first.
  for (const auto& [owner, ids] : movable) {
    if (model.eligible(owner)) continue;
    for (const ShardId* id : ids) {
      if (budget == 0) return plan;
      WorkerId to = model.take();
      if (to.empty()) return plan;
      plan.moves.push_back({*id, owner, to, sm.shard(*id)->epoch, ChangeReason::kDrain});
      --budget;
    }
  }
  // Then balance: each worker above its quota gives exactly its surplus.
  for (const auto& [owner, ids] : movable) {
    if (!model.eligible(owner)) continue;
    for (auto it = ids.rbegin(); it != ids.rend() && model.surplus(owner) > 0; ++it) {
      if (budget == 0) return plan;
      WorkerId to = model.take();
      if (to.empty()) return plan;
      model.release(owner);
      plan.moves.push_back({**it, owner, to, sm.shard(**it)->epoch, ChangeReason::kRebalance});
      --budget;
    }
  }
  return plan;
}

std::vector<Placement> plan_failover(const StateMachine& sm, const WorkerId& dead, const PlacementOptions& opt) {
  LoadModel model(sm, opt, dead);
  std::vector<Placement> out;
  out.reserve(sm.shards_of(dead).size());
  for (const auto& id : sm.shards_of(dead)) {
    const Shard* s = sm.shard(id);
    // A shard already being handed off goes to its target (counted there).
    if (s->state == ShardState::kHandoff && model.eligible(s->target)) {
      out.push_back(Placement{id, s->target, s->epoch});
      continue;
    }
    // Nobody can take it: it becomes unassigned (empty worker) until someone can.
    out.push_back(Placement{id, model.take(), s->epoch});
  }
  return out;
}

}  // namespace tenure::controlplane
