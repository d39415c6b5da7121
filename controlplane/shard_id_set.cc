#include "controlplane/shard_id_set.h"

#include <algorithm>

namespace tenure::controlplane {
namespace {

bool id_before(const ShardId* a, const ShardId& b) { return *a < b; }
bool id_after(const ShardId& a, const ShardId* b) { return a < *b; }

}  // namespace

size_t ShardIdSet::chunk_for(const ShardId& id) const {
  auto it = std::lower_bound(chunks_.begin(), chunks_.end(), id,
                             [](const Chunk& c, const ShardId& v) { return *c.back() < v; });
  return static_cast<size_t>(it - chunks_.begin());
}

ShardIdSet::const_iterator ShardIdSet::normalized(size_t chunk, size_t pos) const {
  if (chunk < chunks_.size() && pos == chunks_[chunk].size()) ++chunk, pos = 0;
  return const_iterator(&chunks_, chunk, pos);
}

void ShardIdSet::insert(const ShardId& id) {
  size_t k = chunk_for(id);
  if (k == chunks_.size()) {
    // After every id: the end of the last chunk, or a first chunk.
    if (chunks_.empty() || chunks_.back().size() >= kChunk) chunks_.emplace_back();
    k = chunks_.size() - 1;
  }
  Chunk& c = chunks_[k];
  auto at = std::lower_bound(c.begin(), c.end(), id, id_before);
  if (at != c.end() && !(id < **at)) return;  // present
  c.insert(at, &id);
  ++size_;
  if (c.size() <= kChunk) return;
  // Split in halves; both keep room to grow without reallocating at once.
  Chunk upper(c.begin() + static_cast<std::ptrdiff_t>(c.size() / 2), c.end());
  c.resize(c.size() / 2);
  c.shrink_to_fit();
  chunks_.insert(chunks_.begin() + static_cast<std::ptrdiff_t>(k) + 1, std::move(upper));
}

void ShardIdSet::erase(const ShardId& id) {
  size_t k = chunk_for(id);
  if (k == chunks_.size()) return;
  Chunk& c = chunks_[k];
  auto at = std::lower_bound(c.begin(), c.end(), id, id_before);
  if (at == c.end() || id < **at) return;
  c.erase(at);
  --size_;
  if (c.empty()) {
    chunks_.erase(chunks_.begin() + static_cast<std::ptrdiff_t>(k));
    return;
  }
  // A chunk under a quarter full joins its next neighbour when both fit in
  // one, so erasures never leave a set of mostly empty chunks.
  if (c.size() < kChunk / 4 && k + 1 < chunks_.size() && c.size() + chunks_[k + 1].size() <= kChunk) {
    Chunk& next = chunks_[k + 1];
    c.insert(c.end(), next.begin(), next.end());
    chunks_.erase(chunks_.begin() + static_cast<std::ptrdiff_t>(k) + 1);
  }
  if (c.capacity() > 2 * c.size() + 8) c.shrink_to_fit();
}

size_t ShardIdSet::count(const ShardId& id) const {
  size_t k = chunk_for(id);
  if (k == chunks_.size()) return 0;
  const Chunk& c = chunks_[k];
  auto at = std::lower_bound(c.begin(), c.end(), id, id_before);
  return at != c.end() && !(id < **at) ? 1 : 0;
}

ShardIdSet::const_iterator ShardIdSet::lower_bound(const ShardId& id) const {
  size_t k = chunk_for(id);
  if (k == chunks_.size()) return end();
  const Chunk& c = chunks_[k];
  return normalized(k, static_cast<size_t>(std::lower_bound(c.begin(), c.end(), id, id_before) - c.begin()));
}

ShardIdSet::const_iterator ShardIdSet::upper_bound(const ShardId& id) const {
  // The first chunk whose last id is after `id` holds the answer.
  auto it = std::upper_bound(chunks_.begin(), chunks_.end(), id,
                             [](const ShardId& v, const Chunk& c) { return v < *c.back(); });
  size_t k = static_cast<size_t>(it - chunks_.begin());
  if (k == chunks_.size()) return end();
  const Chunk& c = chunks_[k];
  return normalized(k, static_cast<size_t>(std::upper_bound(c.begin(), c.end(), id, id_after) - c.begin()));
}

void ShardIdSet::insert_last(const ShardId& id) {
  // Capacities double up to kChunk (a power of two): a full chunk holds no spare room.
  if (chunks_.empty() || chunks_.back().size() >= kChunk) chunks_.emplace_back();
  chunks_.back().push_back(&id);
  ++size_;
}

}  // namespace tenure::controlplane
