#pragma once
// The calls simulated agents make to the controllers (CONTRACT.md's
// /v1/workers/{id}/register|heartbeat|prepared|release|leave, GET /v1/shards?worker=W
// and one poll of GET /v1/watch), as plain values carried by the simulated
// network. Answers reuse the agent's own decoded message types.

#include <cstdint>
#include <string>
#include <vector>

#include "consensus/types.h"
#include "dataplane_agent/messages.h"

namespace tenure::sim {

using controlplane::Epoch;
using controlplane::Revision;
using controlplane::ShardId;
using controlplane::WorkerId;

/// The client id of every request the fleet puts to a member (proposals and
/// linearizable reads); KV clients have ids >= 0 and the liveness probe -1.
inline constexpr int kFleetClient = -2;

enum class FleetCall : uint8_t { kRegister, kHeartbeat, kRelease, kList, kWatch, kLeave, kPrepared };
const char* to_string(FleetCall c);

struct FleetRequest {
  FleetCall call = FleetCall::kHeartbeat;
  uint64_t id = 0;  ///< unique per attempt within a run
  WorkerId worker;
  // kRegister
  std::string address;
  std::string zone;
  double capacity = 1;
  bool prepares = false;
  // kRelease, kPrepared
  std::vector<agent::ShardEpoch> shards;
  // kWatch
  Revision after;
  /// Sent by a member on an agent's behalf (production's tenure-forwarded
  /// header): the leader's answer goes back to that member, and a member
  /// that is not the leader answers 503 rather than forwarding again.
  bool forwarded = false;
};

/// The HTTP outcomes an agent distinguishes.
enum class FleetStatus : uint8_t {
  kOk,           ///< 200
  kUnavailable,  ///< 503 (not the leader, no leader, timeout) or no answer: try another member
  kNotFound,     ///< 404: worker not registered
  kDead,         ///< 409 worker_dead
  kGone,         ///< 410: a watch from a compacted revision
  kRefused,      ///< another 4xx
};
const char* to_string(FleetStatus s);

struct FleetAnswer {
  uint64_t id = 0;
  FleetStatus status = FleetStatus::kUnavailable;
  agent::LeaseAnswer lease;                ///< register, heartbeat
  agent::ShardList list;                   ///< list
  std::vector<agent::WatchEvent> events;   ///< watch: events after the request's revision
  Revision progress;                       ///< watch: the revision the events reach
};

}  // namespace tenure::sim
