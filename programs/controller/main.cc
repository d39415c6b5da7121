// tenure-controller --config FILE: one member of the controller group.
// --check-config loads and validates the config and exits, so an operator
// (or a package's test) can check a file before a service starts on it.
#include <csignal>
#include <cstdio>
#include <string>

#include "config/controller_config.h"
#include "config/program_flags.h"
#include "programs/controller/controller_app.h"

namespace {
const char* kUsage =
    "usage: tenure-controller --config FILE [--check-config]\n"
    "       tenure-controller --help | --version\n"
    "\n"
    "Runs one member of the Raft-replicated Tenure controller group.\n"
    "  --config FILE    the controller's YAML config (see docs/operations.md)\n"
    "  --check-config   load and validate FILE (and the token and TLS files it\n"
    "                   names), print a one-line summary and exit: 0 when\n"
    "                   valid, 2 with the reason when not; starts nothing\n"
    "  --help, -h       this text\n"
    "  --version        print the version and exit\n";

/// A bad config: its one-line reason, nothing else (CONTRACT.md).
int usage_error(const std::string& reason) {
  std::fprintf(stderr, "tenure-controller: %s\n", reason.c_str());
  return 2;
}

/// The --check-config summary: what the file says, never a secret.
std::string summary(const tenure::config::ControllerConfig& c) {
  std::string s = "node " + c.node_id + ", listen " + c.listen.str() + ", data_dir " + c.data_dir + ", ";
  s += c.peers.empty() ? std::string("no peers (data_dir must hold state)") : std::to_string(c.peers.size()) + " peers";
  s += c.auth.admin_token.empty() ? ", auth off" : ", auth on";
  s += !c.tls_enabled() ? ", tls off" : c.tls.ca_file.empty() ? ", tls on" : ", tls on (client certificates required)";
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  auto flags = tenure::config::parse_program_flags(argc, argv);
  if (auto code = tenure::config::finish_early("tenure-controller", kUsage, flags)) return *code;
  const std::string& config_path = flags.value().config_path;
  auto cfg = tenure::config::load_controller_config(config_path);
  if (!cfg.ok()) return usage_error(cfg.error().message);  // one line, also for --check-config
  if (flags.value().action == tenure::config::ProgramFlags::Action::kCheckConfig) {
    std::printf("tenure-controller: config %s ok: %s\n", config_path.c_str(), summary(cfg.value()).c_str());
    return 0;
  }
  // A file size limit (RLIMIT_FSIZE) reached is then a write error that the
  // storage reports in one line before it stops, not a silent death by signal.
  std::signal(SIGXFSZ, SIG_IGN);
  tenure::controller::ControllerApp app(std::move(cfg.value()));
  return app.run();
}
