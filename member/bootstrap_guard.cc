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
    bool listed = false;
    size_t named = 0;
    std::string others_listed;
    for (const auto& m : j["members"]) {
      if (!m.is_object()) continue;
      std::string id = m.value("id", "");
      if (id == config.node_id && m.value("started", false)) {
        return {BootstrapVerdict::Kind::kRefuse, "data_dir " + config.data_dir + " is empty, but member " + config.node_id +
               " already took part in this group (peer " + peer.id +
               " says so): it must not bootstrap again. Remove it (tenurectl members remove " + config.node_id +
               "), then add it back as a new member (docs/operations.md)"};
      }
      listed = listed || id == config.node_id;
      // The refusal's line names a few of them, not whatever a peer sends.
      if (++named <= 8) others_listed += (others_listed.empty() ? "" : ", ") + id.substr(0, 64);
    }
    if (named > 8) others_listed += ", and " + std::to_string(named - 8) + " more";
    // A peer that runs a group without this member: this member was removed
    // from it (or never in it). Bootstrapping would found a second group
    // under the same ids; two removed members of three would elect each
    // other, and their leader's newer terms would depose the real group's
    // (the chaos suite's member-replace found it: docs/testing-chaos.md).
    // A peer that has not started yet lists nobody; one of a new group that
    // started first lists every initial member, this one included.
    if (!listed && !others_listed.empty()) {
      return {BootstrapVerdict::Kind::kRefuse, "data_dir " + config.data_dir + " is empty and peer " + peer.id +
              " runs a group without member " + config.node_id + " (members: " + others_listed +
              "): it must not bootstrap a group of its own. Add it to that group (tenurectl members add " +
              config.node_id + " ADDRESS) and start it with peers listing the others only (docs/operations.md)"};
    }
  }
  if (others && !answered) return {BootstrapVerdict::Kind::kNoAnswer, ""};
  return {BootstrapVerdict::Kind::kProceed, ""};
}

}  // namespace tenure::member
