#include "controlplane/state_machine.h"

#include <algorithm>

#include "consensus/assert.h"

namespace tenure::controlplane {

namespace {
const ShardIdSet kNoShards;

template <class... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <class... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

/// Calls fn(id, shard, epoch) for each shard a command names with its
/// epoch (CompleteMoves, EndPrepares) that still exists.
template <class Fn>
void for_each_named(std::map<ShardId, Shard>& shards, const std::vector<ShardId>& ids,
                    const std::vector<Epoch>& epochs, Fn fn) {
  for (size_t i = 0; i < ids.size(); ++i) {
    auto it = shards.find(ids[i]);
    if (it != shards.end()) fn(ids[i], it->second, i < epochs.size() ? epochs[i] : Epoch(0));
  }
}

ApplyResult fail(ApplyCode code, std::string message) {
  ApplyResult r;
  r.code = code;
  r.message = std::move(message);
  return r;
}
}  // namespace

const char* to_string(EventType t) {
  switch (t) {
    case EventType::kGrant: return "grant";
    case EventType::kRevoke: return "revoke";
    case EventType::kShardDeleted: return "shard_deleted";
    case EventType::kWorker: return "worker";
    case EventType::kPrepare: return "prepare";
  }
  return "?";
}

const Shard* StateMachine::shard(const ShardId& id) const {
  auto it = shards_.find(id);
  return it == shards_.end() ? nullptr : &it->second;
}

const Worker* StateMachine::worker(const WorkerId& id) const {
  auto it = workers_.find(id);
  return it == workers_.end() ? nullptr : &it->second;
}

const ShardIdSet& StateMachine::shards_of(const WorkerId& id) const {
  auto it = owned_.find(id);
  return it == owned_.end() ? kNoShards : it->second;
}

const Handoff* StateMachine::handoff(const ShardId& id) const {
  auto it = handoffs_.find(id);
  return it == handoffs_.end() ? nullptr : &it->second;
}

const ShardIdSet& StateMachine::handoffs_from(const WorkerId& id) const {
  auto it = handoffs_from_.find(id);
  return it == handoffs_from_.end() ? kNoShards : it->second;
}

size_t StateMachine::count(WorkerState s) const { return worker_counts_[static_cast<size_t>(s)]; }

namespace {
/// The id's part before the last separator; empty when it has none.
std::string_view request_scope(std::string_view id) {
  size_t at = id.rfind(kRequestScopeSeparator);
  return at == std::string_view::npos ? std::string_view() : id.substr(0, at);
}
/// The request a (piece's) id belongs to: the id without its piece number.
std::string_view request_of(std::string_view id) {
  size_t scope_end = id.rfind(kRequestScopeSeparator);
  size_t piece = id.find(kRequestPieceSeparator, scope_end == std::string_view::npos ? 0 : scope_end);
  return piece == std::string_view::npos ? id : id.substr(0, piece);
}
}  // namespace

ApplyResult StateMachine::apply(const Command& cmd) {
  if (!cmd.request_id.empty()) {
    auto it = request_results_.find(cmd.request_id);
    if (it != request_results_.end()) return it->second.unpack();
    std::string_view scope = request_scope(cmd.request_id);
    auto used = scope.empty() ? request_scopes_.end() : request_scopes_.find(std::string(scope));
    // Another piece of the same request is no reuse of the key.
    if (used != request_scopes_.end() && request_of(used->second) != request_of(cmd.request_id)) {
      ApplyResult r;
      r.code = ApplyCode::kIdempotencyMismatch;
      r.message = "this Idempotency-Key was used for another request (route, path or body differ)";
      r.revision = revision_;
      return r;
    }
  }
  ApplyResult r = apply_body(cmd);
  r.revision = revision_;
  if (!cmd.request_id.empty()) remember_request(cmd.request_id, r);
  return r;
}

void StateMachine::remember_scope(const std::string& id) {
  std::string_view scope = request_scope(id);
  if (!scope.empty()) request_scopes_[std::string(scope)] = id;
}

void StateMachine::remember_request(const std::string& id, const ApplyResult& r) {
  request_results_.emplace(id, StoredResult::pack(r));
  request_order_.push_back(id);
  remember_scope(id);
  while (request_order_.size() > limits_.request_ids_kept) {
    const std::string& old = request_order_.front();
    auto scope = request_scopes_.find(std::string(request_scope(old)));
    if (scope != request_scopes_.end() && scope->second == old) request_scopes_.erase(scope);
    request_results_.erase(old);
    request_order_.pop_front();
  }
}

namespace {
std::string pack_ids(const std::vector<ShardId>& ids) {
  // Kept for as long as the request may be retried: sized exactly, as
  // appending alone leaves up to twice the bytes allocated (11 MB of a
  // million ids' results, in a heap profile).
  size_t bytes = ids.empty() ? 0 : ids.size() - 1;
  for (const auto& id : ids) bytes += id.str().size();
  std::string out;
  out.reserve(bytes);
  for (const auto& id : ids) {
    if (!out.empty()) out += '\n';
    out += id.str();
  }
  return out;
}

std::vector<ShardId> unpack_ids(std::string_view packed) {
  std::vector<ShardId> out;
  while (!packed.empty()) {
    size_t end = std::min(packed.find('\n'), packed.size());
    out.emplace_back(std::string(packed.substr(0, end)));
    packed.remove_prefix(std::min(end + 1, packed.size()));
  }
  return out;
}
}  // namespace

StateMachine::StoredResult StateMachine::StoredResult::pack(const ApplyResult& r) {
  return StoredResult{r.code, r.message, r.revision, pack_ids(r.created), pack_ids(r.existing), r.changed};
}

ApplyResult StateMachine::StoredResult::unpack() const {
  ApplyResult r;
  r.code = code;
  r.message = message;
  r.revision = revision;
  r.created = unpack_ids(created);
  r.existing = unpack_ids(existing);
  r.changed = changed;
  return r;
}

ApplyResult StateMachine::apply_body(const Command& cmd) {
  uint64_t at = cmd.at_ms;
  now_ms_ = at;
  return std::visit(
      Overloaded{
          [&](const CreateShards& c) { return create_shards(c, at); },
          [&](const DeleteShard& c) { return delete_shard(c, at); },
          [&](const RegisterWorker& c) { return register_worker(c, at); },
          [&](const SetDraining& c) { return set_draining(c, at); },
          [&](const RemoveWorker& c) { return remove_worker(c); },
          [&](const AssignShards& c) { return assign(c, at); },
          [&](const DeclareDead& c) { return declare_dead(c, at); },
          [&](const FailoverShards& c) { return failover_shards(c, at); },
          [&](const BeginMoves& c) { return begin_moves(c, at); },
          [&](const CompleteMoves& c) { return complete_moves(c, at); },
          [&](const EndPrepares& c) { return end_prepares(c, at); },
          [&](const MarkMembersStarted& c) { return mark_members_started(c); },
      },
      cmd.body);
}

Revision StateMachine::emit(EventType type, const ShardId& shard, const WorkerId& worker, Epoch epoch,
                            std::string worker_state) {
  revision_ = revision_.next();
  events_.push_back(Event{revision_, type, shard, worker, epoch, std::move(worker_state), now_ms_});
  if (!worker.empty()) worker_events_[worker] = revision_;
  while (events_.size() > limits_.events_kept) {
    events_compacted_ = events_.front().revision;
    events_.pop_front();
  }
  return revision_;
}

void StateMachine::set_shard_state(const ShardId& id, Shard& s, ShardState state) {
  if (state == ShardState::kHandoff) {
    handoffs_.try_emplace(id);
    handoffs_from_[s.worker].insert(key(id));
  } else if (s.state == ShardState::kHandoff) {
    handoffs_.erase(id);
    auto it = handoffs_from_.find(s.worker);
    it->second.erase(id);
    if (it->second.empty()) handoffs_from_.erase(it);
  }
  if (s.state == ShardState::kUnassigned && state != ShardState::kUnassigned) unassigned_.erase(id);
  if (state == ShardState::kUnassigned && s.state != ShardState::kUnassigned) unassigned_.insert(key(id));
  --shard_counts_[static_cast<size_t>(s.state)];
  ++shard_counts_[static_cast<size_t>(state)];
  s.state = state;
}

void StateMachine::change_owner(const ShardId& id, Shard& s, const WorkerId& to, ChangeReason reason,
                                uint64_t at_ms, const LastChange* phases) {
  // Copies: s.worker (and a caller's `to` taken from a shard) refers to
  // the index entry of its owner, which goes below once it owns nothing.
  const WorkerId from = s.worker;
  const WorkerId target = to;
  if (!from.empty()) {
    // The old owner hears it lost the shard; a handoff's source heard it
    // when it was asked to drain, unless the move was still preparing.
    const Handoff* h = handoff(id);
    bool told = h && h->phase == HandoffPhase::kDraining;
    if (s.state != ShardState::kUnassigned && !told) emit(EventType::kRevoke, id, from, s.epoch);
  }
  s.epoch = s.epoch.next();
  // Before the owner changes: a handoff is indexed by its old owner.
  set_shard_state(id, s, target.empty() ? ShardState::kUnassigned : ShardState::kActive);
  if (!from.empty()) {
    auto was = owned_.find(from);
    was->second.erase(id);
    if (was->second.empty()) owned_.erase(was);
  }
  s.worker = OwnerRef();
  Revision rev;
  if (target.empty()) {
    revision_ = revision_.next();
    rev = revision_;
  } else {
    rev = emit(EventType::kGrant, id, target, s.epoch);
    auto owner = owned_.try_emplace(target).first;
    owner->second.insert(key(id));
    s.worker = OwnerRef(&owner->first);
  }
  s.last = phases ? *phases : LastChange{};
  s.last.reason = reason;
  if (history_) {
    HistoryRecord h{rev, s.epoch, from, target, reason};
    h.at_ms = at_ms;
    h.prepared = s.last.prepared;
    h.prepare_timed_out = s.last.prepare_timed_out;
    h.drain_timed_out = s.last.drain_timed_out;
    h.prepare_ms = s.last.prepare_ms;
    h.drain_ms = s.last.drain_ms;
    history_->record(id, h);
  }
}

void StateMachine::set_worker_state(const WorkerId& id, Worker& w, WorkerState state, uint64_t at_ms) {
  --worker_counts_[static_cast<size_t>(w.state)];
  ++worker_counts_[static_cast<size_t>(state)];
  w.state = state;
  w.since_ms = at_ms;
  emit(EventType::kWorker, ShardId(), id, Epoch(0), to_string(state));
}

bool StateMachine::accepts_shards(const WorkerId& id) const {
  const Worker* w = worker(id);
  return w && w->state == WorkerState::kAlive;
}

ApplyResult StateMachine::create_shards(const CreateShards& c, uint64_t) {
  for (const auto& id : c.ids) {
    if (!valid_shard_id(id.str())) return fail(ApplyCode::kInvalid, "invalid shard id \"" + id.str() + "\"");
  }
  ApplyResult r;
  std::set<ShardId> existing;  // a set, not a search of r.existing: 100,000 ids that all exist
  for (const auto& id : c.ids) {
    if (shards_.count(id)) {
      if (existing.insert(id).second) r.existing.push_back(id);
      continue;
    }
    Shard s;
    auto tomb = deleted_epochs_.find(id);
    if (tomb != deleted_epochs_.end()) {
      s.epoch = tomb->second;
      deleted_epochs_.erase(tomb);
    }
    auto at = shards_.emplace(id, std::move(s)).first;
    ++shard_counts_[static_cast<size_t>(ShardState::kUnassigned)];
    shard_id_bytes_ += id.str().size();
    unassigned_.insert(at->first);
    revision_ = revision_.next();
    r.created.push_back(id);
  }
  return r;
}

ApplyResult StateMachine::delete_shard(const DeleteShard& c, uint64_t at_ms) {
  auto it = shards_.find(c.id);
  if (it == shards_.end()) return fail(ApplyCode::kNotFound, "shard \"" + c.id.str() + "\" not found");
  Shard& s = it->second;
  // The grant is revoked first: the owner hears a revoke, and the epoch
  // moves on so that no write fenced with the old epoch is accepted again.
  if (s.state != ShardState::kUnassigned) change_owner(c.id, s, WorkerId(), ChangeReason::kDeleted, at_ms);
  deleted_epochs_[c.id] = s.epoch;
  emit(EventType::kShardDeleted, c.id, WorkerId(), s.epoch);
  if (history_) history_->erase(c.id, revision_);
  --shard_counts_[static_cast<size_t>(s.state)];
  unassigned_.erase(c.id);
  shard_id_bytes_ -= c.id.str().size();
  shards_.erase(it);
  ApplyResult r;
  r.changed = 1;
  return r;
}

ApplyResult StateMachine::register_worker(const RegisterWorker& c, uint64_t at_ms) {
  if (!valid_worker_id(c.id.str())) return fail(ApplyCode::kInvalid, "invalid worker id \"" + c.id.str() + "\"");
  if (!(c.capacity > 0)) return fail(ApplyCode::kInvalid, "capacity must be > 0");
  auto existing = workers_.find(c.id);
  if (existing != workers_.end() && existing->second.state == WorkerState::kDead && !shards_of(c.id).empty()) {
    // Its failover is not complete: the shards it still holds go elsewhere
    // first (each moves once); the agent registers again at its next tick.
    return fail(ApplyCode::kConflict, "worker \"" + c.id.str() + "\" is being failed over (" +
                                          std::to_string(shards_of(c.id).size()) + " shards left); retry");
  }
  auto [it, inserted] = workers_.try_emplace(c.id);
  Worker& w = it->second;
  if (inserted) ++worker_counts_[static_cast<size_t>(w.state)];
  bool changed = inserted || w.address != c.address || w.zone != c.zone || w.capacity != c.capacity ||
                 w.prepares != c.prepares;
  w.address = c.address;
  w.zone = c.zone;
  w.capacity = c.capacity;
  w.prepares = c.prepares;
  if (inserted || w.state == WorkerState::kDead) {
    set_worker_state(c.id, w, w.drain_requested ? WorkerState::kDraining : WorkerState::kAlive, at_ms);
  } else if (changed) {
    emit(EventType::kWorker, ShardId(), c.id, Epoch(0), to_string(w.state));
  }
  return ApplyResult{};
}

ApplyResult StateMachine::set_draining(const SetDraining& c, uint64_t at_ms) {
  auto it = workers_.find(c.id);
  if (it == workers_.end()) return fail(ApplyCode::kNotFound, "worker \"" + c.id.str() + "\" not found");
  Worker& w = it->second;
  if (w.state == WorkerState::kDead) return fail(ApplyCode::kConflict, "worker \"" + c.id.str() + "\" is dead");
  w.drain_requested = c.draining;
  WorkerState want = c.draining ? WorkerState::kDraining : WorkerState::kAlive;
  if (w.state != want) set_worker_state(c.id, w, want, at_ms);
  if (c.draining) lose_target(c.id, /*gone=*/false);
  return ApplyResult{};
}

ApplyResult StateMachine::remove_worker(const RemoveWorker& c) {
  auto it = workers_.find(c.id);
  if (it == workers_.end()) return fail(ApplyCode::kNotFound, "worker \"" + c.id.str() + "\" not found");
  bool drained = it->second.state == WorkerState::kDraining && shards_of(c.id).empty();
  if (it->second.state != WorkerState::kDead && !drained) {
    return fail(ApplyCode::kConflict, "worker \"" + c.id.str() + "\" is neither dead nor drained");
  }
  if (!shards_of(c.id).empty()) {
    return fail(ApplyCode::kConflict, "worker \"" + c.id.str() + "\" is being failed over (" +
                                          std::to_string(shards_of(c.id).size()) + " shards left); retry");
  }
  lose_target(c.id, /*gone=*/true);
  --worker_counts_[static_cast<size_t>(it->second.state)];
  workers_.erase(it);
  emit(EventType::kWorker, ShardId(), c.id, Epoch(0), "removed");
  worker_events_.erase(c.id);
  return ApplyResult{};
}

ApplyResult StateMachine::assign(const AssignShards& c, uint64_t at_ms) {
  ApplyResult r;
  for (const auto& p : c.placements) {
    auto it = shards_.find(p.shard);
    if (it == shards_.end()) continue;
    Shard& s = it->second;
    // Stale placements (the shard moved on since the leader planned) are skipped.
    if (s.state != ShardState::kUnassigned || s.epoch != p.expected_epoch || !accepts_shards(p.worker)) continue;
    change_owner(p.shard, s, p.worker, c.reason, at_ms);
    ++r.changed;
  }
  return r;
}

ApplyResult StateMachine::declare_dead(const DeclareDead& c, uint64_t at_ms) {
  auto it = workers_.find(c.id);
  if (it == workers_.end()) return fail(ApplyCode::kNotFound, "worker \"" + c.id.str() + "\" not found");
  if (it->second.state == WorkerState::kDead) return ApplyResult{};
  set_worker_state(c.id, it->second, WorkerState::kDead, at_ms);
  lose_target(c.id, /*gone=*/true);
  ApplyResult r;
  r.changed = move_from_dead(c.id, c.placements, c.reason, at_ms);
  return r;
}

ApplyResult StateMachine::failover_shards(const FailoverShards& c, uint64_t at_ms) {
  auto it = workers_.find(c.id);
  if (it == workers_.end()) return fail(ApplyCode::kNotFound, "worker \"" + c.id.str() + "\" not found");
  if (it->second.state != WorkerState::kDead) {
    return fail(ApplyCode::kConflict, "worker \"" + c.id.str() + "\" is not dead");
  }
  ApplyResult r;
  r.changed = move_from_dead(c.id, c.placements, c.reason, at_ms);
  return r;
}

size_t StateMachine::move_from_dead(const WorkerId& dead, const std::vector<Placement>& placements,
                                    ChangeReason reason, uint64_t at_ms) {
  size_t changed = 0;
  for (const auto& p : placements) {
    auto it = shards_.find(p.shard);
    if (it == shards_.end()) continue;
    Shard& s = it->second;
    // Only what the dead worker still holds at the planned epoch: a shard
    // that moved meanwhile (an earlier piece, a completed handoff) moves no more.
    if (s.worker != dead || s.epoch != p.expected_epoch) continue;
    // A worker that cannot take shards now: left for the policy to plan again.
    if (!p.worker.empty() && !accepts_shards(p.worker)) continue;
    change_owner(p.shard, s, p.worker, reason, at_ms);
    ++changed;
  }
  return changed;
}

ApplyResult StateMachine::begin_moves(const BeginMoves& c, uint64_t at_ms) {
  ApplyResult r;
  for (const auto& p : c.placements) {
    auto it = shards_.find(p.shard);
    if (it == shards_.end()) continue;
    Shard& s = it->second;
    // A dead owner's shards are the failover's, never a handoff's (no release would come).
    const Worker* owner = worker(s.worker);
    if (s.state != ShardState::kActive || s.epoch != p.expected_epoch || s.worker == p.worker ||
        !accepts_shards(p.worker) || !owner || owner->state == WorkerState::kDead) {
      continue;
    }
    set_shard_state(p.shard, s, ShardState::kHandoff);
    Handoff& h = handoffs_.at(p.shard);
    h.target = p.worker;
    h.since_ms = at_ms;
    h.reason = c.reason;
    h.prepared = worker(p.worker)->prepares;
    if (h.prepared) {
      // The source keeps serving while the target prepares: no revoke yet.
      h.phase = HandoffPhase::kPreparing;
      emit(EventType::kPrepare, p.shard, p.worker, s.epoch.next());
    } else {
      begin_drain(p.shard, s, h, at_ms);
    }
    ++r.changed;
  }
  return r;
}

ApplyResult StateMachine::complete_moves(const CompleteMoves& c, uint64_t at_ms) {
  ApplyResult r;
  for_each_named(shards_, c.shards, c.epochs, [&](const ShardId& id, Shard& s, Epoch e) {
    if (s.state != ShardState::kHandoff || s.worker != c.from || s.epoch != e) return;
    const Handoff& h = handoffs_.at(id);
    WorkerId to = accepts_shards(h.target) ? h.target : WorkerId();
    // The phases, from the commands' clocks (a release while the target
    // still prepared ends both at once).
    bool preparing = h.phase == HandoffPhase::kPreparing;
    uint64_t drain_from = preparing ? at_ms : h.drain_since_ms;
    auto ms = [](uint64_t from, uint64_t to) {
      return static_cast<uint32_t>(std::min<uint64_t>(to > from ? to - from : 0, UINT32_MAX));
    };
    LastChange phases;
    phases.prepare_ms = ms(h.since_ms, drain_from);
    phases.drain_ms = ms(drain_from, at_ms);
    phases.prepared = h.prepared;
    phases.prepare_timed_out = h.prepare_timed_out;
    phases.drain_timed_out = c.expired;
    ChangeReason reason = h.reason;  // h goes with the handoff
    change_owner(id, s, to, reason, at_ms, &phases);
    ++r.changed;
  });
  return r;
}

ApplyResult StateMachine::end_prepares(const EndPrepares& c, uint64_t at_ms) {
  ApplyResult r;
  for_each_named(shards_, c.shards, c.epochs, [&](const ShardId& id, Shard& s, Epoch e) {
    // Only the move the target was told of: the same target, the same grant epoch.
    auto h = handoffs_.find(id);
    if (h == handoffs_.end() || h->second.phase != HandoffPhase::kPreparing || h->second.target != c.target ||
        s.epoch.next() != e) {
      return;
    }
    h->second.prepare_timed_out = c.expired;
    begin_drain(id, s, h->second, at_ms);
    ++r.changed;
  });
  return r;
}

void StateMachine::begin_drain(const ShardId& id, const Shard& s, Handoff& h, uint64_t at_ms) {
  h.phase = HandoffPhase::kDraining;
  h.drain_since_ms = at_ms;
  emit(EventType::kRevoke, id, s.worker, s.epoch);
}

void StateMachine::lose_target(const WorkerId& id, bool gone) {
  std::vector<ShardId> called_off;
  for (auto& [shard, h] : handoffs_) {
    if (h.target != id) continue;
    if (h.phase == HandoffPhase::kPreparing) {
      called_off.push_back(shard);
      h.target = WorkerId();
    } else if (gone) {
      h.target = WorkerId();
    }
  }
  for (const auto& shard : called_off) {
    // The source was never asked to drain and still serves: it simply
    // keeps the shard, at the same epoch (placement plans it again).
    set_shard_state(shard, shards_.at(shard), ShardState::kActive);
    revision_ = revision_.next();
  }
}

ApplyResult StateMachine::mark_members_started(const MarkMembersStarted& c) {
  // Not a change of the fleet: no revision, no event.
  for (const auto& id : c.ids) started_members_.insert(id);
  return ApplyResult{};
}

}  // namespace tenure::controlplane
