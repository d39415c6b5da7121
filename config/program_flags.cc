#include "config/program_flags.h"

#include <cstdio>

namespace tenure::config {

namespace {

Error<FlagErrc> fail(FlagErrc code, std::string message) { return {code, std::move(message)}; }

}  // namespace

Result<ProgramFlags, FlagErrc> parse_program_flags(int argc, const char* const* argv) {
  ProgramFlags out;
  bool have_config = false, check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--help" || a == "-h") return ProgramFlags{ProgramFlags::Action::kHelp, {}};
    if (a == "--version") return ProgramFlags{ProgramFlags::Action::kVersion, {}};
    if (a == "--check-config") {
      check_only = true;
      continue;
    }
    std::string_view value;
    if (a == "--config") {
      // A following flag is not taken as the FILE: "--config --check-config"
      // is a forgotten FILE, not a file named "--check-config" (a path that
      // starts with '-' is written --config=-odd.yaml or ./-odd.yaml).
      if (i + 1 >= argc || std::string_view(argv[i + 1]).rfind("-", 0) == 0) {
        return fail(FlagErrc::kMissingValue, "--config needs a FILE (see --help)");
      }
      value = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      value = a.substr(9);
      if (value.empty()) return fail(FlagErrc::kMissingValue, "--config needs a FILE (see --help)");
    } else if (a.rfind("-", 0) == 0) {
      return fail(FlagErrc::kUnknownFlag, "unknown flag \"" + std::string(a) + "\" (see --help)");
    } else {
      return fail(FlagErrc::kUnexpectedArgument, "unexpected argument \"" + std::string(a) + "\" (see --help)");
    }
    if (have_config) {
      return fail(FlagErrc::kRepeated, "--config given twice (\"" + out.config_path + "\" and \"" +
                                           std::string(value) + "\")");
    }
    have_config = true;
    out.config_path = std::string(value);
  }
  if (!have_config) return fail(FlagErrc::kMissingConfig, "missing --config FILE (see --help)");
  out.action = check_only ? ProgramFlags::Action::kCheckConfig : ProgramFlags::Action::kRun;
  return out;
}

std::string_view version() { return TENURE_VERSION; }

std::optional<int> finish_early(std::string_view program, std::string_view usage,
                                const Result<ProgramFlags, FlagErrc>& flags) {
  if (!flags.ok()) {
    // One line, nothing else (CONTRACT.md): scripts read the reason.
    std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(program.size()), program.data(),
                 flags.error().message.c_str());
    return 2;
  }
  switch (flags.value().action) {
    case ProgramFlags::Action::kHelp:
      std::fwrite(usage.data(), 1, usage.size(), stdout);
      return 0;
    case ProgramFlags::Action::kVersion:
      std::printf("%.*s %.*s\n", static_cast<int>(program.size()), program.data(),
                  static_cast<int>(version().size()), version().data());
      return 0;
    case ProgramFlags::Action::kRun:
    case ProgramFlags::Action::kCheckConfig: break;
  }
  return std::nullopt;
}

}  // namespace tenure::config
