#pragma once
// Strong types shared by the Raft core and everything that drives it.
// No bare integer crosses an interface: a Term cannot be passed where a
// LogIndex is expected (DESIGN.md, house style 3).

#include <compare>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <utility>

#include "common/counter.h"

namespace tenure::consensus {

template <typename Tag>
using Counter = tenure::Counter<Tag>;

struct TermTag {};
struct LogIndexTag {};
/// A Raft term (thesis §3.3). Term 0 means "none".
using Term = Counter<TermTag>;
/// A position in the replicated log; the first entry has index 1, 0 means "none".
using LogIndex = Counter<LogIndexTag>;

/// A controller group member, known by its configured id (e.g. "c1").
/// An empty NodeId means "none" (no leader known, no vote cast).
class NodeId {
 public:
  NodeId() = default;
  explicit NodeId(std::string id) : id_(std::move(id)) {}
  const std::string& str() const { return id_; }
  bool empty() const { return id_.empty(); }
  auto operator<=>(const NodeId&) const = default;
  friend std::ostream& operator<<(std::ostream& os, const NodeId& n) {
    return os << (n.id_.empty() ? "-" : n.id_);
  }

 private:
  std::string id_;
};

}  // namespace tenure::consensus

template <>
struct std::hash<tenure::consensus::NodeId> {
  size_t operator()(const tenure::consensus::NodeId& n) const noexcept {
    return std::hash<std::string>()(n.str());
  }
};
