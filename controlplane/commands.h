#pragma once
// The commands of the replicated state machine: every decision the control
// plane makes goes through the Raft log as one of these (DESIGN.md: only
// decisions are replicated; heartbeats stay in the leader's memory).
// The leader validates and stamps a command when it proposes it; apply
// re-validates against the state at its log position, so a command that
// raced with another is refused deterministically on every member.

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "controlplane/types.h"

namespace tenure::controlplane {

/// Encoding version of a command entry; bumped on any incompatible change.
inline constexpr uint8_t kCommandVersion = 1;

struct CreateShards {
  std::vector<ShardId> ids;
};

struct DeleteShard {
  ShardId id;
};

struct RegisterWorker {
  WorkerId id;
  std::string address;
  std::string zone;
  double capacity = 1;
  /// The agent has a program that prepares shards (encoded only when set,
  /// so that older entries decode as false).
  bool prepares = false;
};

struct SetDraining {
  WorkerId id;
  bool draining = true;
};

struct RemoveWorker {
  WorkerId id;
};

/// A shard to (re)grant: to `worker` (or nobody when empty), valid only
/// while the shard is still at `expected_epoch`.
struct Placement {
  ShardId shard;
  WorkerId worker;
  Epoch expected_epoch;
};

/// Grants unassigned shards.
struct AssignShards {
  std::vector<Placement> placements;
  ChangeReason reason = ChangeReason::kCreated;
};

/// Declares a worker dead (its lease ran out, or it left) and moves the
/// shards named in `placements` to the worker chosen for each (or to nobody
/// when empty), epoch + 1. A worker's failover may take more shards than one
/// bounded command holds (command_split.h): the shards not named stay with
/// the dead worker, serving nobody, until FailoverShards commands move them;
/// the leader's policy continues any dead worker that still holds shards,
/// so a failover completes whole across leader changes.
struct DeclareDead {
  WorkerId id;
  std::vector<Placement> placements;
  ChangeReason reason = ChangeReason::kDeadWorker;
};

/// Continues the failover of a dead worker: moves each named shard that the
/// worker still holds at `expected_epoch` to its chosen worker (or to nobody
/// when empty), epoch + 1. Refused when the worker is not dead; placements
/// that no longer hold (the shard moved, the chosen worker cannot take
/// shards now) are skipped, and the policy plans them again.
struct FailoverShards {
  WorkerId id;
  std::vector<Placement> placements;
  ChangeReason reason = ChangeReason::kDeadWorker;
};

/// Starts graceful handoffs: each shard is revoked at its owner, which
/// keeps it (without accepting writes) until it releases or its lease runs out.
struct BeginMoves {
  std::vector<Placement> placements;  ///< worker = the target
  ChangeReason reason = ChangeReason::kRebalance;
};

/// Completes handoffs: the old owner released (or `expired`: the leader waited
/// its lease out). Each shard goes to its target with epoch + 1.
struct CompleteMoves {
  WorkerId from;
  std::vector<ShardId> shards;
  std::vector<Epoch> epochs;  ///< the epoch each shard had when revoked
  bool expired = false;
};

/// Ends the prepare phase of handoffs to `target`: it is prepared (it said
/// so, or `expired`: the leader waited long enough), so each source is now
/// asked to drain. `epochs` are the epochs the grants will carry (what the
/// target was told), one per shard.
struct EndPrepares {
  WorkerId target;
  std::vector<ShardId> shards;
  std::vector<Epoch> epochs;
  bool expired = false;
};

/// Records that controller-group members took part in the group (the leader
/// heard them acknowledge entries). A member that later starts with an empty
/// data_dir checks this before bootstrapping: it must not bootstrap a group
/// it already voted in (it would have forgotten its vote and its log).
struct MarkMembersStarted {
  std::vector<std::string> ids;
};

using CommandBody = std::variant<CreateShards, DeleteShard, RegisterWorker, SetDraining, RemoveWorker,
                                 AssignShards, DeclareDead, BeginMoves, CompleteMoves, MarkMembersStarted,
                                 FailoverShards, EndPrepares>;

struct Command {
  /// Dedup key: a retried proposal with the same id applies once. May be empty.
  std::string request_id;
  /// The proposing leader's wall clock; apply never reads a clock.
  uint64_t at_ms = 0;
  CommandBody body;
};

std::string encode_command(const Command& c);
/// A command's kind in snake case ("failover_shards"), for logs.
const char* command_name(const CommandBody& body);
/// nullopt when `data` is not a command this version understands.
std::optional<Command> decode_command(const std::string& data);

}  // namespace tenure::controlplane
