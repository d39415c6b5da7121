#pragma once
// A strongly typed unsigned counter: terms and log indexes in the Raft
// core, epochs and revisions in the control plane. No bare integer crosses
// an interface (DESIGN.md, house style 3).

#include <compare>
#include <cstdint>
#include <ostream>

namespace tenure {

/// A strongly typed unsigned counter. `Tag` only distinguishes the types.
template <typename Tag>
class Counter {
 public:
  constexpr Counter() = default;
  constexpr explicit Counter(uint64_t value) : value_(value) {}
  constexpr uint64_t value() const { return value_; }
  constexpr auto operator<=>(const Counter&) const = default;
  constexpr Counter next() const { return Counter(value_ + 1); }
  constexpr Counter prev() const { return Counter(value_ == 0 ? 0 : value_ - 1); }
  constexpr Counter plus(uint64_t n) const { return Counter(value_ + n); }
  friend std::ostream& operator<<(std::ostream& os, Counter c) { return os << c.value_; }

 private:
  uint64_t value_ = 0;
};

}  // namespace tenure
