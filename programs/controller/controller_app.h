#pragma once
// Wires one controller process: storage, Raft driver, peer transport, REST
// API and HTTP listener on one io_context run by a small thread pool.

#include <atomic>
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
  /// On a first start, waits until a peer answers; false to refuse or when stopped.
  bool may_start(const std::atomic<bool>& stopping);
  config::ControllerConfig config_;
  std::unique_ptr<Parts> parts_;
};

}  // namespace tenure::controller
