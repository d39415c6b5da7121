#pragma once
// The fence as shared state: the grant table behind a writer-preferring
// lock, the lease deadline as an atomic, and counts of checks by result.
//
// Threads: check() and with_fence() from any thread, concurrently. Only
// one thread (the agent's control strand) calls install(), set_lease_*(),
// and stop(). A revoke takes the lock exclusively, so it waits for every
// write admitted under the shared lock to finish, and no write can be
// admitted between a revoke being installed and the release being sent.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <mutex>
#include <shared_mutex>
#include <string_view>
#include <vector>

#include "dataplane_agent/clock.h"
#include "dataplane_agent/grant_table.h"
#include "dataplane_agent/lease.h"
#include "dataplane_agent/rw_lock.h"

namespace tenure::agent {

class FenceState {
 public:
  /// `clock` must outlive this object.
  explicit FenceState(const Clock& clock) : clock_(clock) {}

  /// The fence rule, in this order (docs/fencing.md): (1) the lease must be
  /// valid, else kLeaseExpired; (2) held at exactly `epoch` -> kOk;
  /// (3) `epoch` older than the newest seen -> kStaleEpoch; (4) kNotOwner.
  /// Counts the result. Lock-shared; ~tens of ns.
  FenceResult check(std::string_view shard, Epoch epoch) const;

  /// Runs `fn` only if check(shard, epoch) is kOk, while holding the fence
  /// shared: no revoke, lease loss by stop() or shutdown can come between
  /// the check and the end of `fn`. `fn` must be short (it delays revokes)
  /// and may call check() on this object again (re-entrancy is detected).
  FenceResult with_fence(std::string_view shard, Epoch epoch, const std::function<void()>& fn) const;

  /// Holds the fence shared for a batch of checks + one commit (the data
  /// store's group commit). Use check_locked() under it.
  std::shared_lock<RwLock> lock_shared() const { return std::shared_lock<RwLock>(lock_); }
  /// check() for a caller already holding lock_shared().
  FenceResult check_locked(std::string_view shard, Epoch epoch) const;

  // --- Control strand only (stop(): any thread) ---
  /// Replaces the table with what was loaded from disk (before serving).
  void load(std::map<std::string, ShardRecord> records, Revision revision);
  /// Installs a batch (already durable), exclusively: returns once no write
  /// admitted under the old table is still in flight.
  void install(const GrantChanges& changes);
  /// The lease is valid until `deadline` (steady clock); never shortens
  /// an active lease unless invalidate_lease() is called first.
  void extend_lease(SteadyTime deadline);
  /// The lease is valid until exactly `deadline`, which may shorten it
  /// (a re-list went back to an earlier revision): returns once no write
  /// admitted under the longer lease is still in flight.
  void set_lease(SteadyTime deadline);
  /// The lease `ledger` allows the table as it is now: the latest deadline
  /// among extensions whose worker revision the table has reached, or none
  /// (then invalid: what made it valid needs a revision the table no longer
  /// has, after a re-list went back). Drops the ledger's expired entries.
  void set_lease_from(LeaseLedger& ledger);
  /// A shard revoked for a planned handoff stays admitted while the program
  /// drains it, but never past `deadline`: the lease in force when the
  /// revoke was seen, which the controllers wait out before they complete
  /// the handoff without us (docs/fencing.md, "Drains"). Checks of it fail
  /// with kLeaseExpired from then on, even if the strand is late. Cleared
  /// when an install drops the shard or moves it to a newer epoch (granted
  /// here again after the handoff completed without us: not drained).
  void set_drain_deadline(const ShardId& shard, Epoch epoch, SteadyTime deadline);
  /// Shards with a drain deadline (tests, metrics).
  size_t draining() const;
  /// The shards being drained, at the epoch being drained (any thread).
  std::vector<ShardEpoch> draining_shards() const;
  /// Makes every check fail with kLeaseExpired until the next extend_lease(),
  /// and waits for writes in flight.
  void invalidate_lease();
  /// Stops for good: every check fails with kLeaseExpired from now on.
  /// Returns once writes in flight are done.
  void stop();

  // --- Any thread ---
  bool lease_valid() const;
  /// Time left on the lease (zero when not valid).
  std::chrono::nanoseconds lease_remaining() const;
  bool stopped() const { return stopped_.load(std::memory_order_acquire); }
  std::vector<ShardEpoch> held() const;
  /// The held shards a check would admit now: none without a valid lease,
  /// and none past its drain deadline (one lock for the lot).
  std::vector<ShardEpoch> accepting() const;
  /// The epoch a check of `shard` would admit now, if any (uncounted).
  std::optional<Epoch> admits(std::string_view shard) const;
  size_t held_count() const;
  Revision revision() const;
  /// The record of one shard (copy), if known.
  std::optional<ShardRecord> record(std::string_view shard) const;
  /// Checks made so far, by FenceCode.
  std::array<uint64_t, kFenceCodeCount> counts() const;

  /// Tests: called on the control strand after every install ("install")
  /// and lease extension ("extend_lease"), to observe their order. Set
  /// before the agent starts.
  void set_trace(std::function<void(std::string_view event)> fn) { trace_ = std::move(fn); }

  /// Read access for the control strand (the only writer), lock-free.
  const GrantTable& table_for_planning() const { return table_; }

 private:
  FenceResult check_impl(std::string_view shard, Epoch epoch) const;

  const Clock& clock_;
  mutable RwLock lock_;
  GrantTable table_;
  struct DrainDeadline {
    Epoch epoch;       ///< the epoch being drained; a newer grant is not
    int64_t ns = 0;    ///< steady clock
  };
  /// Drain deadlines of shards held but revoked for a handoff.
  std::map<std::string, DrainDeadline, std::less<>> drain_deadlines_;
  /// Whether `rec` (held at `epoch`) is past its drain deadline at `now_ns`.
  bool drained_out(std::string_view shard, Epoch epoch, int64_t now_ns) const;
  /// Nanoseconds of the steady clock's epoch; 0 = not valid.
  std::atomic<int64_t> lease_deadline_ns_{0};
  std::atomic<bool> stopped_{false};
  mutable std::array<std::atomic<uint64_t>, kFenceCodeCount> counts_{};
  std::function<void(std::string_view)> trace_;
};

}  // namespace tenure::agent
