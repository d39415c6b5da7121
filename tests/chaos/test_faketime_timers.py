"""The clock faults' preload works: an Asio program's timers fire under
libfaketime with libtenure_timerfd_passthrough.so first (clocks.py), and
they do not under libfaketime alone, which shows the probe still meets the
libfaketime bug the library works around (if a later libfaketime fixes it,
this test says so, and the library can go).

Usage: test_faketime_timers.py BIN_DIR"""

import os
import subprocess
import sys
import tempfile

import clocks

HANG_SECONDS = 5


def run_probe(bin_dir, preload):
    with tempfile.TemporaryDirectory() as d:
        rc_file = os.path.join(d, "faketime.rc")
        with open(rc_file, "w") as f:
            f.write("+0s x1.0200\n")
        env = dict(os.environ, LD_PRELOAD=preload, FAKETIME_TIMESTAMP_FILE=rc_file, FAKETIME_CACHE_DURATION="1")
        try:
            p = subprocess.run([os.path.join(bin_dir, "faketime_timer_probe")], env=env,
                               capture_output=True, text=True, timeout=HANG_SECONDS)
            return "exit %d: %s" % (p.returncode, (p.stdout + p.stderr).strip())
        except subprocess.TimeoutExpired:
            return "hung"


def main():
    bin_dir = os.path.abspath(sys.argv[1])
    if not clocks.available():
        sys.exit("FAIL: libfaketime is not installed (apt-get install libfaketime): %s" % clocks.LIB)
    shim = os.path.join(bin_dir, clocks.TIMERFD_PASSTHROUGH)
    alone = run_probe(bin_dir, clocks.LIB)
    with_shim = run_probe(bin_dir, "%s %s" % (shim, clocks.LIB))
    print("libfaketime alone: %s\nwith %s first: %s" % (alone, clocks.TIMERFD_PASSTHROUGH, with_shim))
    if with_shim != "exit 0: 50 timers fired":
        sys.exit("FAIL: Asio timers do not fire under libfaketime even with the passthrough")
    if alone != "hung":
        sys.exit("FAIL: the probe no longer hangs under libfaketime alone: the bug the passthrough works "
                 "around is gone or the probe no longer meets it (see timerfd_passthrough.cc)")
    print("ok")


if __name__ == "__main__":
    main()
