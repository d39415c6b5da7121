#pragma once
// Internal to net/: a deadline that is cheap to move. Connections move their
// deadline on every request or chunk; re-arming an Asio timer each time
// costs a cancelled wait (a handler run) plus two timer-queue updates. Here
// a later deadline leaves the timer alone: the wait in flight wakes at the
// old time, sees the new deadline and sleeps again. Only an earlier one
// re-arms. All methods run on the owner's strand.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

namespace tenure::net::detail {

class Deadline {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr Clock::time_point kNever = Clock::time_point::max();

  /// `on_expiry` runs on the strand when a deadline passes (once per set()).
  Deadline(const boost::asio::any_io_executor& strand, std::function<void()> on_expiry)
      : timer_(strand), on_expiry_(std::move(on_expiry)) {}

  /// Sets the deadline (kNever: none). The wait holds `owner`, which must
  /// own this object.
  void set(Clock::time_point t, const std::shared_ptr<void>& owner) {
    at_ = t;
    if (t == kNever || armed_ <= t) return;
    arm(t, owner);
  }
  Clock::time_point at() const { return at_; }
  /// Stops for good (the owner is closing).
  void cancel() {
    at_ = kNever;
    armed_ = kNever;
    ++gen_;
    timer_.cancel();
  }

 private:
  void arm(Clock::time_point t, const std::shared_ptr<void>& owner) {
    armed_ = t;
    uint64_t gen = ++gen_;
    timer_.expires_at(t);
    timer_.async_wait([this, gen, owner](const boost::system::error_code& ec) {
      if (gen != gen_) return;  // superseded by a later arm() or cancel()
      armed_ = kNever;
      if (ec || at_ == kNever) return;
      if (Clock::now() < at_) return arm(at_, owner);
      at_ = kNever;
      on_expiry_();
    });
  }

  boost::asio::steady_timer timer_;
  std::function<void()> on_expiry_;
  Clock::time_point at_ = kNever;     ///< the deadline
  Clock::time_point armed_ = kNever;  ///< when the wait in flight wakes
  uint64_t gen_ = 0;
};

}  // namespace tenure::net::detail
