#pragma once
// A set of shard ids that refers to the ids in the state's shard map
// instead of copying them: what the state keeps per worker (the shards it
// owns) and for unassigned shards, a million entries each at scale. A
// std::set<ShardId> node is 80 bytes of heap with a short id (more with a
// long one: the id's own allocation); a pointer's node is 48.
//
// The ids must outlive their entries: the state erases a shard from these
// sets before it erases the shard from its map (std::map nodes never move,
// so the pointers stay valid while the shard exists). Iteration is in id
// order, as std::set<ShardId>'s.

#include <cstddef>
#include <iterator>
#include <set>

#include "controlplane/types.h"

namespace tenure::controlplane {

class ShardIdSet {
  struct ByValue {
    using is_transparent = void;
    bool operator()(const ShardId* a, const ShardId* b) const { return *a < *b; }
    bool operator()(const ShardId* a, const ShardId& b) const { return *a < b; }
    bool operator()(const ShardId& a, const ShardId* b) const { return a < *b; }
  };
  using Set = std::set<const ShardId*, ByValue>;

 public:
  class const_iterator {
   public:
    using iterator_category = std::bidirectional_iterator_tag;
    using value_type = ShardId;
    using difference_type = std::ptrdiff_t;
    using pointer = const ShardId*;
    using reference = const ShardId&;
    const_iterator() = default;
    explicit const_iterator(Set::const_iterator it) : it_(it) {}
    const ShardId& operator*() const { return **it_; }
    const ShardId* operator->() const { return *it_; }
    const_iterator& operator++() { return ++it_, *this; }
    const_iterator operator++(int) { return const_iterator(it_++); }
    const_iterator& operator--() { return --it_, *this; }
    const_iterator operator--(int) { return const_iterator(it_--); }
    bool operator==(const const_iterator&) const = default;

   private:
    Set::const_iterator it_;
  };
  using iterator = const_iterator;
  using const_reverse_iterator = std::reverse_iterator<const_iterator>;

  /// `id` must be the key of the shard's map entry (see above).
  void insert(const ShardId& id) { set_.insert(&id); }
  void erase(const ShardId& id) {
    auto it = set_.find(id);
    if (it != set_.end()) set_.erase(it);
  }
  size_t count(const ShardId& id) const { return set_.count(id); }
  size_t size() const { return set_.size(); }
  bool empty() const { return set_.empty(); }
  const_iterator begin() const { return const_iterator(set_.begin()); }
  const_iterator end() const { return const_iterator(set_.end()); }
  const_reverse_iterator rbegin() const { return const_reverse_iterator(end()); }
  const_reverse_iterator rend() const { return const_reverse_iterator(begin()); }
  const_iterator lower_bound(const ShardId& id) const { return const_iterator(set_.lower_bound(id)); }
  const_iterator upper_bound(const ShardId& id) const { return const_iterator(set_.upper_bound(id)); }
  /// Inserts at the end: `id` is after every id in the set (restore, in map order).
  void insert_last(const ShardId& id) { set_.insert(set_.end(), &id); }

 private:
  Set set_;
};

}  // namespace tenure::controlplane
