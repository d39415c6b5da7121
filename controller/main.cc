// tenure-controller --config FILE: one member of the controller group.
#include <cstdio>
#include <cstring>
#include <string>

#include "config/controller_config.h"
#include "controller/controller_app.h"

namespace {
const char* kUsage =
    "usage: tenure-controller --config FILE\n"
    "\n"
    "Runs one member of the Raft-replicated Tenure controller group.\n"
    "  --config FILE   the controller's YAML config (see docs/operations.md)\n"
    "  --help          this text\n";

int usage_error(const std::string& reason) {
  std::fprintf(stderr, "tenure-controller: %s\n%s", reason.c_str(), kUsage);
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if (a == "--config" && i + 1 < argc) {
      config_path = argv[++i];
    } else if (a.rfind("--config=", 0) == 0) {
      config_path = a.substr(9);
    } else if (a == "--config") {
      return usage_error("--config needs a FILE");
    } else {
      return usage_error("unknown flag \"" + a + "\"");
    }
  }
  if (config_path.empty()) return usage_error("missing --config FILE");
  auto cfg = tenure::config::load_controller_config(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "tenure-controller: %s\n%s", cfg.error().message.c_str(), kUsage);
    return 2;
  }
  tenure::controller::ControllerApp app(std::move(cfg.value()));
  return app.run();
}
