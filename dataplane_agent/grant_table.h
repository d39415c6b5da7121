#pragma once
// What this agent knows about each shard it has heard of, and the rules by
// which grants, revokes, deletions and re-lists change it. Pure: no locks,
// no I/O (FenceState adds the lock, GrantStore the disk).
//
// The rules make event application idempotent and insensitive to order:
// epochs only go up, and once a (shard, epoch) was dropped it is never
// served again (the controllers never re-grant an epoch after revoking it:
// a handoff ends with epoch + 1), so a late or repeated grant, or a re-list
// older than a heartbeat's revoke, cannot resurrect a grant.

#include <functional>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dataplane_agent/fence.h"
#include "dataplane_agent/messages.h"

namespace tenure::agent {

/// Everything known about one shard. Persisted as one row.
struct ShardRecord {
  Epoch max_epoch;      ///< newest epoch seen for the shard; never goes down
  Epoch dropped_epoch;  ///< newest epoch dropped here; an epoch <= it is never served again
  bool held = false;    ///< this agent serves the shard at max_epoch
  bool operator==(const ShardRecord&) const = default;
};

/// The record after a grant of `epoch`, or nullopt when it changes nothing
/// (a duplicate, or stale: older than what was seen, or already dropped).
std::optional<ShardRecord> after_grant(const ShardRecord& cur, Epoch epoch);
/// The record after the grant at `epoch` was revoked (or the shard deleted
/// at `epoch`), or nullopt when nothing changes. A revoke of an older epoch
/// than the one held leaves the newer grant alone.
std::optional<ShardRecord> after_drop(const ShardRecord& cur, Epoch epoch);

/// The fence rule without the lease (FenceState checks that first).
FenceResult check_record(const ShardRecord* rec, Epoch epoch);

class GrantChanges;

/// The in-memory table. Not thread-safe: FenceState guards it.
class GrantTable {
 public:
  /// The record of `shard`, or null when it was never heard of.
  const ShardRecord* find(std::string_view shard) const;
  /// check_record(find(shard), epoch).
  FenceResult check(std::string_view shard, Epoch epoch) const { return check_record(find(shard), epoch); }
  /// Shards held now with their epochs, sorted by shard id.
  std::vector<ShardEpoch> held() const;
  size_t held_count() const { return held_count_; }
  size_t size() const { return records_.size(); }
  /// The last revision whose events are reflected here.
  Revision revision() const { return revision_; }

  /// Replaces everything (after loading from disk).
  void load(std::map<std::string, ShardRecord> records, Revision revision);
  /// Applies a batch planned against this table.
  void install(const GrantChanges& changes);

 private:
  /// Transparent hashing: lookups by string_view allocate nothing.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>()(s); }
  };
  std::unordered_map<std::string, ShardRecord, Hash, std::equal_to<>> records_;
  size_t held_count_ = 0;
  Revision revision_;
};

/// A batch of changes planned against a table (read-only), to be made
/// durable and then installed. Lists what must be released afterwards.
class GrantChanges {
 public:
  explicit GrantChanges(const GrantTable& base) : base_(base) {}

  /// True when the grant changed something.
  bool grant(const ShardId& shard, Epoch epoch);
  /// True when the drop changed something. `reason` is what the program
  /// is told (CONTRACT.md, "Agent and program").
  bool drop(const ShardId& shard, Epoch epoch, const char* reason = "revoked");
  /// Drops every shard held (worker declared dead, removed, or leaving).
  void drop_all(const char* reason = "worker_dead");
  /// Raises the revision (never lowers it).
  void advance_revision(Revision r);
  /// Sets the revision even if lower (a re-list is the new truth to watch from).
  void reset_revision(Revision r);

  /// A revoked-for-handoff shard: drop it, then confirm to the controllers;
  /// unless the drain filter holds it back for the program to drain first.
  void revoke_for_release(const ShardEpoch& s);
  /// Planned handoffs the program drains before the release: when `drains`
  /// says so of a shard held here at exactly the revoked epoch,
  /// revoke_for_release leaves it held and lists it in to_drain() instead.
  void set_drain_filter(std::function<bool(const ShardEpoch&)> drains) { drains_ = std::move(drains); }
  /// Applies one watch event meant for `self`. Events for other workers
  /// are ignored; a worker event saying `self` is dead or removed drops all.
  void apply_event(const WatchEvent& e, const WorkerId& self);
  /// Makes the table match a full listing of self's shards: "active" ones
  /// are granted (if not stale), "handoff" ones dropped and released, and
  /// held shards missing from the list dropped. The revision becomes the
  /// list's.
  void apply_listing(const ShardList& list);

  /// The value `shard` will have after this batch (the base's if unchanged).
  ShardRecord current(const ShardId& shard) const;
  const std::map<std::string, ShardRecord>& records() const { return records_; }
  std::optional<Revision> revision() const { return revision_; }
  /// (shard, epoch) to confirm with POST .../release once installed.
  const std::vector<ShardEpoch>& to_release() const { return release_; }
  /// Held back for the program to drain (see set_drain_filter).
  const std::vector<ShardEpoch>& to_drain() const { return drain_; }
  /// Why this batch drops `shard` ("revoked" when not said).
  const char* drop_reason(const std::string& shard) const;
  /// Shards newly granted by this batch, for logs and metrics.
  size_t granted() const { return granted_; }
  size_t dropped() const { return dropped_; }
  /// Grants refused as stale (older than seen, or already dropped).
  size_t refused() const { return refused_; }
  bool empty() const { return records_.empty() && !revision_; }

 private:
  const GrantTable& base_;
  std::map<std::string, ShardRecord> records_;  ///< ordered: persisted and logged in id order
  std::optional<Revision> revision_;
  std::vector<ShardEpoch> release_;
  /// release_ as a set: a drain revokes tens of thousands of shards in one
  /// batch, and a linear search per revoke made that quadratic (seconds on
  /// the session's strand, long enough to miss heartbeats).
  std::set<std::pair<std::string, uint64_t>> releasing_;
  std::function<bool(const ShardEpoch&)> drains_;
  std::vector<ShardEpoch> drain_;
  std::map<std::string, const char*> drop_reasons_;
  size_t granted_ = 0;
  size_t dropped_ = 0;
  size_t refused_ = 0;
};

}  // namespace tenure::agent
