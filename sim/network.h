#pragma once
// The simulated network between members: every message is independently
// lost, duplicated and delayed (which reorders it) according to the run's
// options, and partitions block directed links for a while. Symmetric
// splits, one-way cuts and single-node isolation are all sets of blocked
// directed links; a message is lost if its link is blocked when it is sent
// or when it would arrive.

#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "consensus/types.h"
#include "sim/options.h"
#include "sim/rng.h"

namespace tenure::sim {

using consensus::NodeId;

class Network {
 public:
  Network(const RunOptions& o, Rng& rng) : o_(o), rng_(rng) {}

  /// The delays (virtual microseconds) after which copies of a message sent
  /// now arrive: none when it is lost, two when it is duplicated.
  std::vector<int64_t> route(const NodeId& from, const NodeId& to);
  bool link_up(const NodeId& from, const NodeId& to) const { return !blocked_.count({from, to}); }

  /// Blocks from -> to until heal().
  void block(const NodeId& from, const NodeId& to) { blocked_.insert({from, to}); }
  /// Blocks both directions between every member of `side` and every other node.
  void split(const std::set<NodeId>& side, const std::vector<NodeId>& all);
  void heal() { blocked_.clear(); }
  bool partitioned() const { return !blocked_.empty(); }
  /// Stops loss, duplication and slow messages (the liveness phase).
  void set_lossless() { lossless_ = true; }
  /// "a>b,c>d" for traces; sorted, so deterministic.
  std::string describe() const;

 private:
  int64_t delay();

  const RunOptions& o_;
  Rng& rng_;
  std::set<std::pair<NodeId, NodeId>> blocked_;
  bool lossless_ = false;
};

}  // namespace tenure::sim
