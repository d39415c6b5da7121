#pragma once
// A consensus port for the leader services' unit tests: a real state
// machine, and proposals and confirmations that wait until the test lets
// them apply, fail or confirm, so every interleaving is the test's choice.

#include <deque>
#include <utility>

#include <gtest/gtest.h>

#include "controlplane/consensus_port.h"
#include "controlplane/fleet_policy.h"

namespace tenure::controlplane::testing {

class FakePort final : public ConsensusPort {
 public:
  void propose(Command cmd, ProposeDone done) override {
    cmd.at_ms = wall_ms_;
    proposals_.emplace_back(std::move(cmd), std::move(done));
  }
  void confirm(ConfirmDone done) override { confirms_.push_back(std::move(done)); }
  const StateMachine& state() const override { return sm_; }
  bool leading() const override { return leading_; }
  consensus::Term term() const override { return term_; }
  bool caught_up() const override { return caught_up_; }
  uint64_t steady_ms() const override { return steady_ms_; }
  uint64_t wall_ms() const override { return wall_ms_; }
  uint64_t stalled_ms() const override { return stalled_ms_; }

  /// Applies the oldest waiting proposal and completes it; returns its result.
  ApplyResult apply_next() {
    EXPECT_FALSE(proposals_.empty());
    auto [cmd, done] = std::move(proposals_.front());
    proposals_.pop_front();
    ApplyResult r = sm_.apply(cmd);
    done(nullptr, &r);
    return r;
  }
  /// Applies every waiting proposal, also those their completions make.
  void apply_all() {
    while (!proposals_.empty()) apply_next();
  }
  /// Fails the oldest waiting proposal with `code`, unapplied.
  void fail_next(PortError::Code code) {
    auto [cmd, done] = std::move(proposals_.front());
    proposals_.pop_front();
    PortError e{code, "failed by the test", consensus::NodeId()};
    done(&e, nullptr);
  }
  /// Confirms (or fails) the oldest waiting confirmation.
  void confirm_next(const PortError* err = nullptr) {
    ASSERT_FALSE(confirms_.empty());
    auto done = std::move(confirms_.front());
    confirms_.pop_front();
    done(err);
  }
  /// Applies a command directly, as if another leader's entry applied.
  ApplyResult apply(CommandBody body) { return sm_.apply(Command{"", wall_ms_, std::move(body)}); }

  const std::deque<std::pair<Command, ProposeDone>>& proposals() const { return proposals_; }
  size_t confirms_waiting() const { return confirms_.size(); }

  StateMachine sm_;
  bool leading_ = true;
  consensus::Term term_{1};
  bool caught_up_ = true;
  uint64_t steady_ms_ = 1000;
  uint64_t stalled_ms_ = 0;
  uint64_t wall_ms_ = 1'700'000'000'000;

 private:
  std::deque<std::pair<Command, ProposeDone>> proposals_;
  std::deque<ConfirmDone> confirms_;
};

/// The lease of the services' tests, and a check interval well below it.
constexpr uint64_t kLease = 3000;
inline FleetPolicyOptions test_options() {
  FleetPolicyOptions o;
  o.lease_ms = kLease;
  o.check_interval_ms = 10;
  return o;
}

/// Whether a DeclareDead of `w` waits among the port's proposals.
inline bool declares_dead(const FakePort& port, const WorkerId& w) {
  for (const auto& [cmd, done] : port.proposals()) {
    if (const auto* d = std::get_if<DeclareDead>(&cmd.body); d && d->id == w) return true;
  }
  return false;
}

}  // namespace tenure::controlplane::testing
