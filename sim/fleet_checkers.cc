#include "sim/fleet_checkers.h"

#include <sstream>

namespace tenure::sim {

namespace {
Violation fleet_violation(std::string checker, const NodeId& who, LogIndex index, std::string detail) {
  return Violation{std::move(checker), who, Term(0), index, std::move(detail)};
}
}  // namespace

std::vector<WriterConflict> one_writer_conflicts(const std::vector<AcceptingView>& agents) {
  std::map<ShardId, std::pair<WorkerId, Epoch>> writer;
  std::vector<WriterConflict> out;
  for (const auto& a : agents) {
    for (const auto& s : a.accepting) {
      auto [it, fresh] = writer.try_emplace(s.shard, a.agent, s.epoch);
      if (!fresh) out.push_back({s.shard, it->second.first, it->second.second, a.agent, s.epoch});
    }
  }
  return out;
}

Violation one_writer_violation(const WriterConflict& c) {
  std::ostringstream os;
  os << "shard " << c.shard.str() << " accepted by " << c.first.str() << " at epoch " << c.first_epoch << " and by "
     << c.second.str() << " at epoch " << c.second_epoch;
  return fleet_violation("fleet-one-writer", NodeId(c.second.str()), LogIndex(0), os.str());
}

Check check_one_writer(const std::vector<AcceptingView>& agents) {
  auto conflicts = one_writer_conflicts(agents);
  if (conflicts.empty()) return std::nullopt;
  return one_writer_violation(conflicts.front());
}

Check EpochOwners::owner(const NodeId& who, const std::string& where, const ShardId& id, Epoch e, const WorkerId& w) {
  auto [it, fresh] = owners_.try_emplace({id, e}, w);
  if (fresh && trace_) trace_("fleet: " + id.str() + "@" + std::to_string(e.value()) + " owned by " + w.str() + " (" + where + ")");
  if (fresh || it->second == w) return std::nullopt;
  std::ostringstream os;
  os << where << ": shard " << id.str() << " epoch " << e << " owned by " << w.str() << " but elsewhere by "
     << it->second.str();
  return fleet_violation("fleet-epoch-owner", who, LogIndex(0), os.str());
}

Check EpochOwners::observe(const NodeId& node, LogIndex index, const ShardId& id, const controlplane::Shard& s) {
  // Along the log: no state at a later index may show an older epoch.
  auto& seen = by_index_[id];
  auto next = seen.lower_bound(index);
  if (next != seen.end() && (next->second < s.epoch || (next->first == index && next->second != s.epoch))) {
    std::ostringstream os;
    os << "shard " << id.str() << " at epoch " << s.epoch << " after index " << index << " but at epoch "
       << next->second << " after index " << next->first;
    return fleet_violation("fleet-epoch-monotonic", node, index, os.str());
  }
  if (next != seen.begin() && std::prev(next)->second > s.epoch) {
    auto prev = std::prev(next);
    std::ostringstream os;
    os << "shard " << id.str() << " at epoch " << s.epoch << " after index " << index << " but already at epoch "
       << prev->second << " after index " << prev->first;
    return fleet_violation("fleet-epoch-monotonic", node, index, os.str());
  }
  seen[index] = s.epoch;
  if (s.worker.empty()) return std::nullopt;
  return owner(node, "member " + node.str() + " after index " + std::to_string(index.value()), id, s.epoch, s.worker);
}

Check EpochOwners::on_state(const NodeId& node, LogIndex index, const controlplane::StateMachine& sm, bool fresh) {
  NodeView& v = nodes_[node];
  if (fresh) {
    v.epochs.clear();
  } else if (v.valid && v.revision == sm.revision()) {
    return std::nullopt;  // nothing changed since the last look
  }
  v.valid = true;
  v.revision = sm.revision();
  for (const auto& [id, s] : sm.shards()) {
    auto [it, first] = v.epochs.try_emplace(id, s.epoch);
    if (!first && it->second == s.epoch && !fresh) continue;
    if (!first && s.epoch < it->second) {
      std::ostringstream os;
      os << "shard " << id.str() << " went from epoch " << it->second << " to " << s.epoch << " on member "
         << node.str();
      return fleet_violation("fleet-epoch-monotonic", node, index, os.str());
    }
    it->second = s.epoch;
    if (auto c = observe(node, index, id, s)) return c;
  }
  return std::nullopt;
}

Check EpochOwners::on_agent(const WorkerId& worker, const agent::GrantTable* table,
                            const std::map<std::string, agent::ShardRecord>& durable) {
  NodeId who(worker.str());
  auto& max = agent_max_[worker];
  auto went_down = [&](const std::string& id, Epoch seen, Epoch now, const char* where) {
    std::ostringstream os;
    os << "agent " << worker.str() << " saw shard " << id << " at epoch " << seen << ", its " << where
       << " now says " << now;
    return fleet_violation("fleet-epoch-monotonic", who, LogIndex(0), os.str());
  };
  // The durable table is what the agent knows for good (the fence installs
  // only what was written there first).
  for (const auto& [id, rec] : durable) {
    Epoch& m = max[id];
    if (rec.max_epoch < m) return went_down(id, m, rec.max_epoch, "durable table");
    m = rec.max_epoch;
  }
  if (!table) return std::nullopt;
  for (const auto& [id, seen] : max) {
    const agent::ShardRecord* rec = table->find(id);
    if (rec && rec->max_epoch < seen) return went_down(id, seen, rec->max_epoch, "fence");
  }
  for (const auto& held : table->held()) {
    if (!owners_.count({held.shard, held.epoch})) {
      return fleet_violation("fleet-epoch-owner", who, LogIndex(0),
                             "agent " + worker.str() + " holds shard " + held.shard.str() + " at epoch " +
                                 std::to_string(held.epoch.value()) + ", a grant no member ever made");
    }
    if (auto c = owner(who, "agent " + worker.str(), held.shard, held.epoch, worker)) return c;
  }
  return std::nullopt;
}

}  // namespace tenure::sim
