// Preloaded before libfaketime into every process of a chaos run with a clock
// fault (tests/chaos/clocks.py), so that timerfd_settime reaches the kernel
// as the program called it.
//
// Why: libfaketime 0.9.10 rewrites timerfd_settime's absolute times as if
// they were wall-clock times. Asio arms its timerfd with an absolute time of
// 1 ns on CLOCK_MONOTONIC when the earliest timer has already expired (a
// timer set in the past, or one that expired while the reactor computed its
// wait); libfaketime turns that into a time about a year ahead, and from
// then on no timer of that io_context fires: the timerfd is the reactor's
// only timer wake-up, and it is re-armed only when an earlier timer is
// added. A 15-line Asio program under libfaketime at rate 1.0 hangs on its
// second timer; with this library first, it runs. In chaos runs this froze
// a drift-mode controller's timers (watch progress lines, and whatever else
// waits on a timer) while its sockets kept working.
//
// Passing the call through unchanged is right for every timer an Asio
// program arms: relative waits are computed from the faked clock and last
// the same real time within the faked rate (0.98-1.02), and Asio checks the
// clock again when a wait ends; the absolute 1 ns means "now" on any clock.
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <unistd.h>

extern "C" __attribute__((visibility("default"))) int timerfd_settime(int fd, int flags,
                                                                      const struct itimerspec* new_value,
                                                                      struct itimerspec* old_value) {
  return static_cast<int>(syscall(SYS_timerfd_settime, fd, flags, new_value, old_value));
}
