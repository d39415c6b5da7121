#pragma once
// The tenure-sim command line (CONTRACT.md):
//   tenure-sim [--seed S | --seeds A-B] [--nodes N] [--ticks T] [--bug NAME]
//              [--verbose] [--max-violations K]
// For each seed it prints the drawn options first, a VIOLATION line and the
// replay command when a checker fires, and last `seeds=K violations=V`.

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>

#include "sim/options.h"

namespace tenure::sim {

struct CliOptions {
  uint64_t first_seed = 1;
  uint64_t last_seed = 1;
  Overrides overrides;
  bool verbose = false;
  bool list_bugs = false;
  bool help = false;
  /// Stop after this many failing seeds (0: run them all).
  uint64_t max_violations = 0;
};

/// Parses argv; on error returns nullopt and sets `error` to a one-line reason.
std::optional<CliOptions> parse_cli(int argc, const char* const* argv, std::string& error);
/// The --help text.
std::string usage();
/// Runs the seeds; returns the process exit code (0 clean, 1 violations, 2 bad flags).
int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err);
/// Makes a core abort (a broken TENURE_CHECK invariant) print the seed, its
/// replay command and the summary line before the process dies.
void install_abort_reporter();

}  // namespace tenure::sim
