#pragma once
// Wires one controller process: storage, Raft driver, peer transport, REST
// API and HTTP listener on one io_context run by a small thread pool.

#include <memory>
#include <thread>
#include <vector>

#include "config/controller_config.h"

namespace tenure::controller {

class ControllerApp {
 public:
  explicit ControllerApp(config::ControllerConfig config);
  ~ControllerApp();
  /// Runs until SIGTERM or SIGINT; returns the process exit code.
  int run();

  struct Parts;

 private:
  config::ControllerConfig config_;
  std::unique_ptr<Parts> parts_;
};

}  // namespace tenure::controller
