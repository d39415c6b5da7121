#pragma once
// The controller's answers and watch lines, decoded into plain values
// (api/agent_routes.cc, api/watch_hub.cc, api/shard_routes.cc are the other
// side). nlohmann's exceptions stop in messages.cc: a malformed message is
// a value, never a throw (DESIGN.md, house style 4).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataplane_agent/fence.h"

namespace tenure::agent {

/// A (shard, epoch) pair, e.g. one revoked shard to release.
struct ShardEpoch {
  ShardId shard;
  Epoch epoch;
  bool operator==(const ShardEpoch&) const = default;
};

/// 200 answer of register and heartbeat.
struct LeaseAnswer {
  uint32_t lease_ms = 0;
  Revision revision;
  /// The lease may be extended from this answer only once our grant table
  /// has reached this revision (LeaseLedger). Absent: `revision`.
  Revision worker_revision;
  std::vector<ShardEpoch> revoked;  ///< shards being handed off from us: stop serving them
};

/// One shard of GET /v1/shards?worker=W.
struct ListedShard {
  ShardId id;
  WorkerId worker;
  Epoch epoch;
  std::string state;  ///< "active" (serve it) or "handoff" (revoked: do not)
  /// A handoff's phase: "preparing" means its target prepares and this
  /// owner still serves it (no phase: a controller from before phases).
  std::string phase;
  /// Whether the owner is to serve it (active, or a handoff still preparing).
  bool served() const { return state == "active" || (state == "handoff" && phase == "preparing"); }
};

/// GET /v1/shards?worker=W: one page, or (assembled by the session) all of them.
struct ShardList {
  Revision revision;
  std::vector<ListedShard> shards;
  std::string next;  ///< the page's `continue` token; empty on the last page
};

/// One line of a watch stream.
struct WatchEvent {
  /// kPrepare: this worker is a planned move's target; `epoch` is the
  /// epoch its grant will carry.
  enum class Kind : uint8_t { kGrant, kRevoke, kShardDeleted, kWorker, kProgress, kError, kUnknown, kPrepare };
  Kind kind = Kind::kUnknown;
  Revision revision;
  ShardId shard;
  WorkerId worker;
  Epoch epoch;
  std::string state;  ///< worker events: alive, draining, dead, removed
  int64_t at_ms = 0;  ///< the proposing leader's wall clock (0 when absent)
  std::string error;  ///< kError: "too_slow", "compacted", ...
};

/// Why a message could not be decoded (one line, for logs).
using ParseError = std::string;

template <typename T>
struct Parsed {
  std::optional<T> value;
  ParseError error;
};

Parsed<LeaseAnswer> parse_lease_answer(std::string_view body);
Parsed<ShardList> parse_shard_list(std::string_view body);
Parsed<WatchEvent> parse_watch_line(std::string_view line);
/// The "error" code of a JSON error body, or empty.
std::string error_code_of(std::string_view body);

/// Bodies the agent sends.
/// `prepares`: a program prepares shards, so moves here begin with a prepare.
std::string register_body(const std::string& address, const std::string& zone, double capacity, bool prepares);
/// A release's or a prepared's body: {"shards": [{"shard", "epoch"}, ...]}.
std::string release_body(const std::vector<ShardEpoch>& shards);

}  // namespace tenure::agent
