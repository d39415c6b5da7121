// tenure-agent --config FILE: the agent beside one data-plane worker.
// Only wiring: the Agent library does the work. --check-config loads and
// validates the config and exits, so a file can be checked before a service
// starts on it.
#include <csignal>
#include <cstdio>
#include <string>

#include "config/agent_config.h"
#include "config/program_flags.h"
#include "dataplane_agent/agent.h"

namespace {
const char* kUsage =
    "usage: tenure-agent --config FILE [--check-config]\n"
    "       tenure-agent --help | --version\n"
    "\n"
    "Runs the Tenure agent beside one data-plane worker: registers with the\n"
    "controllers, keeps its lease, follows its grants and serves the fence API.\n"
    "  --config FILE    the agent's YAML config (see docs/operations.md)\n"
    "  --check-config   load and validate FILE (and the token and TLS files it\n"
    "                   names), print a one-line summary and exit: 0 when\n"
    "                   valid, 2 with the reason when not; starts nothing\n"
    "  --help, -h       this text\n"
    "  --version        print the version and exit\n";

int usage_error(const std::string& reason) {
  std::fprintf(stderr, "tenure-agent: %s\n", reason.c_str());
  return 2;
}

/// The --check-config summary: what the file says, never a secret.
std::string summary(const tenure::config::AgentConfig& c) {
  std::string s = "worker " + c.worker_id + ", listen " + c.listen.str() + ", data_dir " + c.data_dir + ", " +
                  std::to_string(c.controllers.size()) + " controllers";
  s += c.auth.agent_token.empty() ? ", no agent token" : ", agent token set";
  s += c.tls_enabled() ? ", tls on" : ", tls off";
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  auto flags = tenure::config::parse_program_flags(argc, argv);
  if (auto code = tenure::config::finish_early("tenure-agent", kUsage, flags)) return *code;
  const std::string& config_path = flags.value().config_path;
  auto cfg = tenure::config::load_agent_config(config_path);
  if (!cfg.ok()) return usage_error(cfg.error().message);
  if (flags.value().action == tenure::config::ProgramFlags::Action::kCheckConfig) {
    std::printf("tenure-agent: config %s ok: %s\n", config_path.c_str(), summary(cfg.value()).c_str());
    return 0;
  }
  // A file size limit (RLIMIT_FSIZE) reached is then a write error that the
  // store reports in one line before it stops, not a silent death by signal.
  std::signal(SIGXFSZ, SIG_IGN);
  tenure::agent::Agent agent(std::move(cfg.value()));
  auto started = agent.start();
  if (!started.ok()) {
    std::fprintf(stderr, "tenure-agent: %s\n", started.error().message.c_str());
    return 1;
  }
  return agent.run_until_signal();
}
