#include "config/controller_config.h"

#include <set>

#include "config/yaml_reader.h"

namespace tenure::config {

namespace {

using detail::index_path;
using detail::join_path;
using detail::YamlReader;

void read_peers(YamlReader& r, const YAML::Node& node, ControllerConfig& cfg) {
  if (!node.IsDefined() || !r.check_list(node, "peers") || node.IsNull()) return;
  std::set<std::string> ids;
  for (size_t i = 0; i < node.size() && !r.failed(); ++i) {
    const YAML::Node peer = node[i];
    const std::string path = index_path("peers", i);
    if (!r.check_map(peer, path, {"id", "address"})) return;
    if (peer.IsNull()) {
      r.fail_missing(join_path(path, "id"));
      return;
    }
    PeerConfig p;
    HostPort address;
    r.read_id(peer["id"], join_path(path, "id"), p.id, /*required=*/true);
    r.read_host_port(peer["address"], join_path(path, "address"), address, /*required=*/true);
    if (r.failed()) return;
    if (!ids.insert(p.id).second) {
      r.fail(ConfigErrorCode::kInvalidValue, join_path(path, "id"), "duplicate peer id \"" + p.id + "\"");
      return;
    }
    p.address = address.str();
    cfg.peers.push_back(std::move(p));
  }
}

void read_raft(YamlReader& r, const YAML::Node& node, ControllerConfig::Raft& raft) {
  if (!node.IsDefined() ||
      !r.check_map(node, "raft",
                   {"heartbeat_interval_ms", "election_timeout_ms", "snapshot_threshold_entries", "lease_reads"})) {
    return;
  }
  if (node.IsNull()) return;
  r.read_u32(node["heartbeat_interval_ms"], "raft.heartbeat_interval_ms", raft.heartbeat_interval_ms, 1);
  r.read_u32(node["election_timeout_ms"], "raft.election_timeout_ms", raft.election_timeout_ms, 1);
  r.read_u64(node["snapshot_threshold_entries"], "raft.snapshot_threshold_entries", raft.snapshot_threshold_entries,
             1);
  r.read_bool(node["lease_reads"], "raft.lease_reads", raft.lease_reads);
}

void read_auth(YamlReader& r, const YAML::Node& node, ControllerConfig::Auth& auth) {
  if (!node.IsDefined() ||
      !r.check_map(node, "auth", {"admin_token", "admin_token_file", "agent_token", "agent_token_file", "peer_token",
                                  "peer_token_file", "read_token", "read_token_file"}) ||
      node.IsNull()) {
    return;
  }
  const std::pair<const char*, std::string*> tokens[] = {{"admin_token", &auth.admin_token},
                                                         {"agent_token", &auth.agent_token},
                                                         {"peer_token", &auth.peer_token},
                                                         {"read_token", &auth.read_token}};
  for (const auto& [key, out] : tokens) detail::read_secret(r, node, "auth", key, *out);
  if (r.failed()) return;
  // All or nothing: a route whose token is unset would be open to anyone
  // while the operator believes the cluster is protected.
  std::string missing;
  size_t given = 0;
  for (size_t i = 0; i < 3; ++i) {
    if (!tokens[i].second->empty()) {
      ++given;
      continue;
    }
    missing += std::string(missing.empty() ? "" : ", ") + "\"auth." + tokens[i].first + "\"";
  }
  if (given != 3 && (given > 0 || !auth.read_token.empty())) {
    r.fail(ConfigErrorCode::kMissingKey, "auth",
           "missing required key" + std::string(3 - given > 1 ? "s " : " ") + missing +
               " (admin_token, agent_token and peer_token are all or nothing; each may be given as *_token_file)");
    return;
  }
  // A token shared by two roles would make its holder both.
  for (size_t i = 0; i < 4; ++i) {
    for (size_t j = i + 1; j < 4; ++j) {
      if (!tokens[i].second->empty() && *tokens[i].second == *tokens[j].second) {
        r.fail(ConfigErrorCode::kInvalidValue, std::string("auth.") + tokens[j].first,
               std::string("must differ from auth.") + tokens[i].first);
        return;
      }
    }
  }
}

void read_placement(YamlReader& r, const YAML::Node& node, ControllerConfig::Placement& placement) {
  if (!node.IsDefined() ||
      !r.check_map(node, "placement", {"max_concurrent_moves", "join_delay_ms", "prepare_timeout_ms"}) ||
      node.IsNull()) {
    return;
  }
  r.read_u32(node["max_concurrent_moves"], "placement.max_concurrent_moves", placement.max_concurrent_moves, 1);
  r.read_u32(node["join_delay_ms"], "placement.join_delay_ms", placement.join_delay_ms);
  r.read_u32(node["prepare_timeout_ms"], "placement.prepare_timeout_ms", placement.prepare_timeout_ms, 1);
}

void read_limits(YamlReader& r, const YAML::Node& node, ControllerConfig::Limits& limits) {
  if (!node.IsDefined() || !r.check_map(node, "limits", {"max_watch_streams", "max_connections"}) ||
      node.IsNull()) {
    return;
  }
  r.read_u32(node["max_watch_streams"], "limits.max_watch_streams", limits.max_watch_streams, 1);
  r.read_u32(node["max_connections"], "limits.max_connections", limits.max_connections, 16);
}

// Rules across keys, checked once every key read well.
void check_cross_keys(YamlReader& r, const ControllerConfig& cfg) {
  if (cfg.raft.heartbeat_interval_ms >= cfg.raft.election_timeout_ms) {
    r.fail(ConfigErrorCode::kInvalidValue, "raft.heartbeat_interval_ms",
           "must be less than raft.election_timeout_ms (" + std::to_string(cfg.raft.heartbeat_interval_ms) +
               " >= " + std::to_string(cfg.raft.election_timeout_ms) + ")");
    return;
  }
  // peers without this node is allowed: such a node joins an existing group
  // and waits for its leader to add it (POST /v1/members; see
  // ControllerApp's node_options). Refusing it made adding a member impossible.
}

}  // namespace

ConfigResult<ControllerConfig> parse_controller_config(const std::string& yaml_text, const std::string& source) {
  YamlReader r(source);
  ControllerConfig cfg;
  cfg.source = source;
  try {
    const YAML::Node root = r.parse(yaml_text);
    if (!r.check_map(root, "", {"node_id", "data_dir", "listen", "peers", "raft", "worker_lease_ms", "auth",
                                "tls", "placement", "watch_events_kept", "limits"})) {
      return r.error();
    }
    r.read_id(root["node_id"], "node_id", cfg.node_id, /*required=*/true);
    r.read_nonempty(root["data_dir"], "data_dir", cfg.data_dir, /*required=*/true);
    r.read_host_port(root["listen"], "listen", cfg.listen, /*required=*/true);
    read_peers(r, root["peers"], cfg);
    read_raft(r, root["raft"], cfg.raft);
    r.read_u32(root["worker_lease_ms"], "worker_lease_ms", cfg.worker_lease_ms, 1);
    r.read_u32(root["watch_events_kept"], "watch_events_kept", cfg.watch_events_kept, 16);
    read_auth(r, root["auth"], cfg.auth);
    detail::read_tls(r, root["tls"], "tls", cfg.tls, /*ca_needs_cert=*/true);
    read_placement(r, root["placement"], cfg.placement);
    read_limits(r, root["limits"], cfg.limits);
    if (!r.failed()) check_cross_keys(r, cfg);
  } catch (const std::exception& e) {
    // yaml-cpp may throw on a malformed tree we did not foresee; it stops here.
    r.fail(ConfigErrorCode::kInvalidYaml, "", std::string("invalid YAML: ") + e.what());
  }
  if (r.failed()) return r.error();
  return cfg;
}

ConfigResult<ControllerConfig> load_controller_config(const std::string& path) {
  YamlReader r(path);
  auto text = detail::read_config_file(path, r);
  if (!text) return r.error();
  return parse_controller_config(*text, path);
}

ConfigError peers_required_error(const ControllerConfig& cfg) {
  return ConfigError{ConfigErrorCode::kMissingKey,
                     "config " + cfg.source + ": missing required key \"peers\" (required on first start: data_dir " +
                         cfg.data_dir + " holds no state)"};
}

}  // namespace tenure::config
