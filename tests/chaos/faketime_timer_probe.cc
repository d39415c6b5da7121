// A probe for the chaos suite's clock faults (test_faketime_timers.py): runs
// one Asio timer armed in the past, then a chain of short timers, and exits 0
// once all have fired. Under libfaketime alone it never finishes (the first
// timer makes libfaketime arm Asio's timerfd a year ahead); with
// libtenure_timerfd_passthrough.so preloaded first it does.
#include <chrono>
#include <cstdio>
#include <functional>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

int main() {
  boost::asio::io_context io;
  boost::asio::steady_timer timer(io);
  int fired = 0;
  constexpr int kTimers = 50;
  std::function<void()> arm_next = [&] {
    // Every other timer is set already expired: Asio then arms its timerfd
    // with an absolute time of 1 ns, the call libfaketime gets wrong.
    if (fired % 2 == 0) {
      timer.expires_at(std::chrono::steady_clock::now() - std::chrono::milliseconds(1));
    } else {
      timer.expires_after(std::chrono::milliseconds(2));
    }
    timer.async_wait([&](const boost::system::error_code&) {
      if (++fired < kTimers) arm_next();
    });
  };
  arm_next();
  io.run();
  std::printf("%d timers fired\n", fired);
  return fired == kTimers ? 0 : 1;
}
