#include "sim/fleet_controller.h"

#include "controlplane/command_split.h"

namespace tenure::sim {

using consensus::Role;
using controlplane::ApplyCode;
using controlplane::ApplyResult;
using controlplane::Command;
using controlplane::CallError;
using controlplane::Decision;
using controlplane::HeartbeatAnswer;
using controlplane::PortError;

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
  p.max_assignments_per_pass = o.max_assignments_per_pass;
  p.max_failovers_per_pass = o.max_failovers_per_pass;
  p.max_command_list_bytes = o.max_command_list_bytes;
  p.prepare_timeout_ms = o.controller_prepare_timeout_ms;
  // The controller-side planted bugs are knobs of the production policy
  // and loop; the agent-side ones (fleet-lease-*) are the agent model's.
  controlplane::enable_fleet_planted_bug(p.testing, o.bug);
  return p;
}

/// The simulated wire's status for a call the service could not answer.
FleetStatus status_of(const CallError& e) {
  switch (e.kind) {
    case CallError::Kind::kRefused: return FleetStatus::kRefused;
    case CallError::Kind::kUnknownWorker: return FleetStatus::kNotFound;
    case CallError::Kind::kConsensus:
    case CallError::Kind::kLeadershipMoved:
    case CallError::Kind::kNotApplied: return FleetStatus::kUnavailable;
  }
  return FleetStatus::kUnavailable;
}

/// A release's or a prepared's (shard, epoch) pairs as the command's two lists.
void split_shard_epochs(const std::vector<agent::ShardEpoch>& in, std::vector<controlplane::ShardId>& shards,
                        std::vector<controlplane::Epoch>& epochs) {
  for (const auto& s : in) {
    shards.push_back(s.shard);
    epochs.push_back(s.epoch);
  }
}

agent::WatchEvent::Kind kind_of(controlplane::EventType t) {
  switch (t) {
    case controlplane::EventType::kGrant: return agent::WatchEvent::Kind::kGrant;
    case controlplane::EventType::kRevoke: return agent::WatchEvent::Kind::kRevoke;
    case controlplane::EventType::kShardDeleted: return agent::WatchEvent::Kind::kShardDeleted;
    case controlplane::EventType::kWorker: return agent::WatchEvent::Kind::kWorker;
    case controlplane::EventType::kPrepare: return agent::WatchEvent::Kind::kPrepare;
  }
  return agent::WatchEvent::Kind::kUnknown;
}

}  // namespace

NodeController::NodeController(Node& node, const FleetOptions& o, ControllerEnv& env)
    : node_(node),
      life_(node.incarnation()),
      o_(o),
      env_(env),
      leader_(*this, policy_options(o), this),
      agents_(*this, leader_) {}

const controlplane::StateMachine& NodeController::state() const {
  return static_cast<const FleetStateMachine&>(node_.state_machine()).fleet();
}

// ---- The port: requests to the member ----

bool NodeController::leading() const { return alive() && node_.raft().role() == Role::kLeader; }

bool NodeController::caught_up() const {
  const auto& raft = node_.raft();
  return raft.committed_in_current_term() && node_.applied() >= raft.log().committed();
}

void NodeController::submit(ClientRequest r, int64_t timeout_us, ReplyFn done) {
  r.client = kFleetClient;
  r.attempt = env_.next_request_id();
  pending_[r.attempt] = Pending{std::move(done), env_.now() + timeout_us};
  // Never from inside the member's Ready processing (replies come from
  // there): the member takes the request as a separate input.
  env_.after(0, [this, r] {
    env_.run_on(node_, [this, r] {
      if (!alive()) return;
      node_.handle(r);
      env_.observe(node_);
    });
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
  for (auto it = forwarded_.begin(); it != forwarded_.end();) {
    if (it->second.deadline_us > now) {
      ++it;
      continue;
    }
    NodeId agent = it->second.agent;
    uint64_t id = it->second.id;
    it = forwarded_.erase(it);
    answer_status(agent, id, FleetStatus::kUnavailable);
  }
}

namespace {
/// What the member's reply (none: timed out) means as a port error.
PortError port_error(const ClientReply* rep) {
  PortError e;
  if (!rep) {
    e.code = PortError::Code::kTimeout;
    e.message = "request timed out";
  } else if (rep->kind == ReplyKind::kNotLeader) {
    e.code = PortError::Code::kNotLeader;
    e.message = "not the leader";
    e.leader = rep->hint;
  } else {
    e.code = PortError::Code::kDropped;
    e.message = "lost to a leader change; retry";
  }
  return e;
}
}  // namespace

void NodeController::propose(Command cmd, ProposeDone done) {
  // The leader stamps its time; apply never reads a clock.
  cmd.at_ms = env_.wall_ms(node_);
  ClientRequest r;
  r.write = true;
  r.command = controlplane::encode_command(cmd);
  submit(std::move(r), static_cast<int64_t>(o_.request_timeout_ms) * 1000, [this, done](const ClientReply* rep) {
    if (!rep || rep->kind != ReplyKind::kOk) {
      PortError e = port_error(rep);
      return done(&e, nullptr);
    }
    // The reply comes right after the entry was applied: its result is the last one.
    done(nullptr, &static_cast<const FleetStateMachine&>(node_.state_machine()).last_result());
  });
}

void NodeController::confirm(ConfirmDone done) {
  // A linearizable read: the member answers once a ReadIndex round
  // confirmed leadership and it applied up to the read index.
  ClientRequest r;
  r.write = false;
  r.key = "fleet";
  submit(std::move(r), static_cast<int64_t>(o_.request_timeout_ms) * 1000, [done](const ClientReply* rep) {
    if (rep && rep->kind == ReplyKind::kOk) return done(nullptr);
    PortError e = port_error(rep);
    done(&e);
  });
}

// ---- The leader's loop (controlplane::LeaderService) ----

void NodeController::on_tick() {
  expire();
  if (alive()) leader_.on_tick();
}

void NodeController::on_applied() {
  if (alive()) leader_.on_applied();
}

void NodeController::on_leading(Term term, const controlplane::StateMachine&) {
  if (env_.tracing()) {
    env_.trace("fleet: " + node_.id().str() + " leads term " + std::to_string(term.value()) +
               " clock=" + std::to_string(env_.clock_ms(node_)));
  }
}

void NodeController::on_decided(const Decision& d) {
  ++decisions_;
  if (!env_.tracing()) return;
  env_.trace("fleet: " + node_.id().str() + " decides " +
             (d.kind == Decision::Kind::kDeclareDead      ? "declare-dead " + d.worker.str()
              : d.kind == Decision::Kind::kFailover       ? "failover " + d.worker.str() + " (" +
                                                                std::to_string(d.shards) + " shards)"
              : d.kind == Decision::Kind::kExpireHandoffs ? "expire-handoffs from " + d.worker.str()
              : d.kind == Decision::Kind::kEndPrepares    ? "end-prepares to " + d.worker.str()
                                                           : std::string("place")));
}

// ---- Agents' calls: the simulated wire to controlplane::AgentService ----

void NodeController::answer(const NodeId& to, FleetAnswer a) { env_.answer(node_, to, std::move(a)); }

void NodeController::answer_status(const NodeId& to, uint64_t id, FleetStatus s) {
  FleetAnswer a;
  a.id = id;
  a.status = s;
  answer(to, std::move(a));
}

void NodeController::on_request(const NodeId& from, const FleetRequest& r) {
  if (!alive()) return;
  // The calls whose routes need the leader (needs_leader in api/agent_routes.cc).
  bool needs_leader = r.call == FleetCall::kRegister || r.call == FleetCall::kHeartbeat ||
                      r.call == FleetCall::kRelease || r.call == FleetCall::kLeave || r.call == FleetCall::kPrepared;
  if (needs_leader && node_.raft().role() != Role::kLeader) return forward_to_leader(from, r);
  auto lease_done = [this, from, r](controlplane::LeaseReply reply) { lease(from, r, reply); };
  auto answer_shard_list = [this, from, id = r.id](controlplane::ReleaseReply reply) {
    answer_status(from, id, reply.error ? status_of(*reply.error) : FleetStatus::kOk);
  };
  switch (r.call) {
    case FleetCall::kRegister:
      return agents_.register_worker(
          controlplane::RegisterWorker{r.worker, r.address, r.zone, r.capacity, r.prepares}, "", lease_done);
    case FleetCall::kHeartbeat: return agents_.heartbeat(r.worker, lease_done);
    case FleetCall::kRelease: {
      controlplane::CompleteMoves c;
      c.from = r.worker;
      split_shard_epochs(r.shards, c.shards, c.epochs);
      return agents_.release(std::move(c), "", answer_shard_list);
    }
    case FleetCall::kPrepared: {
      controlplane::EndPrepares c;
      c.target = r.worker;
      split_shard_epochs(r.shards, c.shards, c.epochs);
      return agents_.prepared(std::move(c), "", answer_shard_list);
    }
    case FleetCall::kList: return serve_list(from, r);
    case FleetCall::kWatch: return serve_watch(from, r);
    case FleetCall::kLeave:
      return agents_.leave(r.worker, "", [this, from, id = r.id](controlplane::LeaveReply reply) {
        answer_status(from, id, reply.error ? status_of(*reply.error) : FleetStatus::kOk);
      });
  }
}

void NodeController::forward_to_leader(const NodeId& agent, const FleetRequest& r) {
  // As ControllerApi::forward_to_leader: one hop only, to the leader this
  // member knows, answered 503 when there is none or it does not answer.
  NodeId leader = node_.raft().leader();
  if (r.forwarded || leader.empty() || leader == node_.id()) {
    return answer_status(agent, r.id, FleetStatus::kUnavailable);
  }
  FleetRequest f = r;
  f.forwarded = true;
  f.id = env_.next_request_id();
  int64_t deadline = env_.now() + static_cast<int64_t>(o_.request_timeout_ms) * 1000;
  forwarded_.emplace(f.id, Forwarded{agent, r.id, deadline});
  env_.forward(node_, leader, std::move(f));
}

void NodeController::on_forwarded_answer(const FleetAnswer& a) {
  if (!alive()) return;
  auto it = forwarded_.find(a.id);
  if (it == forwarded_.end()) return;  // timed out already
  FleetAnswer relay = a;
  relay.id = it->second.id;
  NodeId agent = it->second.agent;
  forwarded_.erase(it);
  answer(agent, std::move(relay));
}

void NodeController::lease(const NodeId& agent, const FleetRequest& r, const controlplane::LeaseReply& reply) {
  if (reply.error) return answer_status(agent, r.id, status_of(*reply.error));
  if (env_.tracing()) {
    env_.trace("fleet: " + node_.id().str() + " term " + std::to_string(node_.raft().term().value()) + " heard " +
               r.worker.str() + " at clock=" + std::to_string(env_.clock_ms(node_)) + " (" + to_string(r.call) + ")");
  }
  const HeartbeatAnswer& h = reply.lease;
  FleetAnswer a;
  a.id = r.id;
  switch (h.status) {
    case HeartbeatAnswer::Status::kUnknown: a.status = FleetStatus::kNotFound; break;
    case HeartbeatAnswer::Status::kDead: a.status = FleetStatus::kDead; break;
    case HeartbeatAnswer::Status::kOk:
      a.status = FleetStatus::kOk;
      a.lease.lease_ms = static_cast<uint32_t>(reply.lease_ms);
      a.lease.revision = h.revision;
      a.lease.worker_revision = h.worker_revision;
      for (const auto& [shard, epoch] : h.revoked) a.lease.revoked.push_back({shard, epoch});
      break;
  }
  answer(agent, std::move(a));
}

void NodeController::serve_list(const NodeId& agent, const FleetRequest& r) {
  confirm([this, agent, r](const PortError* err) {
    if (err || !alive()) return answer_status(agent, r.id, FleetStatus::kUnavailable);
    const auto& sm = state();
    FleetAnswer a;
    a.id = r.id;
    a.status = FleetStatus::kOk;
    a.list.revision = sm.revision();
    for (const auto& id : sm.shards_of(r.worker)) {
      const auto* s = sm.shard(id);
      // As GET /v1/shards?worker=W (api/list_pages.cc): a handoff's phase too.
      const auto* h = sm.handoff(id);
      std::string phase = h ? controlplane::to_string(h->phase) : "";
      a.list.shards.push_back({id, s->worker, s->epoch, controlplane::to_string(s->state), std::move(phase)});
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

}  // namespace tenure::sim
