#pragma once
// The command line that tenure-controller and tenure-agent share:
// --config FILE (or --config=FILE), --check-config, --help (-h), --version.
// One parser for both mains, so they accept and refuse the same things with
// the same one-line reasons (CONTRACT.md, "Build and binaries").

#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"

namespace tenure::config {

/// Why a command line was refused; every message names the flag or argument.
enum class FlagErrc {
  kUnknownFlag,         ///< a flag neither program knows
  kMissingValue,        ///< --config without a FILE (or followed by another flag)
  kRepeated,            ///< --config given twice
  kUnexpectedArgument,  ///< a word that is not a flag
  kMissingConfig,       ///< no --config to run or check
};

/// What the command line asks for.
struct ProgramFlags {
  enum class Action {
    kRun,          ///< load the config and serve
    kCheckConfig,  ///< load and validate the config, print a summary, exit
    kHelp,         ///< print the usage to stdout, exit 0
    kVersion,      ///< print "<program> <version>" to stdout, exit 0
  };
  Action action = Action::kRun;
  std::string config_path;  ///< set for kRun and kCheckConfig
};

/// Parses argv[1..argc). --help and --version win as soon as they are
/// reached, whatever follows; a bad word before them is reported first.
/// Errors are one line, e.g. `unknown flag "--bogus" (see --help)`.
Result<ProgramFlags, FlagErrc> parse_program_flags(int argc, const char* const* argv);

/// The project's version ("0.1.0", from CMake's project()).
std::string_view version();

/// The shared handling of a parsed command line for `program`
/// ("tenure-controller"): prints `usage` for --help and "<program>
/// <version>" for --version to stdout, or "<program>: <reason>" for a bad
/// command line to stderr, and returns the exit code (0, or 2 for a bad
/// line). nullopt when the program should go on (run or check its config).
std::optional<int> finish_early(std::string_view program, std::string_view usage,
                                const Result<ProgramFlags, FlagErrc>& flags);

}  // namespace tenure::config
