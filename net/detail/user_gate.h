#pragma once
// Internal to net/: a gate around calls into the program (handlers,
// callbacks), so that once stop()/shutdown() returns, the network layer never
// calls into the program again, even from other io_context threads.

#include <atomic>
#include <mutex>
#include <shared_mutex>

namespace tenure::net::detail {

class UserGate {
 public:
  /// Runs `f` unless close() has begun; false if it was skipped.
  template <typename F>
  bool call(F&& f) {
    std::shared_lock lock(mu_);
    if (closed_.load()) return false;
    ++depth_;
    struct Exit {
      ~Exit() { --depth_; }
    } exit;
    f();
    return true;
  }
  /// Stops further calls and waits for calls running on other threads. From
  /// inside a call it cannot wait for itself, so it only stops further ones.
  void close() {
    closed_.store(true);
    if (depth_ == 0) std::unique_lock lock(mu_);
  }
  bool closed() const { return closed_.load(); }

 private:
  std::shared_mutex mu_;
  std::atomic<bool> closed_{false};
  static inline thread_local int depth_ = 0;
};

}  // namespace tenure::net::detail
