#include "controlplane/fleet_policy.h"

namespace tenure::controlplane {

const std::vector<std::string>& fleet_planted_bug_names() {
  static const std::vector<std::string> names{"fleet-no-full-lease", "fleet-lease-while-declaring-dead"};
  return names;
}

bool enable_fleet_planted_bug(FleetTestingKnobs& knobs, const std::string& name) {
  if (name == "fleet-no-full-lease") {
    knobs.no_full_lease = true;
  } else if (name == "fleet-lease-while-declaring-dead") {
    knobs.lease_while_declaring_dead = true;
  } else {
    return false;
  }
  return true;
}

PlacementOptions FleetPolicy::placement_options(uint64_t wall_ms) const {
  PlacementOptions o;
  o.max_concurrent_moves = options_.max_concurrent_moves;
  o.join_delay_ms = options_.join_delay_ms;
  o.now_ms = wall_ms;
  o.held = &held_until_ms_;
  o.hold_formerly_owned = holding_formerly_owned_;
  o.max_assignments_per_pass = options_.max_assignments_per_pass;
  o.max_failovers_per_pass = options_.max_failovers_per_pass;
  return o;
}

uint64_t FleetPolicy::grant_hold_ms(const StateMachine& sm, const ShardId& shard, uint64_t now_ms) {
  // The deletion may have applied since the last tick: note it first (a
  // move 43 ms after a deletion got through before, chaos seed 107).
  note_deletions(sm, now_ms);
  uint64_t until = 0;
  auto it = held_until_ms_.find(shard);
  if (it != held_until_ms_.end()) until = it->second;
  const Shard* s = sm.shard(shard);
  if (holding_formerly_owned_ && s && s->epoch > Epoch(0)) until = std::max(until, hold_formerly_owned_until_ms_);
  return until > now_ms ? until - now_ms : 0;
}

void FleetPolicy::note_deletions(const StateMachine& sm, uint64_t now_ms) {
  if (events_seen_ == sm.revision()) return;
  if (events_seen_ < sm.compacted_revision()) {
    // Deletions we did not see: hold whatever may be one of them.
    hold_formerly_owned_until_ms_ = now_ms + options_.lease_ms;
    holding_formerly_owned_ = true;
  } else {
    for (const auto& ev : sm.events_after(events_seen_, WorkerId(), SIZE_MAX)) {
      if (ev.type == EventType::kShardDeleted) held_until_ms_[ev.shard] = now_ms + options_.lease_ms;
    }
  }
  events_seen_ = sm.revision();
}

void FleetPolicy::start_leading(const StateMachine& sm, uint64_t now_ms) {
  leading_ = true;
  heard_.clear();
  handoff_seen_ms_.clear();
  prepare_seen_ms_.clear();
  ending_prepares_.clear();
  declaring_dead_.clear();
  lease_walk_due_ = true;
  failover_walk_due_ = true;
  moving_dead_shards_ = 0;
  last_continue_ms_ = 0;
  expiring_.clear();
  held_until_ms_.clear();
  hold_formerly_owned_until_ms_ = now_ms + options_.lease_ms;
  holding_formerly_owned_ = true;
  events_seen_ = sm.revision();
  placing_ = 0;
  placed_once_ = false;
  last_check_ms_ = now_ms;
  // A new leader knows nobody's last heartbeat: everyone gets a full lease.
  for (const auto& [id, w] : sm.workers()) {
    if (w.state != WorkerState::kDead) heard_.emplace_hint(heard_.end(), id, Heard{now_ms, w.since_ms});
  }
  track_phases(sm, now_ms);
}

void FleetPolicy::track_phases(const StateMachine& sm, uint64_t now_ms) {
  for (const auto& [id, h] : sm.handoffs()) {
    if (h.phase == HandoffPhase::kPreparing) {
      prepare_seen_ms_.try_emplace(id, now_ms);
    } else {
      handoff_seen_ms_.try_emplace(id, now_ms);
    }
  }
  for (auto it = prepare_seen_ms_.begin(); it != prepare_seen_ms_.end();) {
    const Handoff* h = sm.handoff(it->first);
    bool preparing = h && h->phase == HandoffPhase::kPreparing;
    it = preparing ? std::next(it) : prepare_seen_ms_.erase(it);
  }
}

void FleetPolicy::hold_leases(uint64_t stalled_ms, uint64_t now_ms) {
  for (auto& [id, h] : heard_) h.at_ms = std::min(now_ms, h.at_ms + stalled_ms);
}

HeartbeatAnswer FleetPolicy::heartbeat(const StateMachine& sm, const WorkerId& worker, uint64_t now_ms) {
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
  if (declaring_dead_.count(worker) && !options_.testing.lease_while_declaring_dead) {
    // Its DeclareDead is proposed but not applied yet: it will give the
    // worker's shards away, so no lease may be granted now (the timing
    // argument counts only heartbeats acknowledged before the decision).
    // "Unknown": the agent stops serving and registers again, forgetting
    // nothing, in case the declaration never applies.
    a.status = HeartbeatAnswer::Status::kUnknown;
    return a;
  }
  heard_[worker] = Heard{now_ms, w->since_ms};
  a.worker_revision = sm.worker_events_revision(worker);
  for (const auto& id : sm.handoffs_from(worker)) {
    if (sm.handoff(id)->phase == HandoffPhase::kDraining) a.revoked.emplace_back(id, sm.shard(id)->epoch);
  }
  return a;
}

std::vector<Decision> FleetPolicy::tick(const StateMachine& sm, uint64_t now_ms, uint64_t wall_ms) {
  std::vector<Decision> out;
  if (!leading_ || now_ms - last_check_ms_ < options_.check_interval_ms) return out;
  last_check_ms_ = now_ms;
  for (auto it = held_until_ms_.begin(); it != held_until_ms_.end();) {
    if (now_ms < it->second) {
      ++it;
      continue;
    }
    it = held_until_ms_.erase(it);
    hold_expired_ = true;
  }
  if (holding_formerly_owned_ && now_ms >= hold_formerly_owned_until_ms_) {
    holding_formerly_owned_ = false;
    hold_expired_ = true;
  }
  check_leases(sm, now_ms, wall_ms, out);
  continue_failovers(sm, now_ms, wall_ms, out);
  expire_handoffs(sm, now_ms, out);
  end_overdue_prepares(sm, now_ms, out);
  maybe_place(sm, now_ms, wall_ms, out);
  return out;
}

void FleetPolicy::check_leases(const StateMachine& sm, uint64_t now_ms, uint64_t wall_ms, std::vector<Decision>& out) {
  // Every 50 ms, walking 10,000 workers cost the leader's strand 6 % of a
  // core (bench/fleet_load, perf). The walk finds nothing new unless a
  // worker changed (each change is an event: the revision moves), a
  // decision ended (a declaration may have been dropped), or the oldest
  // heartbeat it kept can have run out: heartbeats and hold_leases only
  // move a worker's time forward, so that oldest bounds them all.
  if (!lease_walk_due_ && sm.revision() == walked_revision_ && now_ms - oldest_heard_ms_ <= options_.lease_ms) return;
  lease_walk_due_ = false;
  walked_revision_ = sm.revision();
  oldest_heard_ms_ = now_ms;
  std::vector<WorkerId> expired;
  // Walks with the workers, both in id order: `next` is the first entry
  // past the worker before. Entries between two workers' ids are of
  // workers removed meanwhile, and go.
  auto next = heard_.begin();
  for (const auto& [id, w] : sm.workers()) {
    while (next != heard_.end() && next->first < id) next = heard_.erase(next);
    auto mine = next != heard_.end() && next->first == id ? next++ : heard_.end();
    if (w.state == WorkerState::kDead || declaring_dead_.count(id)) continue;
    bool fresh = mine == heard_.end();
    if (fresh) mine = heard_.emplace_hint(next, id, Heard{now_ms, w.since_ms});  // registered since we started leading
    Heard& h = mine->second;
    if (!fresh && h.since_ms != w.since_ms) {
      // Came back (or changed state) since we last heard: a new lease, not the old clock.
      h.at_ms = now_ms;
      fresh = true;
    }
    h.since_ms = w.since_ms;
    oldest_heard_ms_ = std::min(oldest_heard_ms_, h.at_ms);
    if (fresh || now_ms - h.at_ms <= options_.lease_ms) continue;
    expired.push_back(id);
  }
  heard_.erase(next, heard_.end());  // past every worker's id: removed meanwhile
  if (expired.empty()) return;
  // One plan for every worker whose lease ran out in this pass: none of
  // them is given another's shards, and the placement model is built once.
  // While an earlier slice is in flight they are only declared dead (no
  // lease for them from now on); their shards follow in later slices.
  PlacementOptions opt = placement_options(wall_ms);
  if (moving_dead_shards_ > 0) opt.max_failovers_per_pass = 0;
  auto plans = plan_failovers(sm, expired, opt);
  for (size_t k = 0; k < expired.size(); ++k) {
    add_failover(sm, expired[k], std::move(plans[k]), /*declare=*/true, ChangeReason::kDeadWorker, out);
  }
}

void FleetPolicy::add_failover(const StateMachine& sm, const WorkerId& dead, std::vector<Placement> plan, bool declare,
                               ChangeReason reason, std::vector<Decision>& out) {
  size_t held = sm.shards_of(dead).size();
  auto cmds = failover_commands("", dead, std::move(plan), reason, declare, options_.max_command_list_bytes);
  for (size_t k = 0; k < cmds.size(); ++k) {
    Command& c = cmds[k];
    bool first = declare && k == 0;
    if (!first || !std::get<DeclareDead>(c.body).placements.empty()) ++moving_dead_shards_;
    Decision d{first ? Decision::Kind::kDeclareDead : Decision::Kind::kFailover, next_id_++, std::move(c), dead,
               first ? held : 0};
    if (first) {
      declaring_dead_.insert(dead);
    } else {
      d.shards = std::get<FailoverShards>(d.command.body).placements.size();
    }
    out.push_back(std::move(d));
  }
}

void FleetPolicy::continue_failovers(const StateMachine& sm, uint64_t now_ms, uint64_t wall_ms,
                                     std::vector<Decision>& out) {
  // Dead workers still holding shards: a failover larger than one pass
  // (max_failovers_per_pass), or pieces that failed. One plan for them all,
  // bounded like the first, and passes no more often than placements, so
  // that pieces failing under load (a busy or changing leader) do not turn
  // into a storm of planning.
  if (moving_dead_shards_ > 0 || now_ms - last_continue_ms_ < options_.placement_min_interval_ms) return;
  // The walk finds the same workers until the state changes or a decision
  // ends (a declaration in flight excludes its worker): in a steady fleet
  // it walked all 10,000 workers 20 times a second and found nobody.
  if (!failover_walk_due_ && sm.revision() == failover_walked_revision_) return;
  failover_walk_due_ = false;
  failover_walked_revision_ = sm.revision();
  std::vector<WorkerId> left;
  for (const auto& [id, w] : sm.workers()) {
    if (w.state != WorkerState::kDead || sm.shards_of(id).empty()) continue;
    // Its declaration still in flight: the dead state is not applied yet.
    if (declaring_dead_.count(id)) continue;
    left.push_back(id);
  }
  if (left.empty()) return;
  last_continue_ms_ = now_ms;
  auto plans = plan_failovers(sm, left, placement_options(wall_ms));
  for (size_t k = 0; k < left.size(); ++k) {
    if (plans[k].empty()) continue;
    add_failover(sm, left[k], std::move(plans[k]), /*declare=*/false, ChangeReason::kDeadWorker, out);
  }
}

void FleetPolicy::expire_handoffs(const StateMachine& sm, uint64_t now_ms, std::vector<Decision>& out) {
  std::map<WorkerId, CompleteMoves> overdue;
  for (const auto& [id, h] : sm.handoffs()) {
    const auto* s = sm.shard(id);
    // The source serves a preparing shard under its lease like any other.
    if (h.phase == HandoffPhase::kPreparing) continue;
    auto [it, fresh] = handoff_seen_ms_.try_emplace(id, now_ms);
    if (fresh || expiring_.count(id) || now_ms - it->second <= options_.lease_ms) continue;
    auto& c = overdue[s->worker];
    c.from = s->worker;
    c.expired = true;
    c.shards.push_back(id);
    c.epochs.push_back(s->epoch);
  }
  for (auto& [from, c] : overdue) {
    for (const auto& id : c.shards) expiring_.insert(id);
    for (auto& cmd : complete_moves_commands("", std::move(c), options_.max_command_list_bytes)) {
      size_t n = std::get<CompleteMoves>(cmd.body).shards.size();
      out.push_back(Decision{Decision::Kind::kExpireHandoffs, next_id_++, std::move(cmd), from, n});
    }
  }
}

void FleetPolicy::end_overdue_prepares(const StateMachine& sm, uint64_t now_ms, std::vector<Decision>& out) {
  std::map<WorkerId, EndPrepares> overdue;
  for (const auto& [id, seen] : prepare_seen_ms_) {
    if (ending_prepares_.count(id) || now_ms - seen <= options_.prepare_timeout_ms) continue;
    const Shard* s = sm.shard(id);
    const Handoff* h = sm.handoff(id);
    if (!h || h->phase != HandoffPhase::kPreparing) continue;
    auto& c = overdue[h->target];
    c.target = h->target;
    c.expired = true;
    c.shards.push_back(id);
    c.epochs.push_back(s->epoch.next());
  }
  for (auto& [target, c] : overdue) {
    for (const auto& id : c.shards) ending_prepares_.insert(id);
    for (auto& cmd : end_prepares_commands("", std::move(c), options_.max_command_list_bytes)) {
      size_t n = std::get<EndPrepares>(cmd.body).shards.size();
      out.push_back(Decision{Decision::Kind::kEndPrepares, next_id_++, std::move(cmd), target, n});
    }
  }
}

void FleetPolicy::maybe_place(const StateMachine& sm, uint64_t now_ms, uint64_t wall_ms, std::vector<Decision>& out) {
  if (placing_ > 0) return;
  uint64_t since = now_ms - last_place_ms_;
  bool changed = !placed_once_ || sm.revision() != last_place_revision_ || hold_expired_;
  if (placed_once_ && since < options_.placement_min_interval_ms) return;
  if (!changed && since < options_.placement_interval_ms) return;
  placed_once_ = true;
  hold_expired_ = false;
  last_place_ms_ = now_ms;
  last_place_revision_ = sm.revision();
  for (auto& cmd : plan_commands(plan(sm, wall_ms))) {
    Decision d{Decision::Kind::kPlace, next_id_++, std::move(cmd), WorkerId(), 0};
    ++placing_;
    out.push_back(std::move(d));
  }
}

void FleetPolicy::finished(const Decision& d) {
  lease_walk_due_ = true;
  failover_walk_due_ = true;
  switch (d.kind) {
    case Decision::Kind::kDeclareDead:
      declaring_dead_.erase(d.worker);
      if (!std::get<DeclareDead>(d.command.body).placements.empty() && moving_dead_shards_ > 0) --moving_dead_shards_;
      break;
    case Decision::Kind::kFailover:
      if (moving_dead_shards_ > 0) --moving_dead_shards_;
      break;
    case Decision::Kind::kExpireHandoffs:
      for (const auto& id : std::get<CompleteMoves>(d.command.body).shards) expiring_.erase(id);
      break;
    case Decision::Kind::kPlace:
      if (placing_ > 0) --placing_;
      break;
    case Decision::Kind::kEndPrepares:
      for (const auto& id : std::get<EndPrepares>(d.command.body).shards) ending_prepares_.erase(id);
      break;
  }
}

std::vector<FinishedHandoff> FleetPolicy::on_applied(const StateMachine& sm, uint64_t now_ms) {
  std::vector<FinishedHandoff> done;
  if (!leading_) return done;
  note_deletions(sm, now_ms);
  for (auto it = handoff_seen_ms_.begin(); it != handoff_seen_ms_.end();) {
    if (sm.handoffs().count(it->first)) {
      ++it;
      continue;
    }
    const auto* s = sm.shard(it->first);
    FinishedHandoff f{it->first, "deleted", now_ms - it->second};
    if (s) {
      const LastChange& h = s->last;
      f.reason = to_string(h.reason);
      f.prepare_ms = h.prepare_ms;
      f.drain_ms = h.drain_ms;
      f.prepared = h.prepared;
    }
    done.push_back(std::move(f));
    it = handoff_seen_ms_.erase(it);
  }
  track_phases(sm, now_ms);
  return done;
}

Plan FleetPolicy::plan(const StateMachine& sm, uint64_t wall_ms) const {
  return plan_placement(sm, placement_options(wall_ms));
}

std::vector<Command> FleetPolicy::plan_commands(const Plan& plan) const {
  std::vector<Command> cmds;
  // One command per reason (so history records why), each bounded in bytes
  // (command_split.h) and in placements.
  auto chunked = [&](const std::vector<PlannedMove>& moves, bool handoff) {
    std::map<ChangeReason, std::vector<Placement>> by_reason;
    for (const auto& m : moves) by_reason[m.reason].push_back({m.shard, m.to, m.epoch});
    for (auto& [reason, all] : by_reason) {
      auto runs = split_by_bytes(std::move(all), options_.max_command_list_bytes,
                                 [](const Placement& p) { return encoded_size(p); },
                                 std::max<size_t>(1, options_.max_placements_per_command));
      for (auto& ps : runs) {
        Command c;
        if (handoff) {
          c.body = BeginMoves{std::move(ps), reason};
        } else {
          c.body = AssignShards{std::move(ps), reason};
        }
        cmds.push_back(std::move(c));
      }
    }
  };
  chunked(plan.assignments, false);
  chunked(plan.moves, true);
  return cmds;
}

}  // namespace tenure::controlplane
