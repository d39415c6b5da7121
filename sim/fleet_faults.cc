// The fleet's operator (shards created and deleted, workers drained and
// undrained, manual moves), the agents' faults (pauses past the lease,
// kills, graceful leaves, cut links) and the liveness phase.
#include <algorithm>
#include <memory>

#include "controlplane/command_split.h"
#include "sim/fleet.h"

namespace tenure::sim {

using controlplane::Command;

int64_t Fleet::gap_us(uint64_t mean_ms) {
  auto m = static_cast<int64_t>(mean_ms);
  return rng_.range(std::max<int64_t>(1, m / 2), m * 3 / 2 + 1) * 1000;
}

void Fleet::schedule(uint64_t mean_ms, void (Fleet::*fault)()) {
  if (mean_ms == 0) return;
  after(gap_us(mean_ms), [this, mean_ms, fault] {
    if (liveness_) return;
    (this->*fault)();
    schedule(mean_ms, fault);
  });
}

void Fleet::operate(Command cmd, const std::string& what, std::function<void(bool)> done) {
  Node* l = env_.fleet_leader();
  if (!l || !controller(*l)) {
    if (done) done(false);
    return;
  }
  // The operator's call waits while the leader is stopped (SIGSTOP), as an
  // HTTP request to it would; it may lead no more when it resumes.
  NodeId id = l->id();
  trace("fleet: operator " + what + " at " + id.str());
  env_.fleet_run_on(id, [this, id, cmd = std::move(cmd), done, life = l->incarnation()]() mutable {
    NodeController* c = controller_of(id, life);
    if (!c) {
      if (done) done(false);
      return;
    }
    c->port().propose(std::move(cmd), [this, done](const controlplane::PortError* err,
                                                   const controlplane::ApplyResult* r) {
      bool applied = !err && r->code == controlplane::ApplyCode::kOk;
      if (applied) ++stats_.operator_ops;
      if (done) done(applied);
    });
  });
}

std::string Fleet::shard_name(int k) const {
  // Long ids (a large run) make each placement, release and failover piece
  // carry more bytes, so that pieces reach their bound with few shards.
  std::string id = "s" + std::to_string(k);
  if (f_.shard_id_pad > 0) id += "-" + std::string(f_.shard_id_pad, 'x');
  return id;
}

void Fleet::create_initial_shards() {
  std::vector<controlplane::ShardId> ids;
  for (int k = 1; k <= f_.initial_shards; ++k) ids.emplace_back(shard_name(k));
  next_shard_ = std::max(next_shard_, f_.initial_shards + 1);
  // Bounded pieces, as POST /v1/shards proposes them.
  auto cmds = controlplane::create_commands("", std::move(ids), f_.max_command_list_bytes);
  auto left = std::make_shared<size_t>(cmds.size());
  auto failed = std::make_shared<bool>(false);
  for (auto& cmd : cmds) {
    // Until every piece is applied (creating an existing shard changes nothing).
    operate(std::move(cmd), "create initial shards", [this, left, failed](bool ok) {
      if (!ok) *failed = true;
      if (--*left == 0 && *failed) after(100'000, [this] { create_initial_shards(); });
    });
  }
}

void Fleet::create_fault() {
  controlplane::CreateShards c;
  if (!deleted_.empty() && rng_.chance(0.3)) {
    // A deleted shard comes back: its epochs go on from where they were.
    size_t k = rng_.below(deleted_.size());
    c.ids.emplace_back(deleted_[k]);
    deleted_.erase(deleted_.begin() + static_cast<long>(k));
  } else {
    for (int64_t n = rng_.range(1, 3); n > 0; --n) c.ids.emplace_back(shard_name(next_shard_++));
  }
  Command cmd;
  cmd.body = std::move(c);
  operate(std::move(cmd), "create shards");
}

void Fleet::delete_fault() {
  Node* l = env_.fleet_leader();
  if (!l) return;
  const auto& sm = static_cast<const FleetStateMachine&>(l->state_machine()).fleet();
  if (sm.shards().size() <= 1) return;
  auto it = sm.shards().begin();
  std::advance(it, static_cast<long>(rng_.below(sm.shards().size())));
  std::string id = it->first.str();
  Command cmd;
  cmd.body = controlplane::DeleteShard{it->first};
  operate(std::move(cmd), "delete " + id, [this, id](bool ok) {
    if (ok) deleted_.push_back(id);
  });
}

void Fleet::drain_fault() {
  Node* l = env_.fleet_leader();
  if (!l) return;
  const auto& sm = static_cast<const FleetStateMachine&>(l->state_machine()).fleet();
  std::vector<WorkerId> alive, draining;
  for (const auto& [id, w] : sm.workers()) {
    if (w.state == controlplane::WorkerState::kAlive) alive.push_back(id);
    if (w.state == controlplane::WorkerState::kDraining) draining.push_back(id);
  }
  bool drain = !alive.empty() && (draining.empty() || rng_.chance(0.5));
  if (!drain && draining.empty()) return;
  WorkerId id = drain ? rng_.pick(alive) : rng_.pick(draining);
  Command cmd;
  cmd.body = controlplane::SetDraining{id, drain};
  operate(std::move(cmd), (drain ? "drain " : "undrain ") + id.str());
}

void Fleet::move_fault() {
  Node* l = env_.fleet_leader();
  if (!l) return;
  const auto& sm = static_cast<const FleetStateMachine&>(l->state_machine()).fleet();
  std::vector<ShardId> active;
  for (const auto& [id, s] : sm.shards()) {
    if (s.state == controlplane::ShardState::kActive) active.push_back(id);
  }
  if (active.empty()) return;
  ShardId shard = rng_.pick(active);
  const auto* s = sm.shard(shard);
  std::vector<WorkerId> targets;
  for (const auto& [id, w] : sm.workers()) {
    if (w.state == controlplane::WorkerState::kAlive && id != s->worker) targets.push_back(id);
  }
  if (targets.empty()) return;
  WorkerId to = rng_.pick(targets);
  Command cmd;
  cmd.body = controlplane::BeginMoves{{controlplane::Placement{shard, to, s->epoch}}, controlplane::ChangeReason::kManual};
  operate(std::move(cmd), "move " + shard.str() + " to " + to.str());
}

// ---- Agent faults ----

void Fleet::pause_fault() {
  std::vector<size_t> up;
  for (size_t k = 0; k < agents_.size(); ++k) {
    if (agents_[k]->up() && !agents_[k]->paused()) up.push_back(k);
  }
  if (up.empty()) return;
  size_t k = rng_.pick(up);
  SimAgent& a = *agents_[k];
  // Half the pauses outlast the lease (SIGSTOP, a long GC, a VM freeze).
  bool long_pause = rng_.chance(0.5);
  int64_t ms = long_pause ? rng_.range(static_cast<int64_t>(f_.lease_ms) + 1, static_cast<int64_t>(std::max(f_.pause_max_ms, f_.lease_ms + 1)))
                          : rng_.range(1, static_cast<int64_t>(f_.lease_ms));
  ++stats_.pauses;
  if (long_pause) ++stats_.long_pauses;
  a.pause();
  trace("fleet: pause " + a.id().str() + " for " + std::to_string(ms) + "ms");
  uint64_t life = a.life();
  after(ms * 1000, [this, k, life] {
    if (agents_[k]->life() == life) agents_[k]->resume();
  });
}

void Fleet::crash_fault() {
  std::vector<size_t> up;
  for (size_t k = 0; k < agents_.size(); ++k) {
    if (agents_[k]->up()) up.push_back(k);
  }
  if (up.empty()) return;
  size_t k = rng_.pick(up);
  ++stats_.agent_crashes;
  agents_[k]->crash();
  restart_agent(k, rng_.range(1, static_cast<int64_t>(f_.down_max_ms)) * 1000);
}

void Fleet::leave_fault() {
  std::vector<size_t> up;
  for (size_t k = 0; k < agents_.size(); ++k) {
    if (agents_[k]->up() && !agents_[k]->stopping()) up.push_back(k);
  }
  if (up.empty()) return;
  size_t k = rng_.pick(up);
  ++stats_.leaves;
  agents_[k]->shut_down();
  restart_agent(k, rng_.range(1, static_cast<int64_t>(f_.down_max_ms)) * 1000);
}

void Fleet::restart_agent(size_t k, int64_t delay_us) {
  after(delay_us, [this, k] {
    SimAgent& a = *agents_[k];
    if (a.up() && a.stopping()) return restart_agent(k, 10'000);  // still leaving
    if (!a.up()) a.start();
  });
}

void Fleet::cut_fault() {
  SimAgent& a = *agents_[rng_.below(agents_.size())];
  NodeId self = a.address();
  std::vector<std::pair<NodeId, NodeId>> links;
  bool all = rng_.chance(0.5);
  for (const auto& m : env_.members()) {
    if (!all && rng_.chance(0.5)) continue;
    int dir = all ? 2 : static_cast<int>(rng_.below(3));  // 0: to it, 1: from it, 2: both
    if (dir != 1) links.emplace_back(self, m);
    if (dir != 0) links.emplace_back(m, self);
  }
  if (links.empty()) return;
  trace("fleet: cut " + self.str() + (all ? " from every member" : " from some members"));
  cut_links(std::move(links), rng_.range(1, static_cast<int64_t>(f_.cut_max_ms)) * 1000);
}

void Fleet::mute_fault() {
  SimAgent& a = *agents_[rng_.below(agents_.size())];
  std::vector<std::pair<NodeId, NodeId>> links;
  for (const auto& m : env_.members()) links.emplace_back(m, a.address());
  trace("fleet: mute " + a.address().str() + " (every member's answers lost)");
  cut_links(std::move(links), half_leases(1, 4));
}

void Fleet::isolate_fault() {
  SimAgent& a = *agents_[rng_.below(agents_.size())];
  std::vector<std::pair<NodeId, NodeId>> links;
  for (const auto& m : env_.members()) {
    links.emplace_back(m, a.address());
    links.emplace_back(a.address(), m);
  }
  trace("fleet: isolate " + a.address().str() + " from every member");
  cut_links(std::move(links), half_leases(2, 4));
}

int64_t Fleet::half_leases(int64_t lo, int64_t hi) {
  auto half_lease = static_cast<int64_t>(f_.lease_ms) / 2;
  return rng_.range(lo * half_lease, hi * half_lease) * 1000;
}

void Fleet::cut_links(std::vector<std::pair<NodeId, NodeId>> links, int64_t for_us) {
  ++stats_.cuts;
  for (const auto& l : links) cuts_.insert(l);
  after(for_us, [this, links] {
    for (const auto& l : links) cuts_.erase(l);
  });
}

// ---- Liveness ----

void Fleet::start_liveness() {
  liveness_ = true;
  liveness_start_us_ = now();
  cuts_.clear();
  for (size_t k = 0; k < agents_.size(); ++k) {
    SimAgent& a = *agents_[k];
    if (a.up() && a.stopping()) {
      restart_agent(k, 0);
    } else if (a.up()) {
      a.resume();
    } else {
      a.start();
    }
  }
  undrain_all();
  check_settled();
}

void Fleet::undrain_all() {
  if (settled()) return;
  after(static_cast<int64_t>(f_.scaled_ms(200)) * 1000, [this] { undrain_all(); });
  Node* l = env_.fleet_leader();
  if (!l) return;
  const auto& sm = static_cast<const FleetStateMachine&>(l->state_machine()).fleet();
  for (const auto& [id, w] : sm.workers()) {
    if (w.state != controlplane::WorkerState::kDraining) continue;
    Command cmd;
    cmd.body = controlplane::SetDraining{id, false};
    operate(std::move(cmd), "undrain " + id.str());
  }
}

}  // namespace tenure::sim
