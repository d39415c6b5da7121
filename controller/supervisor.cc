#include "controller/supervisor.h"

#include <chrono>

#include "common/log.h"

namespace tenure::controller {

using controlplane::ChangeReason;
using controlplane::Command;
using controlplane::ShardState;
using controlplane::StateMachine;
using controlplane::WorkerId;
using controlplane::WorkerState;

namespace {
uint64_t steady_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}
}  // namespace

Supervisor::Supervisor(RaftNode& node, SupervisorOptions options, prometheus::Registry& registry)
    : node_(node),
      options_(options),
      handoffs_(prometheus::BuildCounter()
                    .Name("tenure_handoffs_total")
                    .Help("Ownership moves completed by this leader, by reason")
                    .Register(registry)),
      handoff_seconds_(prometheus::BuildHistogram()
                           .Name("tenure_handoff_duration_seconds")
                           .Help("Graceful handoff duration (revoke to grant), by reason")
                           .Register(registry)),
      workers_declared_dead_(prometheus::BuildCounter()
                                 .Name("tenure_workers_declared_dead_total")
                                 .Help("Workers this leader declared dead after their lease ran out")
                                 .Register(registry)
                                 .Add({})) {}

controlplane::PlacementOptions Supervisor::placement_options() const {
  controlplane::PlacementOptions o;
  o.max_concurrent_moves = options_.max_concurrent_moves;
  o.join_delay_ms = options_.join_delay_ms;
  o.now_ms = wall_clock_ms();
  return o;
}

void Supervisor::on_tick() {
  uint64_t now = steady_ms();
  auto& raft = node_.raft();
  bool leader = raft.role() == consensus::Role::kLeader;
  if (!leader) {
    leading_ = false;
    return;
  }
  if (!leading_ || leading_term_ != raft.term()) become_leader(now);
  // §6.4: until this term's first entry commits, the applied state may miss
  // what earlier leaders decided; decide nothing on it.
  if (!raft.committed_in_current_term() || raft.log().applied() < raft.log().committed()) return;
  if (now - last_check_ms_ < options_.check_interval_ms) return;
  last_check_ms_ = now;
  check_leases(now);
  expire_handoffs(now);
  maybe_place(now);
}

void Supervisor::become_leader(uint64_t now) {
  leading_ = true;
  leading_term_ = node_.raft().term();
  // A new leader knows nobody's last heartbeat: everyone gets a full lease.
  last_heard_ms_.clear();
  handoff_seen_ms_.clear();
  declaring_dead_.clear();
  expiring_.clear();
  placing_ = false;
  for (const auto& [id, w] : node_.state().workers()) {
    if (w.state != WorkerState::kDead) last_heard_ms_[id] = now;
  }
  for (const auto& id : node_.state().handoffs()) handoff_seen_ms_[id] = now;
  log_info("supervisor", "event=leading term=" + std::to_string(leading_term_.value()) +
                             " workers=" + std::to_string(last_heard_ms_.size()));
}

HeartbeatAnswer Supervisor::heartbeat(const WorkerId& worker) {
  const StateMachine& sm = node_.state();
  HeartbeatAnswer a;
  a.revision = sm.revision();
  const auto* w = sm.worker(worker);
  if (!w) {
    a.status = HeartbeatAnswer::Status::kUnknown;
    return a;
  }
  if (w->state == WorkerState::kDead) {
    a.status = HeartbeatAnswer::Status::kDead;
    return a;
  }
  last_heard_ms_[worker] = steady_ms();
  for (const auto& id : sm.shards_of(worker)) {
    const auto* s = sm.shard(id);
    if (s->state == ShardState::kHandoff) a.revoked.emplace_back(id, s->epoch);
  }
  return a;
}

void Supervisor::check_leases(uint64_t now) {
  const StateMachine& sm = node_.state();
  for (const auto& [id, w] : sm.workers()) {
    if (w.state == WorkerState::kDead || declaring_dead_.count(id)) continue;
    auto [it, fresh] = last_heard_ms_.try_emplace(id, now);  // registered since we became leader
    if (fresh || now - it->second <= options_.worker_lease_ms) continue;
    declaring_dead_.insert(id);
    auto placements = controlplane::plan_failover(sm, id, placement_options());
    size_t n = sm.shards_of(id).size();
    log_warn("supervisor", "event=lease_expired worker=" + id.str() + " silent_ms=" +
                               std::to_string(now - it->second) + " shards=" + std::to_string(n));
    Command cmd{"", 0, controlplane::DeclareDead{id, std::move(placements), ChangeReason::kDeadWorker}};
    node_.propose(std::move(cmd), [this, id, n](const NodeError* err, const controlplane::ApplyResult*) {
      declaring_dead_.erase(id);
      if (err) return;
      workers_declared_dead_.Increment();
      handoffs_.Add({{"reason", "dead_worker"}}).Increment(static_cast<double>(n));
    });
  }
}

void Supervisor::expire_handoffs(uint64_t now) {
  const StateMachine& sm = node_.state();
  std::map<WorkerId, controlplane::CompleteMoves> overdue;
  for (const auto& id : sm.handoffs()) {
    auto [it, fresh] = handoff_seen_ms_.try_emplace(id, now);
    if (fresh || expiring_.count(id) || now - it->second <= options_.worker_lease_ms) continue;
    const auto* s = sm.shard(id);
    auto& c = overdue[s->worker];
    c.from = s->worker;
    c.expired = true;
    c.shards.push_back(id);
    c.epochs.push_back(s->epoch);
  }
  for (auto& [from, c] : overdue) {
    for (const auto& id : c.shards) expiring_.insert(id);
    log_warn("supervisor", "event=handoff_unconfirmed from=" + from.str() + " shards=" + std::to_string(c.shards.size()) +
                               " action=lease_waited_out");
    auto shards = c.shards;
    node_.propose(Command{"", 0, std::move(c)}, [this, shards](const NodeError*, const controlplane::ApplyResult*) {
      for (const auto& id : shards) expiring_.erase(id);
    });
  }
}

void Supervisor::on_applied() {
  if (!leading_) return;
  const StateMachine& sm = node_.state();
  uint64_t now = steady_ms();
  for (auto it = handoff_seen_ms_.begin(); it != handoff_seen_ms_.end();) {
    if (sm.handoffs().count(it->first)) {
      ++it;
      continue;
    }
    // Completed (or the shard was deleted): account for it by its reason.
    const auto* s = sm.shard(it->first);
    std::string reason = s && !s->history.empty() ? to_string(s->history.back().reason) : "deleted";
    handoffs_.Add({{"reason", reason}}).Increment();
    handoff_seconds_
        .Add({{"reason", reason}}, prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                                          2.5, 5, 10})
        .Observe(static_cast<double>(now - it->second) / 1000.0);
    it = handoff_seen_ms_.erase(it);
  }
  for (const auto& id : sm.handoffs()) handoff_seen_ms_.try_emplace(id, now);
}

controlplane::Plan Supervisor::plan() const { return controlplane::plan_placement(node_.state(), placement_options()); }

void Supervisor::maybe_place(uint64_t now) {
  if (placing_) return;
  const StateMachine& sm = node_.state();
  bool changed = sm.revision() != last_place_revision_;
  uint64_t since = now - last_place_ms_;
  if (since < options_.placement_min_interval_ms) return;
  if (!changed && since < options_.placement_interval_ms) return;
  last_place_ms_ = now;
  last_place_revision_ = sm.revision();
  controlplane::Plan p = plan();
  if (p.assignments.empty() && p.moves.empty()) return;
  placing_ = true;
  execute(p, [this](const NodeError*, size_t) { placing_ = false; });
}

void Supervisor::execute(const controlplane::Plan& plan, std::function<void(const NodeError*, size_t)> done) {
  std::vector<Command> cmds;
  auto chunked = [&](const std::vector<controlplane::PlannedMove>& moves, bool handoff) {
    for (size_t i = 0; i < moves.size(); i += options_.max_placements_per_command) {
      std::vector<controlplane::Placement> ps;
      ChangeReason reason = moves[i].reason;
      for (size_t k = i; k < std::min(moves.size(), i + options_.max_placements_per_command); ++k) {
        ps.push_back({moves[k].shard, moves[k].to, moves[k].epoch});
      }
      if (handoff) {
        cmds.push_back(Command{"", 0, controlplane::BeginMoves{std::move(ps), reason}});
      } else {
        cmds.push_back(Command{"", 0, controlplane::AssignShards{std::move(ps), reason}});
      }
    }
  };
  chunked(plan.assignments, false);
  // Drains and rebalances are separate commands so each keeps its reason.
  std::vector<controlplane::PlannedMove> drain, rebalance;
  for (const auto& m : plan.moves) (m.reason == ChangeReason::kDrain ? drain : rebalance).push_back(m);
  chunked(drain, true);
  chunked(rebalance, true);
  if (cmds.empty()) return done(nullptr, 0);
  struct Tally {
    size_t left;
    size_t changed = 0;
    std::optional<NodeError> error;
    std::function<void(const NodeError*, size_t)> done;
  };
  auto tally = std::make_shared<Tally>(Tally{cmds.size(), 0, std::nullopt, std::move(done)});
  for (auto& c : cmds) {
    node_.propose(std::move(c), [tally](const NodeError* err, const controlplane::ApplyResult* r) {
      if (err) tally->error = *err;
      if (r) tally->changed += r->changed;
      if (--tally->left == 0) tally->done(tally->error ? &*tally->error : nullptr, tally->changed);
    });
  }
}

}  // namespace tenure::controller
