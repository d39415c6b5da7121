#pragma once
// What the leader's services (leader_service.h, agent_service.h) need from
// the consensus member they run on, and nothing more: propose a command,
// confirm leadership with a linearizable read, the applied state, whether
// this member leads and in which term, and its clocks. The controller
// implements it over its Raft driver (controller/supervisor.h); the
// simulator over a simulated member (sim/fleet_controller.cc). So the same
// decisions run in production and under simulation, and unit tests drive
// them with a fake.
//
// Thread: a port and the services on it are used from one executor (the
// controller's Raft strand, the simulator's event loop); every completion
// runs there too.

#include <cstdint>
#include <functional>
#include <string>

#include "consensus/types.h"
#include "controlplane/commands.h"
#include "controlplane/state_machine.h"

namespace tenure::controlplane {

/// Why the member did not apply a proposal or confirm a read. One to one
/// with the controller driver's errors (member::NodeErrc), so that the
/// API answers exactly what it answered when it called the driver itself.
struct PortError {
  enum class Code { kNotLeader, kTimeout, kDropped, kBusy, kStopped, kInvalid, kTooLarge };
  Code code = Code::kNotLeader;
  std::string message;
  consensus::NodeId leader;  ///< kNotLeader: the leader this member knows of, may be empty
};

class ConsensusPort {
 public:
  /// Exactly one of the two is set.
  using ProposeDone = std::function<void(const PortError*, const ApplyResult*)>;
  using ConfirmDone = std::function<void(const PortError*)>;

  virtual ~ConsensusPort() = default;

  /// Proposes `cmd`; the port stamps it with this leader's wall clock
  /// (apply never reads a clock). `done` once, with the error or the
  /// command's result when it applied here.
  virtual void propose(Command cmd, ProposeDone done) = 0;
  /// A linearizable read (ReadIndex, thesis §6.4): `done(nullptr)` once a
  /// quorum confirmed, after this call, the leadership the read index came
  /// from, and state() has applied at least up to that index.
  virtual void confirm(ConfirmDone done) = 0;
  /// The member's applied state (valid until control leaves the executor).
  virtual const StateMachine& state() const = 0;
  /// Whether this member believes it leads, now.
  virtual bool leading() const = 0;
  /// The member's current term.
  virtual consensus::Term term() const = 0;
  /// Whether this leader has committed an entry of its own term and applied
  /// everything committed (§6.4): before that its state may miss what
  /// earlier leaders decided, and nothing may be decided on it.
  virtual bool caught_up() const = 0;
  /// The member's steady clock in ms (leases are measured on it).
  virtual uint64_t steady_ms() const = 0;
  /// The member's wall clock in ms (join delays; commands' stamps).
  virtual uint64_t wall_ms() const = 0;
  /// Milliseconds this member could not listen since it started (its
  /// strand's ticks ran that late: CPU starved, a long apply, a pause), a
  /// running total; leases do not run out for the leader's own deafness
  /// (FleetPolicy::hold_leases). 0 where nothing stalls.
  virtual uint64_t stalled_ms() const { return 0; }
};

}  // namespace tenure::controlplane
