#pragma once
// The agents' calls at the leader, as decisions over a consensus port
// (consensus_port.h): register, heartbeat, release and leave. The REST
// routes (api/agent_routes.cc) only parse the HTTP bodies and translate
// these answers to HTTP; the simulator (sim/fleet_controller.cc) serves its
// agents' calls with the same service over a simulated member.
//
//   - register proposes RegisterWorker only if something changed (a
//     reconnecting agent with nothing new costs no log entry), then answers
//     as a heartbeat;
//   - a heartbeat's lease is granted only by the leader of the moment:
//     leadership is confirmed with a quorum (ReadIndex, thesis §6.4) after
//     the call arrived, and the lease is granted only if this member still
//     leads then. Otherwise a deposed leader that has not noticed could
//     extend a lease after the new leader gave the worker's shards away;
//   - release completes the handoffs the agent confirms (CompleteMoves, in
//     bounded pieces); prepared ends the prepare phase of the moves to the
//     agent's worker that its program has prepared (EndPrepares), so that
//     their sources are asked to drain;
//   - leave (the agent stopped accepting writes) fails the worker over at
//     once, in bounded pieces; pieces that fail are continued by the
//     leader's policy (the worker is dead and still holds shards).
//
// Thread: the port's executor; every `done` runs there.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "controlplane/consensus_port.h"
#include "controlplane/leader_service.h"

namespace tenure::controlplane {

/// Why a call has no answer of its own.
struct CallError {
  enum class Kind {
    kConsensus,        ///< the member failed a proposal or a read: `consensus`
    kRefused,          ///< the state machine refused the command: `refused`
    kLeadershipMoved,  ///< confirmed, but this member no longer leads: retry elsewhere
    kNotApplied,       ///< a leave none of whose pieces applied: retry
    kUnknownWorker,    ///< leave: no such worker
  };
  Kind kind = Kind::kConsensus;
  PortError consensus;
  ApplyResult refused;
};

/// A register's or a heartbeat's answer: the error, or the lease as the
/// policy grants it (lease.status kUnknown or kDead grants none).
struct LeaseReply {
  std::optional<CallError> error;
  HeartbeatAnswer lease;
  uint64_t lease_ms = 0;  ///< the lease the leader counts, for the agent
};

/// A release's or a prepared's answer.
struct ReleaseReply {
  std::optional<CallError> error;
  size_t released = 0;  ///< handoffs completed (release) or advanced to their drain (prepared)
  Revision revision;    ///< the highest revision among the pieces
};

struct LeaveReply {
  std::optional<CallError> error;
  size_t moved = 0;  ///< shards moved to other workers
  Revision revision;
};

class AgentService {
 public:
  /// Both must outlive the service.
  AgentService(ConsensusPort& port, LeaderService& leader) : port_(port), leader_(leader) {}

  /// `r` already validated (ids, address, zone, capacity); `request_id`
  /// is the proposal's dedup key (may be empty).
  void register_worker(RegisterWorker r, std::string request_id, std::function<void(LeaseReply)> done);
  void heartbeat(const WorkerId& worker, std::function<void(LeaseReply)> done);
  /// `c.from` is the calling worker; `c.shards`/`c.epochs` what it released.
  void release(CompleteMoves c, std::string request_id, std::function<void(ReleaseReply)> done);
  /// `c.target` is the calling worker; `c.shards`/`c.epochs` what it prepared
  /// (the epochs its grants will carry).
  void prepared(EndPrepares c, std::string request_id, std::function<void(ReleaseReply)> done);
  void leave(const WorkerId& worker, std::string request_id, std::function<void(LeaveReply)> done);

 private:
  /// Confirms leadership after the call arrived, then answers the lease.
  void confirmed_lease(const WorkerId& worker, std::function<void(LeaseReply)> done);
  /// Proposes the pieces of a release or a prepared and tallies them.
  void propose_shard_list(std::vector<Command> cmds, std::function<void(ReleaseReply)> done);

  ConsensusPort& port_;
  LeaderService& leader_;
};

}  // namespace tenure::controlplane
