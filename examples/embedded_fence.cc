// embedded_fence: a data-plane program that embeds the Tenure agent instead
// of running tenure-agent beside it. It fences its own writes with the C++
// call: a write for shard S carries the epoch the program was granted S at,
// and is applied only while the agent admits that epoch.
//
//   embedded_fence --config agent.yaml [--seconds 10]
//
// The config is the agent's (CONTRACT.md, "Agent config"). Every second it
// writes one value per shard it holds into its own (in-memory) store, and
// shows what a writer with an outdated epoch is told.
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>

#include "config/agent_config.h"
#include "dataplane_agent/agent.h"

using tenure::agent::Agent;
using tenure::agent::AgentOptions;
using tenure::agent::Epoch;
using tenure::agent::FenceResult;

int main(int argc, char** argv) {
  std::string config_path;
  int seconds = 10;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--config") {
      config_path = argv[i + 1];
    } else if (flag == "--seconds") {
      seconds = std::atoi(argv[i + 1]);
    }
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "usage: embedded_fence --config FILE [--seconds N]\n");
    return 2;
  }
  auto cfg = tenure::config::load_agent_config(config_path);
  if (!cfg.ok()) {
    std::fprintf(stderr, "embedded_fence: %s\n", cfg.error().message.c_str());
    return 2;
  }
  AgentOptions options;
  options.serve_http = false;  // this program is the data plane: the fence is a function call
  Agent agent(std::move(cfg.value()), options);
  if (auto started = agent.start(); !started.ok()) {
    std::fprintf(stderr, "embedded_fence: %s\n", started.error().message.c_str());
    return 1;
  }
  if (!agent.wait_ready(std::chrono::seconds(10))) {
    std::fprintf(stderr, "embedded_fence: not registered with the controllers within 10 s\n");
    return 1;
  }

  std::map<std::string, std::string> store;  // the program's own data, keyed by shard
  for (int round = 0; round < seconds; ++round) {
    for (const auto& grant : agent.grants()) {
      // The write and its fence are one step: no revoke can land in between.
      FenceResult r = agent.with_fence(grant.shard.str(), grant.epoch, [&] {
        store[grant.shard.str()] = "round " + std::to_string(round);
      });
      std::printf("write shard=%s epoch=%llu -> %s\n", grant.shard.str().c_str(),
                  static_cast<unsigned long long>(grant.epoch.value()), std::string(to_string(r.code)).c_str());
      if (grant.epoch.value() > 1) {
        // A writer still holding the previous owner's epoch is refused.
        FenceResult stale = agent.fence(grant.shard, Epoch(grant.epoch.value() - 1));
        std::printf("write shard=%s epoch=%llu -> %s (current_epoch=%llu)\n", grant.shard.str().c_str(),
                    static_cast<unsigned long long>(grant.epoch.value() - 1), std::string(to_string(stale.code)).c_str(),
                    static_cast<unsigned long long>(stale.current_epoch.value()));
      }
    }
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  agent.shutdown();
  std::printf("stored %zu values; left the controllers\n", store.size());
  return 0;
}
