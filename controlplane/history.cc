#include "controlplane/history.h"

namespace tenure::controlplane {

void MemoryHistory::record(const ShardId& shard, const HistoryRecord& h) {
  auto& list = records_[shard];
  list.push_back(h);
  while (list.size() > per_shard_) list.pop_front();
}

void MemoryHistory::erase(const ShardId& shard, Revision) { records_.erase(shard); }

std::vector<HistoryRecord> MemoryHistory::of(const ShardId& shard) const {
  auto it = records_.find(shard);
  if (it == records_.end()) return {};
  return {it->second.begin(), it->second.end()};
}

}  // namespace tenure::controlplane
