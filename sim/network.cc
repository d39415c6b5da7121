#include "sim/network.h"

namespace tenure::sim {

int64_t Network::delay() {
  if (!lossless_ && rng_.chance(o_.slow)) return rng_.range(o_.delay_max_us, o_.slow_max_us);
  return rng_.range(o_.delay_min_us, o_.delay_max_us);
}

std::vector<int64_t> Network::route(const NodeId& from, const NodeId& to) {
  std::vector<int64_t> out;
  if (!link_up(from, to)) return out;
  if (!lossless_ && rng_.chance(o_.drop)) return out;
  out.push_back(delay());
  if (!lossless_ && rng_.chance(o_.dup)) out.push_back(delay());
  return out;
}

void Network::split(const std::set<NodeId>& side, const std::vector<NodeId>& all) {
  for (const auto& a : side) {
    for (const auto& b : all) {
      if (side.count(b)) continue;
      block(a, b);
      block(b, a);
    }
  }
}

std::string Network::describe() const {
  std::string s;
  for (const auto& [a, b] : blocked_) {
    if (!s.empty()) s += ",";
    s += a.str() + ">" + b.str();
  }
  return s.empty() ? "none" : s;
}

}  // namespace tenure::sim
