#pragma once
// Each shard's history of owners: a record per change of owner, the newest
// `history_per_shard` kept per shard. The state machine produces the
// records as it applies (identically on every member) and hands them to a
// HistorySink; it keeps none in memory. A controller keeps them in SQLite
// (member/history_store.h), where operators query them: a million shards
// that moved 32 times each are 32 million records, which do not belong in
// RAM (they took about 2.5 KB a shard there, and were copied into every
// snapshot). Tests and the simulator keep them in a MemoryHistory.

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "controlplane/types.h"

namespace tenure::controlplane {

struct HistoryRecord {
  Revision revision;
  Epoch epoch;
  WorkerId from;  ///< empty: nobody
  WorkerId to;    ///< empty: nobody
  ChangeReason reason = ChangeReason::kCreated;
  // A planned move's phases (the commands' clocks).
  bool prepared = false;           ///< the move began with a prepare phase
  bool prepare_timed_out = false;  ///< the target never said it was prepared
  bool drain_timed_out = false;    ///< the source never released: its lease was waited out
  uint64_t at_ms = 0;
  uint32_t prepare_ms = 0;  ///< how long the target prepared while the source served
  uint32_t drain_ms = 0;    ///< how long the source drained (0 for changes that were not handoffs)
  bool operator==(const HistoryRecord&) const = default;
};

/// Where the state machine hands the records it produces. Calls come in
/// apply order, on the applying thread; a sink must not call back into the
/// state machine.
class HistorySink {
 public:
  virtual ~HistorySink() = default;
  /// A change of `shard`'s owner, at h.revision (higher than any before).
  virtual void record(const ShardId& shard, const HistoryRecord& h) = 0;
  /// `shard` was deleted at `revision`: its records (all older) go with it.
  virtual void erase(const ShardId& shard, Revision revision) = 0;
};

/// History kept in memory, with the same bound as the controller's store.
class MemoryHistory final : public HistorySink {
 public:
  explicit MemoryHistory(size_t per_shard = 32) : per_shard_(per_shard) {}
  void record(const ShardId& shard, const HistoryRecord& h) override;
  void erase(const ShardId& shard, Revision revision) override;
  /// Oldest first; empty for a shard without records.
  std::vector<HistoryRecord> of(const ShardId& shard) const;
  size_t shards() const { return records_.size(); }

 private:
  size_t per_shard_;
  std::map<ShardId, std::deque<HistoryRecord>> records_;
};

}  // namespace tenure::controlplane
