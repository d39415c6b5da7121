#include "dataplane_agent/fence_state.h"

#include <algorithm>

namespace tenure::agent {

namespace {
/// The FenceState whose lock this thread holds shared (re-entrant checks
/// must not take it again: with a writer waiting that would deadlock).
thread_local const FenceState* t_holding = nullptr;

int64_t ns_of(SteadyTime t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
}  // namespace

FenceResult FenceState::check_impl(std::string_view shard, Epoch epoch) const {
  FenceResult r;
  int64_t deadline = lease_deadline_ns_.load(std::memory_order_acquire);
  if (deadline == 0 || stopped_.load(std::memory_order_relaxed) || ns_of(clock_.now()) >= deadline) {
    const ShardRecord* rec = table_.find(shard);
    r = {FenceCode::kLeaseExpired, rec ? rec->max_epoch : Epoch()};
  } else {
    r = table_.check(shard, epoch);
    if (r.ok() && drained_out(shard, epoch, ns_of(clock_.now()))) r = {FenceCode::kLeaseExpired, epoch};
  }
  counts_[static_cast<size_t>(r.code)].fetch_add(1, std::memory_order_relaxed);
  return r;
}

FenceResult FenceState::check(std::string_view shard, Epoch epoch) const {
  if (t_holding == this) return check_impl(shard, epoch);
  std::shared_lock lock(lock_);
  return check_impl(shard, epoch);
}

FenceResult FenceState::check_locked(std::string_view shard, Epoch epoch) const { return check_impl(shard, epoch); }

FenceResult FenceState::with_fence(std::string_view shard, Epoch epoch, const std::function<void()>& fn) const {
  if (t_holding == this) {
    FenceResult r = check_impl(shard, epoch);
    if (r.ok()) fn();
    return r;
  }
  std::shared_lock lock(lock_);
  FenceResult r = check_impl(shard, epoch);
  if (!r.ok()) return r;
  t_holding = this;
  struct Reset {
    ~Reset() { t_holding = nullptr; }
  } reset;
  fn();
  return r;
}

void FenceState::load(std::map<std::string, ShardRecord> records, Revision revision) {
  std::unique_lock lock(lock_);
  table_.load(std::move(records), revision);
}

void FenceState::install(const GrantChanges& changes) {
  {
    std::unique_lock lock(lock_);
    table_.install(changes);
    for (auto it = drain_deadlines_.begin(); it != drain_deadlines_.end();) {
      const ShardRecord* rec = table_.find(it->first);
      bool still = rec && rec->held && rec->max_epoch == it->second.epoch;
      it = still ? std::next(it) : drain_deadlines_.erase(it);
    }
  }
  if (trace_) trace_("install");
}

void FenceState::extend_lease(SteadyTime deadline) {
  if (stopped()) return;
  int64_t ns = std::max<int64_t>(ns_of(deadline), 1);
  int64_t cur = lease_deadline_ns_.load(std::memory_order_acquire);
  while (cur < ns && !lease_deadline_ns_.compare_exchange_weak(cur, ns, std::memory_order_acq_rel)) {
  }
  if (trace_) trace_("extend_lease");
}

void FenceState::set_lease(SteadyTime deadline) {
  if (stopped()) return;
  int64_t ns = std::max<int64_t>(ns_of(deadline), 1);
  int64_t old = lease_deadline_ns_.exchange(ns, std::memory_order_acq_rel);
  if (ns < old) {
    std::unique_lock lock(lock_);  // writes admitted under the longer lease finish first
  }
  if (trace_) trace_(ns < old ? "shorten_lease" : "extend_lease");
}

void FenceState::set_lease_from(LeaseLedger& ledger) {
  ledger.forget_expired(clock_.now());
  if (auto deadline = ledger.deadline(revision())) {
    set_lease(*deadline);
  } else if (lease_valid()) {
    invalidate_lease();
  }
}

void FenceState::set_drain_deadline(const ShardId& shard, Epoch epoch, SteadyTime deadline) {
  std::unique_lock lock(lock_);
  drain_deadlines_[shard.str()] = DrainDeadline{epoch, ns_of(deadline)};
}

bool FenceState::drained_out(std::string_view shard, Epoch epoch, int64_t now_ns) const {
  if (drain_deadlines_.empty()) return false;
  auto it = drain_deadlines_.find(shard);
  return it != drain_deadlines_.end() && it->second.epoch == epoch && now_ns >= it->second.ns;
}

size_t FenceState::draining() const {
  std::shared_lock lock(lock_);
  return drain_deadlines_.size();
}

std::vector<ShardEpoch> FenceState::draining_shards() const {
  std::shared_lock lock(lock_);
  std::vector<ShardEpoch> out;
  out.reserve(drain_deadlines_.size());
  for (const auto& [shard, d] : drain_deadlines_) out.push_back({ShardId(shard), d.epoch});
  return out;
}

void FenceState::invalidate_lease() {
  lease_deadline_ns_.store(0, std::memory_order_release);
  // Writes admitted before the store finish before we go on.
  std::unique_lock lock(lock_);
}

void FenceState::stop() {
  stopped_.store(true, std::memory_order_release);
  invalidate_lease();
}

bool FenceState::lease_valid() const {
  int64_t deadline = lease_deadline_ns_.load(std::memory_order_acquire);
  return deadline != 0 && ns_of(clock_.now()) < deadline;
}

std::chrono::nanoseconds FenceState::lease_remaining() const {
  int64_t deadline = lease_deadline_ns_.load(std::memory_order_acquire);
  int64_t now = ns_of(clock_.now());
  return std::chrono::nanoseconds(deadline != 0 && now < deadline ? deadline - now : 0);
}

std::vector<ShardEpoch> FenceState::held() const {
  std::shared_lock lock(lock_);
  return table_.held();
}

std::vector<ShardEpoch> FenceState::accepting() const {
  std::shared_lock lock(lock_);
  if (!lease_valid() || stopped()) return {};
  std::vector<ShardEpoch> out = table_.held();
  if (drain_deadlines_.empty()) return out;
  int64_t now = ns_of(clock_.now());
  std::erase_if(out, [&](const ShardEpoch& s) { return drained_out(s.shard.str(), s.epoch, now); });
  return out;
}

std::optional<Epoch> FenceState::admits(std::string_view shard) const {
  std::shared_lock lock(lock_);
  if (!lease_valid() || stopped()) return std::nullopt;
  const ShardRecord* rec = table_.find(shard);
  if (!rec || !rec->held || drained_out(shard, rec->max_epoch, ns_of(clock_.now()))) return std::nullopt;
  return rec->max_epoch;
}

size_t FenceState::held_count() const {
  std::shared_lock lock(lock_);
  return table_.held_count();
}

Revision FenceState::revision() const {
  std::shared_lock lock(lock_);
  return table_.revision();
}

std::optional<ShardRecord> FenceState::record(std::string_view shard) const {
  std::shared_lock lock(lock_);
  const ShardRecord* rec = table_.find(shard);
  if (!rec) return std::nullopt;
  return *rec;
}

std::array<uint64_t, kFenceCodeCount> FenceState::counts() const {
  std::array<uint64_t, kFenceCodeCount> out{};
  for (size_t i = 0; i < out.size(); ++i) out[i] = counts_[i].load(std::memory_order_relaxed);
  return out;
}

}  // namespace tenure::agent
