#pragma once
// The agent's YAML config (CONTRACT.md, "Agent config"), read as strictly
// as the controller's: every error is one line naming the key path. No
// exception leaves this module.

#include <cstdint>
#include <string>
#include <vector>

#include "config/config_error.h"
#include "config/host_port.h"
#include "config/tls_config.h"

namespace tenure::config {

struct AgentConfig {
  std::string worker_id;  ///< [A-Za-z0-9._-]{1,64}
  HostPort listen;        ///< the agent's own HTTP API
  std::string advertise;  ///< validated host:port clients dial; defaults to listen.str()
  std::vector<std::string> controllers;  ///< at least one validated host:port
  std::string data_dir;   ///< non-empty
  std::string zone;       ///< fault domain; empty when not given
  double capacity = 1;    ///< placement weight, finite and > 0
  uint32_t heartbeat_interval_ms = 500;  ///< > 0
  struct Auth {
    std::string agent_token;   ///< presented to the controllers; empty: none sent
    std::string client_token;  ///< required by /v1/data and /v1/fence; empty: they are open
  } auth;
  using Tls = TlsConfig;
  Tls tls;
  /// The data-plane program told of changes (CONTRACT.md, "Agent and program").
  struct App {
    std::string url;  ///< "http://host:port[/prefix]"; empty: no program calls
    uint32_t prepare_timeout_ms = 5000;  ///< > 0
    uint32_t drain_timeout_ms = 5000;    ///< > 0
    /// Sent as "Authorization: Bearer <token>" with every call, so that the
    /// program can refuse calls that are not its agent's (a forged drain or
    /// revoke would make a shard unavailable); empty: none sent.
    std::string token;
  } app;
  /// True when cert_file and key_file are set (they come together).
  bool tls_enabled() const { return !tls.cert_file.empty(); }

  /// Where the config came from ("<inline>" for parsed text), for messages.
  std::string source;
};

/// Reads and validates the config file at `path`.
ConfigResult<AgentConfig> load_agent_config(const std::string& path);
/// Validates YAML text; `source` names it in error messages.
ConfigResult<AgentConfig> parse_agent_config(const std::string& yaml_text, const std::string& source = "<inline>");

}  // namespace tenure::config
