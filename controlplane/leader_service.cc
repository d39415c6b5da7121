#include "controlplane/leader_service.h"

#include <memory>
#include <optional>

namespace tenure::controlplane {

LeaderService::LeaderService(ConsensusPort& port, FleetPolicyOptions options, LeaderObserver* observer)
    : port_(port), policy_(options), observer_(observer) {}

void LeaderService::on_tick() {
  if (!port_.leading()) {
    policy_.stop_leading();
    return;
  }
  uint64_t now = port_.steady_ms();
  uint64_t stalled = port_.stalled_ms();
  if (policy_.leading() && stalled > stalled_seen_) policy_.hold_leases(stalled - stalled_seen_, now);
  stalled_seen_ = stalled;
  if (!policy_.leading() || leading_term_ != port_.term()) {
    leading_term_ = port_.term();
    uint64_t from = now;
    // Planted (testing only): every lease counted as half gone at the election.
    if (options().testing.no_full_lease) from = now - std::min(now, options().lease_ms / 2);
    policy_.start_leading(port_.state(), from);
    if (observer_) observer_->on_leading(leading_term_, port_.state());
  }
  // §6.4: until this term's first entry commits, the applied state may miss
  // what earlier leaders decided; decide nothing on it.
  if (!port_.caught_up()) return;
  for (auto& d : policy_.tick(port_.state(), now, port_.wall_ms())) propose(std::move(d));
}

void LeaderService::propose(Decision d) {
  if (observer_) observer_->on_decided(d);
  Command cmd = d.command;
  port_.propose(std::move(cmd), [this, d = std::move(d)](const PortError* err, const ApplyResult* r) {
    // Applied, refused or failed: the policy may decide it again.
    policy_.finished(d);
    if (observer_) observer_->on_decision_done(d, err, r);
  });
}

void LeaderService::on_applied() {
  auto done = policy_.on_applied(port_.state(), port_.steady_ms());
  if (observer_ && !done.empty()) observer_->on_handoffs_finished(done);
}

HeartbeatAnswer LeaderService::heard(const WorkerId& worker) {
  return policy_.heartbeat(port_.state(), worker, port_.steady_ms());
}

Plan LeaderService::plan() const { return policy_.plan(port_.state(), port_.wall_ms()); }

std::optional<uint64_t> LeaderService::grant_hold_ms(const ShardId& shard) {
  if (!policy_.leading()) return std::nullopt;
  return policy_.grant_hold_ms(port_.state(), shard, port_.steady_ms());
}

void LeaderService::execute(const Plan& plan, std::function<void(const PortError*, size_t)> done) {
  auto cmds = policy_.plan_commands(plan);
  if (cmds.empty()) return done(nullptr, 0);
  struct Tally {
    size_t left;
    size_t changed = 0;
    std::optional<PortError> error;
    std::function<void(const PortError*, size_t)> done;
  };
  auto tally = std::make_shared<Tally>(Tally{cmds.size(), 0, std::nullopt, std::move(done)});
  for (auto& c : cmds) {
    port_.propose(std::move(c), [tally](const PortError* err, const ApplyResult* r) {
      if (err) tally->error = *err;
      if (r) tally->changed += r->changed;
      if (--tally->left == 0) tally->done(tally->error ? &*tally->error : nullptr, tally->changed);
    });
  }
}

}  // namespace tenure::controlplane
