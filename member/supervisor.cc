#include "member/supervisor.h"

#include "common/log.h"
#include "common/steady_clock.h"

namespace tenure::member {

// ---- The port over the driver ----

using controlplane::PortError;

void RaftNodePort::propose(controlplane::Command cmd, ProposeDone done) {
  // The driver stamps the command with its wall clock on the strand.
  node_.propose(std::move(cmd), [done = std::move(done)](const NodeError* err, const controlplane::ApplyResult* r) {
    if (!err) return done(nullptr, r);
    PortError p = to_port_error(*err);
    done(&p, nullptr);
  });
}

void RaftNodePort::confirm(ConfirmDone done) {
  node_.read([done = std::move(done)](const NodeError* err, const controlplane::StateMachine*) {
    if (!err) return done(nullptr);
    PortError p = to_port_error(*err);
    done(&p);
  });
}

bool RaftNodePort::leading() const { return node_.raft().role() == consensus::Role::kLeader; }

bool RaftNodePort::caught_up() const {
  const auto& raft = node_.raft();
  return raft.committed_in_current_term() && raft.log().applied() >= raft.log().committed();
}

uint64_t RaftNodePort::steady_ms() const { return tenure::steady_ms(); }


// ---- The supervisor ----

using controlplane::Decision;

Supervisor::Supervisor(RaftNode& node, controlplane::FleetPolicyOptions options, prometheus::Registry& registry)
    : port_(node),
      leader_(port_, options, this),
      agents_(port_, leader_),
      handoffs_(prometheus::BuildCounter()
                    .Name("tenure_handoffs_total")
                    .Help("Ownership moves completed under this leader, by reason")
                    .Register(registry)),
      handoff_seconds_(prometheus::BuildHistogram()
                           .Name("tenure_handoff_duration_seconds")
                           .Help("Graceful handoff duration (revoke to grant), by reason")
                           .Register(registry)),
      phase_seconds_(prometheus::BuildHistogram()
                         .Name("tenure_handoff_phase_seconds")
                         .Help("Planned moves' phases: the target preparing, the source draining (revoke to release)")
                         .Register(registry)),
      phase_timeouts_(prometheus::BuildCounter()
                          .Name("tenure_handoff_phase_timeouts_total")
                          .Help("Handoff phases this leader ended at their timeout (prepare: prepare_timeout_ms; "
                                "drain: the source's lease), in shards")
                          .Register(registry)),
      workers_declared_dead_(prometheus::BuildCounter()
                                 .Name("tenure_workers_declared_dead_total")
                                 .Help("Workers this leader declared dead after their lease ran out")
                                 .Register(registry)
                                 .Add({})) {}

void Supervisor::on_leading(consensus::Term term, const controlplane::StateMachine& sm) {
  log_info("supervisor", "event=leading term=" + std::to_string(term.value()) +
                             " workers=" + std::to_string(sm.workers().size()));
}

void Supervisor::on_decided(const Decision& d) {
  if (d.kind == Decision::Kind::kDeclareDead) {
    log_warn("supervisor", "event=lease_expired worker=" + d.worker.str() + " shards=" + std::to_string(d.shards));
  } else if (d.kind == Decision::Kind::kExpireHandoffs) {
    log_warn("supervisor", "event=handoff_unconfirmed from=" + d.worker.str() + " shards=" +
                               std::to_string(d.shards) + " action=lease_waited_out");
    phase_timeouts_.Add({{"phase", "drain"}}).Increment(static_cast<double>(d.shards));
  } else if (d.kind == Decision::Kind::kEndPrepares) {
    log_warn("supervisor", "event=prepare_timed_out target=" + d.worker.str() + " shards=" +
                               std::to_string(d.shards) + " action=drain_anyway");
    phase_timeouts_.Add({{"phase", "prepare"}}).Increment(static_cast<double>(d.shards));
  }
}

void Supervisor::on_decision_done(const Decision& d, const controlplane::PortError* err,
                                  const controlplane::ApplyResult* r) {
  if (err || !r) return;
  if (d.kind == Decision::Kind::kDeclareDead && r->code == controlplane::ApplyCode::kOk) {
    workers_declared_dead_.Increment();
  }
  if (d.kind == Decision::Kind::kDeclareDead || d.kind == Decision::Kind::kFailover) {
    handoffs_.Add({{"reason", "dead_worker"}}).Increment(static_cast<double>(r->changed));
  }
}

void Supervisor::on_handoffs_finished(const std::vector<controlplane::FinishedHandoff>& done) {
  const prometheus::Histogram::BucketBoundaries buckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
  for (const auto& h : done) {
    handoffs_.Add({{"reason", h.reason}}).Increment();
    handoff_seconds_.Add({{"reason", h.reason}}, buckets).Observe(static_cast<double>(h.duration_ms) / 1000.0);
    if (h.prepared) phase_seconds_.Add({{"phase", "prepare"}}, buckets).Observe(h.prepare_ms / 1000.0);
    phase_seconds_.Add({{"phase", "drain"}}, buckets).Observe(h.drain_ms / 1000.0);
  }
}

}  // namespace tenure::member
