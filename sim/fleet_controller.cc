#include "sim/fleet_controller.h"

#include "controlplane/command_split.h"
#include "controlplane/placement.h"

namespace tenure::sim {

using consensus::Role;
using controlplane::ApplyCode;
using controlplane::ApplyResult;
using controlplane::Command;
using controlplane::Decision;
using controlplane::HeartbeatAnswer;

namespace {

controlplane::FleetPolicyOptions policy_options(const FleetOptions& o) {
  controlplane::FleetPolicyOptions p;
  p.lease_ms = o.lease_ms;
  p.max_concurrent_moves = o.max_concurrent_moves;
  p.join_delay_ms = o.join_delay_ms;
  p.check_interval_ms = o.check_interval_ms;
  p.placement_interval_ms = o.placement_interval_ms;
  p.placement_min_interval_ms = o.placement_min_interval_ms;
  p.max_placements_per_command = o.max_placements_per_command;
  p.max_command_list_bytes = o.max_command_list_bytes;
  return p;
}

agent::WatchEvent::Kind kind_of(controlplane::EventType t) {
  switch (t) {
    case controlplane::EventType::kGrant: return agent::WatchEvent::Kind::kGrant;
    case controlplane::EventType::kRevoke: return agent::WatchEvent::Kind::kRevoke;
    case controlplane::EventType::kShardDeleted: return agent::WatchEvent::Kind::kShardDeleted;
    case controlplane::EventType::kWorker: return agent::WatchEvent::Kind::kWorker;
  }
  return agent::WatchEvent::Kind::kUnknown;
}

}  // namespace

NodeController::NodeController(Node& node, const FleetOptions& o, ControllerEnv& env)
    : node_(node), life_(node.incarnation()), o_(o), env_(env), policy_(policy_options(o)) {}

const controlplane::StateMachine& NodeController::state() const {
  return static_cast<const FleetStateMachine&>(node_.state_machine()).fleet();
}

// ---- Requests to the member ----

void NodeController::submit(ClientRequest r, int64_t timeout_us, ReplyFn done) {
  r.client = kFleetClient;
  r.attempt = env_.next_request_id();
  pending_[r.attempt] = Pending{std::move(done), env_.now() + timeout_us};
  // Never from inside the member's Ready processing (replies come from
  // there): the member takes the request as a separate input.
  env_.after(0, [this, r] {
    if (!alive()) return;
    node_.handle(r);
    env_.observe(node_);
  });
}

void NodeController::on_reply(const ClientReply& r) {
  auto it = pending_.find(r.attempt);
  if (it == pending_.end()) return;  // timed out already
  ReplyFn done = std::move(it->second.done);
  pending_.erase(it);
  done(&r);
}

void NodeController::expire() {
  int64_t now = env_.now();
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline_us > now) {
      ++it;
      continue;
    }
    ReplyFn done = std::move(it->second.done);
    it = pending_.erase(it);
    done(nullptr);
  }
}

void NodeController::propose(Command cmd, Done done) {
  // The leader stamps its time; apply never reads a clock.
  cmd.at_ms = env_.wall_ms(node_);
  ClientRequest r;
  r.write = true;
  r.command = controlplane::encode_command(cmd);
  submit(std::move(r), static_cast<int64_t>(o_.request_timeout_ms) * 1000, [this, done](const ClientReply* rep) {
    if (!rep || rep->kind != ReplyKind::kOk) return done(false, nullptr);
    // The reply comes right after the entry was applied: its result is the last one.
    done(true, &static_cast<const FleetStateMachine&>(node_.state_machine()).last_result());
  });
}

void NodeController::read(std::function<void(bool ok)> done) {
  ClientRequest r;
  r.write = false;
  r.key = "fleet";
  submit(std::move(r), static_cast<int64_t>(o_.request_timeout_ms) * 1000,
         [done](const ClientReply* rep) { done(rep && rep->kind == ReplyKind::kOk); });
}

// ---- The leader's policy (controller/supervisor.cc) ----

void NodeController::on_tick() {
  expire();
  if (!alive() || node_.raft().role() != Role::kLeader) return;
  const auto& raft = node_.raft();
  uint64_t now = env_.clock_ms(node_);
  if (!policy_.leading() || leading_term_ != raft.term()) {
    leading_term_ = raft.term();
    uint64_t from = now;
    // Planted: the new leader counts every lease as half gone already.
    if (o_.bug == "fleet-no-full-lease") from = now - o_.lease_ms / 2;
    policy_.start_leading(state(), from);
    if (env_.tracing()) {
      env_.trace("fleet: " + node_.id().str() + " leads term " + std::to_string(raft.term().value()) +
                 " clock=" + std::to_string(now));
    }
  }
  // §6.4: until this term's first entry commits, the applied state may miss
  // what earlier leaders decided; decide nothing on it.
  if (!raft.committed_in_current_term() || node_.applied() < raft.log().committed()) return;
  for (auto& d : policy_.tick(state(), now, env_.wall_ms(node_))) {
    ++decisions_;
    if (env_.tracing()) {
      env_.trace("fleet: " + node_.id().str() + " decides " +
                 (d.kind == Decision::Kind::kDeclareDead      ? "declare-dead " + d.worker.str()
                  : d.kind == Decision::Kind::kFailover       ? "failover " + d.worker.str() + " (" +
                                                                    std::to_string(d.shards) + " shards)"
                  : d.kind == Decision::Kind::kExpireHandoffs ? "expire-handoffs from " + d.worker.str()
                                                               : std::string("place")));
    }
    Command cmd = d.command;
    propose(std::move(cmd), [this, d](bool, const ApplyResult*) { policy_.finished(d); });
  }
}

void NodeController::on_applied() {
  if (alive()) policy_.on_applied(state(), env_.clock_ms(node_));
}

// ---- Agents' calls (api/agent_routes.cc) ----

void NodeController::answer(const NodeId& to, FleetAnswer a) { env_.answer(node_, to, std::move(a)); }

void NodeController::answer_status(const NodeId& to, uint64_t id, FleetStatus s) {
  FleetAnswer a;
  a.id = id;
  a.status = s;
  answer(to, std::move(a));
}

void NodeController::on_request(const NodeId& from, const FleetRequest& r) {
  if (!alive()) return;
  switch (r.call) {
    case FleetCall::kRegister: {
      const auto* w = state().worker(r.worker);
      bool same = w && w->state != controlplane::WorkerState::kDead && w->address == r.address && w->zone == r.zone &&
                  w->capacity == r.capacity;
      // A reconnecting agent with nothing new costs no log entry.
      if (same) return confirmed_lease(from, r);
      Command cmd;
      cmd.body = controlplane::RegisterWorker{r.worker, r.address, r.zone, r.capacity};
      propose(std::move(cmd), [this, from, r](bool ok, const ApplyResult* res) {
        if (!ok) return answer_status(from, r.id, FleetStatus::kUnavailable);
        if (res->code != ApplyCode::kOk) return answer_status(from, r.id, FleetStatus::kRefused);
        confirmed_lease(from, r);
      });
      return;
    }
    case FleetCall::kHeartbeat: return confirmed_lease(from, r);
    case FleetCall::kRelease: {
      controlplane::CompleteMoves c;
      c.from = r.worker;
      for (const auto& s : r.shards) {
        c.shards.push_back(s.shard);
        c.epochs.push_back(s.epoch);
      }
      propose_all(controlplane::complete_moves_commands("", std::move(c), o_.max_command_list_bytes),
                  [this, from, id = r.id](bool ok, const std::vector<ApplyResult>&) {
                    answer_status(from, id, ok ? FleetStatus::kOk : FleetStatus::kUnavailable);
                  });
      return;
    }
    case FleetCall::kList: return serve_list(from, r);
    case FleetCall::kWatch: return serve_watch(from, r);
    case FleetCall::kLeave: return leave(from, r);
  }
}

void NodeController::confirmed_lease(const NodeId& agent, const FleetRequest& r) {
  // A lease may only be granted by the leader of the moment: leadership is
  // confirmed with a quorum (ReadIndex) after the heartbeat arrived.
  read([this, agent, r](bool ok) {
    if (!ok || !alive() || node_.raft().role() != Role::kLeader) {
      return answer_status(agent, r.id, FleetStatus::kUnavailable);
    }
    HeartbeatAnswer h = policy_.heartbeat(state(), r.worker, env_.clock_ms(node_));
    const auto* w = state().worker(r.worker);
    if (o_.bug == "fleet-lease-while-declaring-dead" && h.status == HeartbeatAnswer::Status::kUnknown && w &&
        w->state != controlplane::WorkerState::kDead) {
      // Planted (d5bd9e2 undone): the policy refuses a worker whose DeclareDead
      // is in flight; grant its lease anyway, as the policy did before.
      h.status = HeartbeatAnswer::Status::kOk;
      h.worker_revision = state().worker_events_revision(r.worker);
      for (const auto& id : state().shards_of(r.worker)) {
        const auto* s = state().shard(id);
        if (s->state == controlplane::ShardState::kHandoff) h.revoked.emplace_back(id, s->epoch);
      }
    }
    if (env_.tracing()) {
      env_.trace("fleet: " + node_.id().str() + " term " + std::to_string(node_.raft().term().value()) + " heard " +
                 r.worker.str() + " at clock=" + std::to_string(env_.clock_ms(node_)) + " (" + to_string(r.call) + ")");
    }
    FleetAnswer a;
    a.id = r.id;
    switch (h.status) {
      case HeartbeatAnswer::Status::kUnknown: a.status = FleetStatus::kNotFound; break;
      case HeartbeatAnswer::Status::kDead: a.status = FleetStatus::kDead; break;
      case HeartbeatAnswer::Status::kOk:
        a.status = FleetStatus::kOk;
        a.lease.lease_ms = static_cast<uint32_t>(o_.lease_ms);
        a.lease.revision = h.revision;
        a.lease.worker_revision = h.worker_revision;
        for (const auto& [shard, epoch] : h.revoked) a.lease.revoked.push_back({shard, epoch});
        break;
    }
    answer(agent, std::move(a));
  });
}

void NodeController::serve_list(const NodeId& agent, const FleetRequest& r) {
  read([this, agent, r](bool ok) {
    if (!ok || !alive()) return answer_status(agent, r.id, FleetStatus::kUnavailable);
    const auto& sm = state();
    FleetAnswer a;
    a.id = r.id;
    a.status = FleetStatus::kOk;
    a.list.revision = sm.revision();
    for (const auto& id : sm.shards_of(r.worker)) {
      const auto* s = sm.shard(id);
      a.list.shards.push_back({id, s->worker, s->epoch, controlplane::to_string(s->state)});
    }
    answer(agent, std::move(a));
  });
}

void NodeController::serve_watch(const NodeId& agent, const FleetRequest& r) {
  const auto& sm = state();
  FleetAnswer a;
  a.id = r.id;
  if (r.after < sm.compacted_revision()) {
    a.status = FleetStatus::kGone;
    return answer(agent, std::move(a));
  }
  constexpr size_t kMaxEvents = 1000;
  a.status = FleetStatus::kOk;
  for (const auto& e : sm.events_after(r.after, r.worker, kMaxEvents)) {
    agent::WatchEvent w;
    w.kind = kind_of(e.type);
    w.revision = e.revision;
    w.shard = e.shard;
    w.worker = e.worker;
    w.epoch = e.epoch;
    w.state = e.worker_state;
    w.at_ms = static_cast<int64_t>(e.at_ms);
    a.events.push_back(std::move(w));
  }
  a.progress = a.events.size() == kMaxEvents ? a.events.back().revision : sm.revision();
  answer(agent, std::move(a));
}

void NodeController::leave(const NodeId& agent, const FleetRequest& r) {
  const auto& sm = state();
  if (!sm.worker(r.worker)) return answer_status(agent, r.id, FleetStatus::kNotFound);
  // The agent has stopped accepting writes: its shards may move at once.
  controlplane::PlacementOptions opt;
  opt.max_concurrent_moves = o_.max_concurrent_moves;
  opt.join_delay_ms = o_.join_delay_ms;
  opt.now_ms = env_.wall_ms(node_);
  // Bounded pieces, as api/agent_routes.cc proposes them.
  auto cmds = controlplane::failover_commands("", r.worker, controlplane::plan_failover(sm, r.worker, opt),
                                              controlplane::ChangeReason::kReleased, /*declare=*/true,
                                              o_.max_command_list_bytes);
  propose_all(std::move(cmds), [this, agent, id = r.id](bool ok, const std::vector<ApplyResult>& res) {
    if (!ok || res.empty()) return answer_status(agent, id, FleetStatus::kUnavailable);
    answer_status(agent, id, res.front().code == ApplyCode::kOk ? FleetStatus::kOk : FleetStatus::kRefused);
  });
}

void NodeController::propose_all(std::vector<Command> cmds, AllDone done) {
  struct Tally {
    size_t left;
    bool ok = true;
    std::vector<ApplyResult> results;
    AllDone done;
  };
  auto tally = std::make_shared<Tally>(Tally{cmds.size(), true, {}, std::move(done)});
  if (cmds.empty()) return tally->done(true, tally->results);
  for (auto& c : cmds) {
    // Results are copied at once: the state machine's last result changes with the next entry.
    propose(std::move(c), [tally](bool ok, const ApplyResult* res) {
      if (!ok) tally->ok = false;
      if (ok && res) tally->results.push_back(*res);
      if (--tally->left == 0) tally->done(tally->ok, tally->results);
    });
  }
}

}  // namespace tenure::sim
