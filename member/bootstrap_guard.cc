#include "member/bootstrap_guard.h"

#include <nlohmann/json.hpp>

#include "net/sync_http_client.h"

namespace tenure::member {

BootstrapVerdict check_bootstrap(const config::ControllerConfig& config) {
  net::ClientOptions opt;
  opt.tls = config.tls_enabled();
  opt.tls_ca_file = config.tls.ca_file;
  opt.tls_cert_file = config.tls.cert_file;
  opt.tls_key_file = config.tls.key_file;
  opt.tls_server_kind = "controller";
  net::SyncHttpClient client(opt);
  bool others = false, answered = false;
  for (const auto& peer : config.peers) {
    if (peer.id == config.node_id) continue;
    others = true;
    net::ClientRequest req;
    req.target = "/v1/members";
    req.timeout_ms = 1000;
    // A read: it needs a token only with auth.read_token, and any role's will do.
    if (!config.auth.peer_token.empty()) req.headers["authorization"] = "Bearer " + config.auth.peer_token;
    auto r = client.call(peer.address, req);
    if (!r.ok() || r.value().status != 200) continue;  // not up yet: a new group may be starting
    auto j = nlohmann::json::parse(r.value().body, nullptr, false);
    if (j.is_discarded() || !j.contains("members") || !j["members"].is_array()) continue;
    answered = true;
    for (const auto& m : j["members"]) {
      if (m.value("id", "") == config.node_id && m.value("started", false)) {
        return {BootstrapVerdict::Kind::kRefuse, "data_dir " + config.data_dir + " is empty, but member " + config.node_id +
               " already took part in this group (peer " + peer.id +
               " says so): it must not bootstrap again. Remove it (tenurectl members remove " + config.node_id +
               "), then add it back as a new member (docs/operations.md)"};
      }
    }
  }
  if (others && !answered) return {BootstrapVerdict::Kind::kNoAnswer, ""};
  return {BootstrapVerdict::Kind::kProceed, ""};
}

}  // namespace tenure::member
