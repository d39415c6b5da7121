#pragma once
// A set of shard ids that refers to the ids in the state's shard map
// instead of copying them: what the state keeps per worker (the shards it
// owns) and for unassigned shards, a million entries each at scale.
//
// Layout: sorted chunks of at most kChunk pointers, in order (a B+-tree's
// leaves without the inner nodes; the chunks are found by binary search
// over their last ids). About 11 bytes an entry (8 per pointer, chunks
// 50-100 % full), where a std::set of pointers took 48 (a node each) and a
// std::set<ShardId> 80: at 1,000,000 owned shards ~37 MB less in every
// member by that arithmetic (measured only together with other changes:
// docs/performance.md, "Controller memory"). Inserting or erasing moves at most a chunk's pointers.
//
// The ids must outlive their entries: the state erases a shard from these
// sets before it erases the shard from its map (std::map nodes never move,
// so the pointers stay valid while the shard exists). Iteration is in id
// order, as std::set<ShardId>'s. Unlike std::set's, an iterator is
// invalidated by any insert or erase into its set (the state never
// changes a set while something iterates it: both run on the Raft strand).

#include <cstddef>
#include <iterator>
#include <vector>

#include "controlplane/types.h"

namespace tenure::controlplane {

class ShardIdSet {
  using Chunk = std::vector<const ShardId*>;

 public:
  /// Entries per chunk at most; a full chunk splits in two halves.
  static constexpr size_t kChunk = 256;

  class const_iterator {
   public:
    using iterator_category = std::bidirectional_iterator_tag;
    using value_type = ShardId;
    using difference_type = std::ptrdiff_t;
    using pointer = const ShardId*;
    using reference = const ShardId&;
    const_iterator() = default;
    const ShardId& operator*() const { return *(*chunks_)[chunk_][pos_]; }
    const ShardId* operator->() const { return (*chunks_)[chunk_][pos_]; }
    const_iterator& operator++() {
      if (++pos_ == (*chunks_)[chunk_].size()) ++chunk_, pos_ = 0;
      return *this;
    }
    const_iterator operator++(int) {
      const_iterator was = *this;
      ++*this;
      return was;
    }
    const_iterator& operator--() {
      if (pos_ == 0) {
        pos_ = (*chunks_)[--chunk_].size();
      }
      --pos_;
      return *this;
    }
    const_iterator operator--(int) {
      const_iterator was = *this;
      --*this;
      return was;
    }
    bool operator==(const const_iterator& o) const { return chunk_ == o.chunk_ && pos_ == o.pos_; }

   private:
    friend class ShardIdSet;
    const_iterator(const std::vector<Chunk>* chunks, size_t chunk, size_t pos)
        : chunks_(chunks), chunk_(chunk), pos_(pos) {}
    const std::vector<Chunk>* chunks_ = nullptr;
    size_t chunk_ = 0;  ///< chunks_->size() at the end
    size_t pos_ = 0;
  };
  using iterator = const_iterator;
  using const_reverse_iterator = std::reverse_iterator<const_iterator>;

  /// `id` must be the key of the shard's map entry (see above).
  void insert(const ShardId& id);
  void erase(const ShardId& id);
  size_t count(const ShardId& id) const;
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  const_iterator begin() const { return const_iterator(&chunks_, 0, 0); }
  const_iterator end() const { return const_iterator(&chunks_, chunks_.size(), 0); }
  const_reverse_iterator rbegin() const { return const_reverse_iterator(end()); }
  const_reverse_iterator rend() const { return const_reverse_iterator(begin()); }
  /// The first entry not before `id`.
  const_iterator lower_bound(const ShardId& id) const;
  /// The first entry after `id`.
  const_iterator upper_bound(const ShardId& id) const;
  /// Inserts at the end: `id` is after every id in the set (restore, in map
  /// order). Fills chunks whole.
  void insert_last(const ShardId& id);

 private:
  /// The first chunk whose last id is not before `id` (chunks_.size() if none).
  size_t chunk_for(const ShardId& id) const;
  /// An iterator at (`chunk`, `pos`), moved to the next chunk's first entry
  /// when `pos` is one past its chunk's last.
  const_iterator normalized(size_t chunk, size_t pos) const;

  std::vector<Chunk> chunks_;  ///< none empty
  size_t size_ = 0;
};

}  // namespace tenure::controlplane
