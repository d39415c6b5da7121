#pragma once
// Strong types of the ownership domain (DESIGN.md, house style 3).

#include <cstdint>
#include <string>

#include "common/counter.h"

namespace tenure::controlplane {

struct EpochTag {};
struct RevisionTag {};
/// Per-shard fencing token: raised by exactly one on every change of owner.
using Epoch = Counter<EpochTag>;
/// Cluster-wide counter raised by every applied change.
using Revision = Counter<RevisionTag>;

/// A string id with a distinct type per kind of thing it names.
template <typename Tag>
class Id {
 public:
  Id() = default;
  explicit Id(std::string s) : s_(std::move(s)) {}
  const std::string& str() const { return s_; }
  bool empty() const { return s_.empty(); }
  auto operator<=>(const Id&) const = default;

 private:
  std::string s_;
};

struct ShardTag {};
struct WorkerTag {};
using ShardId = Id<ShardTag>;
using WorkerId = Id<WorkerTag>;

/// [A-Za-z0-9._-]{1,max_len}: the id alphabet of CONTRACT.md.
bool valid_id(const std::string& s, size_t max_len);
inline bool valid_shard_id(const std::string& s) { return valid_id(s, 128); }
inline bool valid_worker_id(const std::string& s) { return valid_id(s, 64); }

enum class ShardState : uint8_t { kUnassigned = 0, kActive = 1, kHandoff = 2 };
enum class WorkerState : uint8_t { kAlive = 0, kDraining = 1, kDead = 2 };
/// The phases of a planned move (CONTRACT.md, "Agent and program"). A
/// target whose agent has a program is asked to prepare first, while the
/// source still serves; then the source is asked to drain (the revoke); the
/// grant follows the release. kDraining is 0: what a handoff was before
/// there were phases.
enum class HandoffPhase : uint8_t { kDraining = 0, kPreparing = 1 };
const char* to_string(ShardState s);
const char* to_string(WorkerState s);
const char* to_string(HandoffPhase p);

/// Why ownership changed; recorded in a shard's history.
enum class ChangeReason : uint8_t {
  kCreated = 0,      ///< first placement of a new shard
  kDeadWorker = 1,   ///< its owner's lease ran out
  kDrain = 2,
  kRebalance = 3,
  kManual = 4,
  kDeleted = 5,
  kReleased = 6,     ///< the owner left gracefully (agent shutdown)
};
const char* to_string(ChangeReason r);

}  // namespace tenure::controlplane
