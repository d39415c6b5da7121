"""Clock faults on real processes through libfaketime (Debian's libfaketime):
each controller and agent of a run with a clock fault starts with the
library preloaded and a control file of its own, which the nemesis rewrites
to move that process's clocks (read again within a second:
FAKETIME_CACHE_DURATION).

Controllers then run `tenure-controller-glibc-malloc` (see CONTROLLER), and
every such process preloads TIMERFD_PASSTHROUGH before libfaketime.

A process runs in one of two modes for the whole run, because libfaketime
applies one offset to every clock it fakes and a monotonic clock must never
jump (the lease arithmetic assumes it does not, as every lease-based system
does; no kernel makes CLOCK_MONOTONIC jump):
- `jump`: only the wall clock (CLOCK_REALTIME) is faked
  (FAKETIME_DONT_FAKE_MONOTONIC=1); the nemesis moves it minutes to hours
  forward or back and then back to true time.
- `drift`: every clock is faked and runs at a constant rate of 0.98-1.02
  of real time for the life of the process; the nemesis draws a new rate
  only when it restarts the process. A rate changed in a running process
  makes its clocks jump: libfaketime scales the time since it started, and
  its FAKETIME_XRESET, which should smooth that, let a controller's
  monotonic clock leap 132 s forward in soak seed 308 (a controller whose
  clock leaps forward fails leases over early, outside what any lease can
  survive). Any agent against any controller stays within the drift bound
  the lease allows (an agent's clock runs at least 0.95 times a
  controller's: docs/fencing.md), 0.98/1.02 = 0.96.
"""

import os

LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
# Preloaded before LIB: libfaketime rewrites timerfd_settime's absolute times
# wrongly, which froze every Asio timer of a process (the library's comment,
# tests/chaos/timerfd_passthrough.cc). In the build's bin directory.
TIMERFD_PASSTHROUGH = "libtenure_timerfd_passthrough.so"
# libfaketime cannot start a program linked with jemalloc (it reads the
# clock while libfaketime initializes): controllers with a clock of their
# own run the same code built with glibc's malloc (programs/CMakeLists.txt).
CONTROLLER = "tenure-controller-glibc-malloc"
MODES = ("jump", "drift")
MAX_DRIFT = 0.02


def draw_rate(rng):
    """A drift-mode process's rate: 0.98-1.02, never exactly 1."""
    return 1.0 + rng.choice((-1, 1)) * rng.uniform(0.005, MAX_DRIFT)


def available():
    return os.path.exists(LIB)


class ClockControl:
    """Per process: its mode and the file that sets its fake time."""

    def __init__(self, run_dir, bin_dir):
        self.run_dir = run_dir
        self.preload = "%s %s" % (os.path.join(bin_dir, TIMERFD_PASSTHROUGH), LIB)
        if not os.path.exists(os.path.join(bin_dir, TIMERFD_PASSTHROUGH)):
            raise SystemExit("clock faults need %s in %s (build it: ninja -C build tenure_timerfd_passthrough)"
                             % (TIMERFD_PASSTHROUGH, bin_dir))
        self.modes = {}  # process id -> mode
        self.files = {}

    def attach(self, proc, mode, rate=1.0):
        """Sets `proc` (a harness ServerProcess, before its start) to run
        under libfaketime in `mode` (in `drift` mode at `rate`)."""
        assert mode in MODES
        path = os.path.join(self.run_dir, "faketime-%s.rc" % proc.id)
        self.files[proc.id] = path
        self.modes[proc.id] = mode
        self.set(proc.id, 0, rate if mode == "drift" else 1.0)
        env = {"LD_PRELOAD": self.preload, "FAKETIME_TIMESTAMP_FILE": path, "FAKETIME_CACHE_DURATION": "1"}
        if mode == "jump":
            env["FAKETIME_DONT_FAKE_MONOTONIC"] = "1"
        proc.extra_env = dict(proc.extra_env, **env)
        if proc.kind == "member":
            proc.binary_name = CONTROLLER

    def set(self, pid, offset_s, rate):
        """The process's clocks: `offset_s` from true time (wall clock only,
        in jump mode, from now on), running at `rate` (drift mode: set only
        while the process is down; it counts from the process's start)."""
        with open(self.files[pid] + ".tmp", "w") as f:
            f.write("%+ds x%.4f\n" % (int(offset_s), rate))
        os.replace(self.files[pid] + ".tmp", self.files[pid])

    def describe(self):
        """[(process id, mode, rate)] as the control files say now."""
        out = []
        for pid in sorted(self.modes):
            with open(self.files[pid]) as f:
                rate = float(f.read().split("x")[1])
            out.append((pid, self.modes[pid], rate))
        return out

    def in_mode(self, mode):
        return sorted(p for p, m in self.modes.items() if m == mode)
