#pragma once
// The replicated state of the control plane: shards, workers, grants,
// per-shard epochs, the revision counter and the recent event log that
// watches stream. Each shard's history is produced here and handed to a
// HistorySink (controlplane/history.h), not kept. Applied identically on every member
// from the committed log; apply never reads a clock (commands carry the
// leader's time) and nothing here depends on hash-map iteration order.
//
// Thread: owned by the controller's Raft driver; readers on other threads
// must go through the driver.

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "controlplane/commands.h"
#include "controlplane/history.h"
#include "controlplane/shard_id_set.h"
#include "controlplane/types.h"

namespace tenure::controlplane {

/// What a shard's last change of owner recorded, kept beside the shard:
/// what placement (why it is unassigned) and the fleet policy (a finished
/// handoff's phases) read on the strand. The records themselves go to the
/// HistorySink (controlplane/history.h).
struct LastChange {
  ChangeReason reason = ChangeReason::kCreated;
  bool prepared = false;
  bool prepare_timed_out = false;
  bool drain_timed_out = false;
  uint32_t prepare_ms = 0;
  uint32_t drain_ms = 0;
};

/// A shard's owner: the owner's id as the per-worker index of the state
/// holds it (StateMachine::shards_of), 8 bytes in every shard where a
/// WorkerId's string is 32. A shard map node is then 96 bytes instead of
/// 120, jemalloc's size class 96 instead of 128 (32 MB less at 1,000,000
/// shards by arithmetic; 15 MiB measured with glibc's malloc, whose
/// classes are 112 and 128, by a BM_StateMemory that placed only 20,000
/// of the shards). Valid while
/// the shard is in the state and owned by that worker: the index keeps an
/// entry for every worker that owns a shard. Reads as a WorkerId.
class OwnerRef {
 public:
  OwnerRef() = default;
  explicit OwnerRef(const WorkerId* id) : id_(id) {}
  const WorkerId& id() const { return id_ ? *id_ : kNone; }
  operator const WorkerId&() const { return id(); }  // NOLINT: reads as the WorkerId it refers to
  bool empty() const { return id_ == nullptr; }
  const std::string& str() const { return id().str(); }
  friend bool operator==(const OwnerRef& a, const WorkerId& b) { return a.id() == b; }

 private:
  static inline const WorkerId kNone{};
  const WorkerId* id_ = nullptr;
};

struct Shard {
  OwnerRef worker;  ///< the owner (the old owner during a handoff); empty when unassigned
  Epoch epoch;
  LastChange last;
  ShardState state = ShardState::kUnassigned;
};

/// A planned move in progress (a shard in ShardState::kHandoff), kept in a
/// map of its own: of a million shards, a few thousand move at a time, and
/// these fields in every shard cost 64 MB.
struct Handoff {
  WorkerId target;  ///< who gets it next (empty if it died meanwhile)
  uint64_t since_ms = 0;
  uint64_t drain_since_ms = 0;  ///< when the source was asked to drain
  ChangeReason reason = ChangeReason::kRebalance;
  HandoffPhase phase = HandoffPhase::kDraining;
  bool prepared = false;           ///< it began with a prepare phase
  bool prepare_timed_out = false;
};

struct Worker {
  std::string address;
  std::string zone;
  double capacity = 1;
  WorkerState state = WorkerState::kAlive;
  uint64_t since_ms = 0;  ///< when it entered its current state
  /// The operator asked to drain it; survives its death, so a drained worker
  /// that comes back is draining again, not handed shards.
  bool drain_requested = false;
  /// Its agent has a program to prepare shards (it registered so): planned
  /// moves to it begin with a prepare phase.
  bool prepares = false;
};

/// kPrepare goes to a planned move's target, with the epoch its grant will
/// carry; kRevoke to the source once it must drain (or has lost the shard).
enum class EventType : uint8_t { kGrant = 0, kRevoke = 1, kShardDeleted = 2, kWorker = 3, kPrepare = 4 };
const char* to_string(EventType t);

/// One line of a watch stream.
struct Event {
  Revision revision;
  EventType type;
  ShardId shard;    ///< empty for worker events
  WorkerId worker;
  Epoch epoch;
  std::string worker_state;  ///< worker events: alive, draining, dead, removed
  uint64_t at_ms = 0;        ///< the proposing leader's clock (grant delay metrics)
};

/// kIdempotencyMismatch: the request id's scope (its key) was used before
/// for another request (see kRequestScopeSeparator); nothing was applied.
enum class ApplyCode : uint8_t { kOk, kNotFound, kConflict, kInvalid, kIdempotencyMismatch };

/// A request id "<scope>#<fingerprint>" names a client's idempotency key
/// (scope) and the request it was first used for (fingerprint). A retry with
/// the same id returns the first outcome; the same scope with another
/// fingerprint is refused with kIdempotencyMismatch while the first is kept.
inline constexpr char kRequestScopeSeparator = '#';
/// The pieces of one split request (command_split.h) have ids "<id>.<k>"
/// (k >= 1) beside "<id>" itself: one request for the check above.
inline constexpr char kRequestPieceSeparator = '.';

struct ApplyResult {
  ApplyCode code = ApplyCode::kOk;
  std::string message;
  Revision revision;  ///< the revision after applying
  std::vector<ShardId> created;
  std::vector<ShardId> existing;
  size_t changed = 0;  ///< shards whose owner or state changed
};

struct Limits {
  size_t history_per_shard = 32;
  size_t events_kept = 200000;
  size_t request_ids_kept = 20000;
};

class StateMachine {
 public:
  explicit StateMachine(Limits limits = Limits()) : limits_(limits) {}
  // The indexes point into the shard map (ShardIdSet): a copy would point
  // into the original. Moves keep the map's nodes, so they are fine.
  StateMachine(const StateMachine&) = delete;
  StateMachine& operator=(const StateMachine&) = delete;
  StateMachine(StateMachine&&) = default;
  StateMachine& operator=(StateMachine&&) = default;

  /// Where history records go (none: they are dropped). Kept by restore().
  void set_history(HistorySink* sink) { history_ = sink; }

  /// Applies one committed command. A retried request id returns the first
  /// outcome and changes nothing.
  ApplyResult apply(const Command& cmd);

  Revision revision() const { return revision_; }
  const std::map<ShardId, Shard>& shards() const { return shards_; }
  const std::map<WorkerId, Worker>& workers() const { return workers_; }
  const Shard* shard(const ShardId& id) const;
  const Worker* worker(const WorkerId& id) const;
  /// The shards a worker owns (active or being handed off from it).
  const ShardIdSet& shards_of(const WorkerId& id) const;
  size_t count(ShardState s) const { return shard_counts_[static_cast<size_t>(s)]; }
  /// About the size of snapshot() now, in O(1): the shards' ids and ~16
  /// bytes each besides (the encoding's measured overhead at 1,000,000).
  uint64_t approximate_snapshot_bytes() const { return shard_id_bytes_ + 16 * shards_.size(); }
  /// Controller-group members known to have taken part in the group.
  const std::set<std::string>& started_members() const { return started_members_; }
  /// Shards being handed off now, with their moves (cheap to scan every tick).
  const std::map<ShardId, Handoff>& handoffs() const { return handoffs_; }
  /// The move of a shard being handed off; null for any other.
  const Handoff* handoff(const ShardId& id) const;
  /// Shards nobody owns, in id order: what placement hands out, without a
  /// pass over every shard (a million of them, most owned).
  const ShardIdSet& unassigned() const { return unassigned_; }
  /// The shards `id` is handing off (still its own, being released): what
  /// each of its heartbeats is answered with, so kept per worker rather
  /// than found among all it owns (50,000 lookups a heartbeat otherwise).
  const ShardIdSet& handoffs_from(const WorkerId& id) const;
  /// shards_of() and handoffs_from() of every worker with any, in id order
  /// as workers(): a walk beside the workers needs no lookup per worker.
  const std::map<WorkerId, ShardIdSet>& shards_by_worker() const { return owned_; }
  const std::map<WorkerId, ShardIdSet>& handoffs_by_worker() const { return handoffs_from_; }
  size_t count(WorkerState s) const;

  /// Events with revision > `after`, at most `max`, only those concerning
  /// `worker` when it is non-empty. Requires after >= compacted_revision().
  std::vector<Event> events_after(Revision after, const WorkerId& worker, size_t max) const;
  /// The events of events_after(after, worker, ...) among the next at most
  /// `max_scanned` events of the log: a catch-up over a long log, filtered or
  /// not, is cut into passes of bounded cost. `scanned_to` is set to the last
  /// revision examined, or to revision() when the scan reached the end.
  std::vector<Event> events_window(Revision after, const WorkerId& worker, size_t max_scanned,
                                   Revision& scanned_to) const;
  /// Calls `fn` for each event with revision > `after`, in revision order
  /// (requires after >= compacted_revision()).
  void visit_events_after(Revision after, const std::function<void(const Event&)>& fn) const;
  /// Watches from a revision below this one get 410: its events are gone.
  Revision compacted_revision() const { return events_compacted_; }
  /// A revision at or after the last event concerning `worker` (a grant to
  /// it, a revoke from it, a change of its state): an agent whose watch has
  /// reached it knows every grant it lost up to the present state. Exact for
  /// events still kept; otherwise the compacted revision, which is later.
  Revision worker_events_revision(const WorkerId& worker) const;

  std::string snapshot() const;
  /// Replaces the whole state; false (and unchanged) when `data` is malformed.
  bool restore(const std::string& data);

 private:
  ApplyResult apply_body(const Command& cmd);
  ApplyResult create_shards(const CreateShards& c, uint64_t at_ms);
  ApplyResult delete_shard(const DeleteShard& c, uint64_t at_ms);
  ApplyResult register_worker(const RegisterWorker& c, uint64_t at_ms);
  ApplyResult set_draining(const SetDraining& c, uint64_t at_ms);
  ApplyResult remove_worker(const RemoveWorker& c);
  ApplyResult assign(const AssignShards& c, uint64_t at_ms);
  ApplyResult declare_dead(const DeclareDead& c, uint64_t at_ms);
  ApplyResult failover_shards(const FailoverShards& c, uint64_t at_ms);
  /// Moves the named shards of dead worker `dead` (one failover piece).
  size_t move_from_dead(const WorkerId& dead, const std::vector<Placement>& placements, ChangeReason reason,
                        uint64_t at_ms);
  ApplyResult begin_moves(const BeginMoves& c, uint64_t at_ms);
  ApplyResult complete_moves(const CompleteMoves& c, uint64_t at_ms);
  ApplyResult end_prepares(const EndPrepares& c, uint64_t at_ms);
  /// Handoffs aimed at `id`, which can take no shards now: those still
  /// preparing are called off (their source was never asked to drain and
  /// keeps the shard at its epoch). When it is `gone` (dead, removed) the
  /// others lose their target too, and their completion leaves the shard
  /// unassigned; a draining target may still be undrained in time.
  void lose_target(const WorkerId& id, bool gone);
  void begin_drain(const ShardId& id, const Shard& s, Handoff& h, uint64_t at_ms);
  ApplyResult mark_members_started(const MarkMembersStarted& c);

  /// Moves a shard to `to` (or nobody) with epoch + 1: the only place an
  /// owner changes. `phases`: a handoff's, recorded with the change.
  void change_owner(const ShardId& id, Shard& s, const WorkerId& to, ChangeReason reason, uint64_t at_ms,
                    const LastChange* phases = nullptr);
  void set_shard_state(const ShardId& id, Shard& s, ShardState state);
  /// The shard map's own copy of `id` (which must exist): what the
  /// indexes point to.
  const ShardId& key(const ShardId& id) const { return shards_.find(id)->first; }
  void set_worker_state(const WorkerId& id, Worker& w, WorkerState state, uint64_t at_ms);
  bool accepts_shards(const WorkerId& id) const;
  Revision emit(EventType type, const ShardId& shard, const WorkerId& worker, Epoch epoch,
                std::string worker_state = {});
  uint64_t now_ms_ = 0;  ///< at_ms of the command being applied
  void remember_request(const std::string& id, const ApplyResult& r);

  Limits limits_;
  HistorySink* history_ = nullptr;
  Revision revision_;
  std::map<ShardId, Shard> shards_;
  std::map<ShardId, Epoch> deleted_epochs_;  ///< epochs are never reused, even after delete + create
  std::map<WorkerId, Worker> workers_;
  std::map<WorkerId, ShardIdSet> owned_;
  std::array<size_t, 3> shard_counts_{};
  /// Workers by state, kept as they change: the members' status is
  /// refreshed after every batch applied, and counting 10,000 workers
  /// three times each time was a walk of the whole map per Ready during a
  /// bulk creation.
  std::array<size_t, 3> worker_counts_{};
  uint64_t shard_id_bytes_ = 0;  ///< the lengths of every shard's id, summed
  std::map<ShardId, Handoff> handoffs_;
  ShardIdSet unassigned_;
  std::map<WorkerId, ShardIdSet> handoffs_from_;  ///< handoffs_ by owner
  std::set<std::string> started_members_;
  std::deque<Event> events_;
  Revision events_compacted_;
  /// Derived from the events (rebuilt on restore): the last revision of an
  /// event concerning each worker.
  std::map<WorkerId, Revision> worker_events_;
  /// An ApplyResult as kept for retries: a create's created and existing
  /// ids packed into one string each ('\n' between ids, which never hold
  /// it), a third of a vector's memory (a create names up to 100,000 ids,
  /// and 20,000 results are kept).
  struct StoredResult {
    ApplyCode code = ApplyCode::kOk;
    std::string message;
    Revision revision;
    std::string created;
    std::string existing;
    size_t changed = 0;
    static StoredResult pack(const ApplyResult& r);
    ApplyResult unpack() const;
  };
  std::map<std::string, StoredResult> request_results_;
  std::deque<std::string> request_order_;
  /// Derived from request_order_ (rebuilt on restore): scope -> full id.
  std::map<std::string, std::string> request_scopes_;
  void remember_scope(const std::string& id);
};

}  // namespace tenure::controlplane
