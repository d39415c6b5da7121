#pragma once
// The virtual clock: actions ordered by (time, insertion order). Ties break
// by insertion, never by address or hash, so a run is a pure function of
// its seed.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

namespace tenure::sim {

class EventQueue {
 public:
  using Action = std::function<void()>;

  /// Schedules `a` at virtual time `t_us` (not before now).
  void at(int64_t t_us, Action a) {
    heap_.push_back(Event{std::max(t_us, now_), seq_++, std::move(a)});
    std::push_heap(heap_.begin(), heap_.end(), Later());
  }
  /// Runs the earliest action; false when none is left.
  bool run_next() {
    if (heap_.empty()) return false;
    std::pop_heap(heap_.begin(), heap_.end(), Later());
    Event e = std::move(heap_.back());
    heap_.pop_back();
    now_ = e.t_us;
    ++executed_;
    e.action();
    return true;
  }
  int64_t now() const { return now_; }
  uint64_t executed() const { return executed_; }

 private:
  struct Event {
    int64_t t_us;
    uint64_t seq;
    Action action;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      return a.t_us != b.t_us ? a.t_us > b.t_us : a.seq > b.seq;
    }
  };
  std::vector<Event> heap_;
  int64_t now_ = 0;
  uint64_t seq_ = 0;
  uint64_t executed_ = 0;
};

}  // namespace tenure::sim
