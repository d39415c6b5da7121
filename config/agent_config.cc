#include "config/agent_config.h"

#include "config/yaml_reader.h"

namespace tenure::config {

namespace {

using detail::index_path;
using detail::YamlReader;

void read_controllers(YamlReader& r, const YAML::Node& node, AgentConfig& cfg) {
  if (!node.IsDefined()) {
    r.fail_missing("controllers");
    return;
  }
  if (!r.check_list(node, "controllers")) return;
  if (node.size() == 0) {
    r.fail(ConfigErrorCode::kInvalidValue, "controllers", "must list at least one controller address");
    return;
  }
  for (size_t i = 0; i < node.size() && !r.failed(); ++i) {
    HostPort hp;
    r.read_host_port(node[i], index_path("controllers", i), hp, /*required=*/true);
    if (!r.failed()) cfg.controllers.push_back(hp.str());
  }
}

void read_auth(YamlReader& r, const YAML::Node& node, AgentConfig::Auth& auth) {
  if (!node.IsDefined() ||
      !r.check_map(node, "auth", {"agent_token", "agent_token_file", "client_token", "client_token_file"}) ||
      node.IsNull()) {
    return;
  }
  detail::read_secret(r, node, "auth", "agent_token", auth.agent_token);
  detail::read_secret(r, node, "auth", "client_token", auth.client_token);
}

void read_app(YamlReader& r, const YAML::Node& node, AgentConfig::App& app) {
  if (!node.IsDefined() ||
      !r.check_map(node, "app", {"url", "prepare_timeout_ms", "drain_timeout_ms", "token", "token_file"}) ||
      node.IsNull()) {
    return;
  }
  r.read_nonempty(node["url"], "app.url", app.url, /*required=*/true);
  if (!r.failed()) {
    // Plain HTTP to a program beside the agent; host:port must parse.
    const std::string scheme = "http://";
    std::string rest = app.url.rfind(scheme, 0) == 0 ? app.url.substr(scheme.size()) : "";
    std::string host_port = rest.substr(0, rest.find('/'));
    if (rest.empty() || !parse_host_port(host_port).ok()) {
      r.fail(ConfigErrorCode::kInvalidValue, "app.url", "must be http://HOST:PORT[/PATH], got \"" + app.url + "\"");
      return;
    }
  }
  r.read_u32(node["prepare_timeout_ms"], "app.prepare_timeout_ms", app.prepare_timeout_ms, 1);
  r.read_u32(node["drain_timeout_ms"], "app.drain_timeout_ms", app.drain_timeout_ms, 1);
  detail::read_secret(r, node, "app", "token", app.token);
}

}  // namespace

ConfigResult<AgentConfig> parse_agent_config(const std::string& yaml_text, const std::string& source) {
  YamlReader r(source);
  AgentConfig cfg;
  cfg.source = source;
  try {
    const YAML::Node root = r.parse(yaml_text);
    if (!r.check_map(root, "", {"worker_id", "listen", "advertise", "controllers", "data_dir", "zone", "capacity",
                                "heartbeat_interval_ms", "auth", "tls", "app"})) {
      return r.error();
    }
    r.read_id(root["worker_id"], "worker_id", cfg.worker_id, /*required=*/true);
    r.read_host_port(root["listen"], "listen", cfg.listen, /*required=*/true);
    HostPort advertise = cfg.listen;
    r.read_host_port(root["advertise"], "advertise", advertise);
    cfg.advertise = advertise.str();
    read_controllers(r, root["controllers"], cfg);
    r.read_nonempty(root["data_dir"], "data_dir", cfg.data_dir, /*required=*/true);
    r.read_nonempty(root["zone"], "zone", cfg.zone);
    r.read_positive_double(root["capacity"], "capacity", cfg.capacity);
    r.read_u32(root["heartbeat_interval_ms"], "heartbeat_interval_ms", cfg.heartbeat_interval_ms, 1);
    read_auth(r, root["auth"], cfg.auth);
    // An agent may trust a CA for its calls to the controllers without
    // serving TLS itself, so ca_file alone is fine here.
    detail::read_tls(r, root["tls"], "tls", cfg.tls, /*ca_needs_cert=*/false);
    read_app(r, root["app"], cfg.app);
  } catch (const std::exception& e) {
    r.fail(ConfigErrorCode::kInvalidYaml, "", std::string("invalid YAML: ") + e.what());
  }
  if (r.failed()) return r.error();
  return cfg;
}

ConfigResult<AgentConfig> load_agent_config(const std::string& path) {
  YamlReader r(path);
  auto text = detail::read_config_file(path, r);
  if (!text) return r.error();
  return parse_agent_config(*text, path);
}

}  // namespace tenure::config
