#pragma once
// What the data-plane program is told (CONTRACT.md, "Agent and program"):
// a shard gained or lost, at an epoch, with why. The session core produces
// them once a change is in effect (durable and installed); the program
// link (program_link.h) turns them into webhooks, the C++ callbacks and
// the agent's GET /v1/grants/watch stream.

#include <string>

#include "dataplane_agent/fence.h"

namespace tenure::agent {

struct ProgramChange {
  enum class Kind : uint8_t { kGrant, kRevoke };
  Kind kind = Kind::kGrant;
  ShardId shard;
  Epoch epoch;
  /// Why: "granted"; "handoff" (after its drain), "deleted", "worker_dead",
  /// "worker_removed", "left", "not_listed", "revoked".
  std::string reason;
  /// The agent's revision (the controllers' revision its table reached).
  Revision revision;
};

inline const char* to_string(ProgramChange::Kind k) { return k == ProgramChange::Kind::kGrant ? "grant" : "revoke"; }

}  // namespace tenure::agent
