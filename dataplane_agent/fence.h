#pragma once
// The fence: the one rule by which a data-plane write is accepted or
// refused (CONTRACT.md, "Agent HTTP API"; docs/fencing.md). Plain values,
// no dependencies, so an embedding program can include it cheaply.

#include <cstdint>
#include <string_view>

#include "controlplane/types.h"

namespace tenure::agent {

using controlplane::Epoch;
using controlplane::Revision;
using controlplane::ShardId;
using controlplane::WorkerId;

/// The outcome of one fence check, in the order the checks are made.
enum class FenceCode : uint8_t {
  kOk = 0,            ///< held at exactly that epoch under a valid lease: accept the write
  kLeaseExpired = 1,  ///< 503: the lease lapsed (or the agent is starting or stopping)
  kStaleEpoch = 2,    ///< 409: the epoch is older than the newest one seen for the shard
  kNotOwner = 3,      ///< 421: not held here (or a newer epoch than the one held)
};
inline constexpr int kFenceCodeCount = 4;

/// "ok", "lease_expired", "stale_epoch", "not_owner": the JSON error codes.
constexpr std::string_view to_string(FenceCode c) {
  switch (c) {
    case FenceCode::kOk: return "ok";
    case FenceCode::kLeaseExpired: return "lease_expired";
    case FenceCode::kStaleEpoch: return "stale_epoch";
    case FenceCode::kNotOwner: return "not_owner";
  }
  return "unknown";
}

/// The HTTP status the agent API answers with for `c`.
constexpr int http_status(FenceCode c) {
  switch (c) {
    case FenceCode::kOk: return 200;
    case FenceCode::kLeaseExpired: return 503;
    case FenceCode::kStaleEpoch: return 409;
    case FenceCode::kNotOwner: return 421;
  }
  return 500;
}

/// A fence check's answer. `current_epoch` is the newest epoch this agent
/// has seen for the shard (meaningful for kStaleEpoch; 0 when none).
struct FenceResult {
  FenceCode code = FenceCode::kNotOwner;
  Epoch current_epoch;
  bool ok() const { return code == FenceCode::kOk; }
};

}  // namespace tenure::agent
