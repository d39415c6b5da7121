#include "controlplane/agent_service.h"

#include <algorithm>

#include "controlplane/command_split.h"
#include "controlplane/placement.h"
#include "controlplane/propose_pieces.h"

namespace tenure::controlplane {

namespace {

CallError consensus_error(const PortError& e) {
  CallError c;
  c.kind = CallError::Kind::kConsensus;
  c.consensus = e;
  return c;
}

CallError refused_error(const ApplyResult& r) {
  CallError c;
  c.kind = CallError::Kind::kRefused;
  c.refused = r;
  return c;
}

CallError error_of(CallError::Kind kind) {
  CallError c;
  c.kind = kind;
  return c;
}

/// The total changed and the highest revision over the pieces that applied.
std::pair<size_t, Revision> tally(const PiecesOutcome& o) {
  size_t changed = 0;
  Revision revision;
  for (const auto& r : o.results) {
    changed += r.changed;
    revision = std::max(revision, r.revision);
  }
  return {changed, revision};
}

}  // namespace

void AgentService::register_worker(RegisterWorker r, std::string request_id, std::function<void(LeaseReply)> done) {
  const auto* w = port_.state().worker(r.id);
  bool same = w && w->state != WorkerState::kDead && w->address == r.address && w->zone == r.zone &&
              w->capacity == r.capacity && w->prepares == r.prepares;
  // A reconnecting agent with nothing new costs no log entry.
  WorkerId id = r.id;
  if (same) return confirmed_lease(id, std::move(done));
  port_.propose(Command{std::move(request_id), 0, std::move(r)},
                [this, id, done = std::move(done)](const PortError* err, const ApplyResult* res) mutable {
                  LeaseReply reply;
                  if (err) reply.error = consensus_error(*err);
                  if (!err && res->code != ApplyCode::kOk) reply.error = refused_error(*res);
                  if (reply.error) return done(std::move(reply));
                  confirmed_lease(id, std::move(done));
                });
}

void AgentService::heartbeat(const WorkerId& worker, std::function<void(LeaseReply)> done) {
  confirmed_lease(worker, std::move(done));
}

void AgentService::confirmed_lease(const WorkerId& worker, std::function<void(LeaseReply)> done) {
  port_.confirm([this, worker, done = std::move(done)](const PortError* err) {
    LeaseReply reply;
    if (err) {
      reply.error = consensus_error(*err);
    } else if (!port_.leading()) {
      // Confirmed, but by a leadership that has moved on since: a lease
      // granted now would be a deposed leader's.
      reply.error = error_of(CallError::Kind::kLeadershipMoved);
    } else {
      reply.lease = leader_.heard(worker);
      reply.lease_ms = leader_.options().lease_ms;
    }
    done(std::move(reply));
  });
}

void AgentService::release(CompleteMoves c, std::string request_id, std::function<void(ReleaseReply)> done) {
  propose_shard_list(complete_moves_commands(request_id, std::move(c), leader_.options().max_command_list_bytes),
                     std::move(done));
}

void AgentService::prepared(EndPrepares c, std::string request_id, std::function<void(ReleaseReply)> done) {
  propose_shard_list(end_prepares_commands(request_id, std::move(c), leader_.options().max_command_list_bytes),
                     std::move(done));
}

void AgentService::propose_shard_list(std::vector<Command> cmds, std::function<void(ReleaseReply)> done) {
  propose_pieces(port_, std::move(cmds), [done = std::move(done)](PiecesOutcome o) {
    ReleaseReply reply;
    if (o.error) {
      reply.error = consensus_error(*o.error);
    } else if (const auto* refused = first_refused(o)) {
      reply.error = refused_error(*refused);
    } else {
      std::tie(reply.released, reply.revision) = tally(o);
    }
    done(std::move(reply));
  });
}

void AgentService::leave(const WorkerId& worker, std::string request_id, std::function<void(LeaveReply)> done) {
  const auto& sm = port_.state();
  if (!sm.worker(worker)) {
    LeaveReply reply;
    reply.error = error_of(CallError::Kind::kUnknownWorker);
    return done(std::move(reply));
  }
  const auto& options = leader_.options();
  PlacementOptions opt;
  opt.max_concurrent_moves = options.max_concurrent_moves;
  opt.join_delay_ms = options.join_delay_ms;
  opt.now_ms = port_.wall_ms();
  // Planned on the strand like a failover, so bounded like one: past the
  // bound the policy moves the rest as a failover (continue_failovers).
  opt.max_failovers_per_pass = options.max_failovers_per_pass;
  // The agent has stopped accepting writes: its shards may move at once.
  auto cmds = failover_commands(request_id, worker, plan_failover(sm, worker, opt), ChangeReason::kReleased,
                                /*declare=*/true, options.max_command_list_bytes);
  propose_pieces(port_, std::move(cmds), [done = std::move(done)](PiecesOutcome o) {
    LeaveReply reply;
    if (o.error) {
      reply.error = consensus_error(*o.error);
    } else if (o.results.empty()) {
      reply.error = error_of(CallError::Kind::kNotApplied);
    } else if (o.results.front().code != ApplyCode::kOk) {
      // The DeclareDead itself was refused; later pieces depend on it.
      reply.error = refused_error(o.results.front());
    } else {
      std::tie(reply.moved, reply.revision) = tally(o);
    }
    done(std::move(reply));
  });
}

}  // namespace tenure::controlplane
