#include "controller/supervisor.h"
#include "common/steady_clock.h"

#include <chrono>

#include "common/log.h"

namespace tenure::controller {

using controlplane::Decision;

namespace {
}  // namespace

Supervisor::Supervisor(RaftNode& node, controlplane::FleetPolicyOptions options, prometheus::Registry& registry)
    : node_(node),
      policy_(options),
      handoffs_(prometheus::BuildCounter()
                    .Name("tenure_handoffs_total")
                    .Help("Ownership moves completed under this leader, by reason")
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

void Supervisor::on_tick() {
  auto& raft = node_.raft();
  if (raft.role() != consensus::Role::kLeader) {
    policy_.stop_leading();
    return;
  }
  uint64_t now = steady_ms();
  if (!policy_.leading() || leading_term_ != raft.term()) {
    leading_term_ = raft.term();
    policy_.start_leading(node_.state(), now);
    log_info("supervisor", "event=leading term=" + std::to_string(leading_term_.value()) +
                               " workers=" + std::to_string(node_.state().workers().size()));
  }
  // §6.4: until this term's first entry commits, the applied state may miss
  // what earlier leaders decided; decide nothing on it.
  if (!raft.committed_in_current_term() || raft.log().applied() < raft.log().committed()) return;
  for (auto& d : policy_.tick(node_.state(), now, wall_clock_ms())) propose(std::move(d));
}

void Supervisor::propose(Decision d) {
  if (d.kind == Decision::Kind::kDeclareDead) {
    log_warn("supervisor", "event=lease_expired worker=" + d.worker.str() + " shards=" + std::to_string(d.shards));
  } else if (d.kind == Decision::Kind::kExpireHandoffs) {
    log_warn("supervisor", "event=handoff_unconfirmed from=" + d.worker.str() + " shards=" +
                               std::to_string(d.shards) + " action=lease_waited_out");
  }
  controlplane::Command cmd = d.command;
  node_.propose(std::move(cmd), [this, d = std::move(d)](const NodeError* err, const controlplane::ApplyResult* r) {
    policy_.finished(d);
    if (err || !r) return;
    if (d.kind == Decision::Kind::kDeclareDead && r->code == controlplane::ApplyCode::kOk) {
      workers_declared_dead_.Increment();
    }
    if (d.kind == Decision::Kind::kDeclareDead || d.kind == Decision::Kind::kFailover) {
      handoffs_.Add({{"reason", "dead_worker"}}).Increment(static_cast<double>(r->changed));
    }
  });
}

void Supervisor::on_applied() {
  for (const auto& h : policy_.on_applied(node_.state(), steady_ms())) {
    handoffs_.Add({{"reason", h.reason}}).Increment();
    handoff_seconds_
        .Add({{"reason", h.reason}},
             prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})
        .Observe(static_cast<double>(h.duration_ms) / 1000.0);
  }
}

HeartbeatAnswer Supervisor::heartbeat(const controlplane::WorkerId& worker) {
  return policy_.heartbeat(node_.state(), worker, steady_ms());
}

controlplane::Plan Supervisor::plan() const { return policy_.plan(node_.state(), wall_clock_ms()); }

void Supervisor::execute(const controlplane::Plan& plan, std::function<void(const NodeError*, size_t)> done) {
  auto cmds = policy_.plan_commands(plan);
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
