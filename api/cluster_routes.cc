// /v1/cluster and controller-group membership (/v1/members).
#include "api/controller_api.h"
#include "api/json_body.h"
#include "config/host_port.h"

namespace tenure::api {

namespace {
template <class T>
nlohmann::json or_null(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

/// Each member's health and lag as this member knows them first hand
/// (member::MemberInfo): null where only the leader could tell.
nlohmann::json members_json(const member::NodeSummary& s) {
  nlohmann::json members = nlohmann::json::array();
  for (const auto& m : s.members) {
    members.push_back({{"id", m.id.str()},
                       {"address", m.address},
                       {"role", m.role},
                       {"healthy", or_null(m.healthy)},
                       {"lag", or_null(m.lag)},
                       {"started", m.started}});
  }
  return members;
}

template <class State>
nlohmann::json counts_json(const std::array<size_t, 3>& counts, std::initializer_list<State> states) {
  nlohmann::json out = nlohmann::json::object();
  for (auto st : states) out[controlplane::to_string(st)] = counts[static_cast<size_t>(st)];
  return out;
}

bool valid_member_id(const std::string& id) { return controlplane::valid_id(id, 64); }
}  // namespace

void ControllerApi::add_cluster_routes() {
  router_.add({"GET", "/v1/cluster", Access::kOpen, false, [this](const CallPtr& call) {
                 auto s = node_.summary();
                 reply(call, json_response(200, {{"node_id", s.id.str()},
                                                 {"leader_id", s.leader.empty() ? nlohmann::json(nullptr)
                                                                                : nlohmann::json(s.leader.str())},
                                                 {"term", s.term.value()},
                                                 {"commit_index", s.commit.value()},
                                                 {"applied_index", s.applied.value()},
                                                 {"revision", s.revision.value()},
                                                 {"caught_up", s.caught_up},
                                                 {"auth", auth_enabled()},
                                                 {"members", members_json(s)},
                                                 {"shards_by_state",
                                                  counts_json(s.shards_by_state,
                                                              {controlplane::ShardState::kActive,
                                                               controlplane::ShardState::kHandoff,
                                                               controlplane::ShardState::kUnassigned})},
                                                 {"workers_by_state",
                                                  counts_json(s.workers_by_state,
                                                              {controlplane::WorkerState::kAlive,
                                                               controlplane::WorkerState::kDraining,
                                                               controlplane::WorkerState::kDead})}}));
               }});

  router_.add({"GET", "/v1/members", Access::kOpen, false, [this](const CallPtr& call) {
                 reply(call, json_response(200, {{"members", members_json(node_.summary())}}));
               }});

  router_.add({"POST", "/v1/members", Access::kAdmin, true, [this](const CallPtr& call) {
                 auto parsed = parse_object(call->req.body, {"id", "address"});
                 if (parsed.error) return reply(call, std::move(*parsed.error));
                 const auto& j = parsed.value;
                 if (!j.contains("id") || !j["id"].is_string() || !valid_member_id(j["id"].get<std::string>())) {
                   return reply(call, bad_field("id", "required, [A-Za-z0-9._-]{1,64}"));
                 }
                 if (!j.contains("address") || !j["address"].is_string() ||
                     !config::parse_host_port(j["address"].get<std::string>()).ok()) {
                   return reply(call, bad_field("address", "required, host:port"));
                 }
                 std::string id = j["id"].get<std::string>(), address = j["address"].get<std::string>();
                 node_.add_member(consensus::NodeId(id), address, [this, call, id, address](const member::NodeError* err) {
                   if (err) return reply_node_error(call, *err);
                   // Added as a learner; the leader promotes it once it has caught up (§4.2.1).
                   reply(call, json_response(201, {{"id", id}, {"address", address}, {"role", "learner"}}));
                 });
               }});

  router_.add({"DELETE", "/v1/members/{id}", Access::kAdmin, true, [this](const CallPtr& call) {
                 if (!valid_member_id(call->param("id"))) {
                   return reply(call, net::json_error(400, "bad_request", "invalid member id"));
                 }
                 bool known = false;
                 for (const auto& m : node_.summary().members) known = known || m.id.str() == call->param("id");
                 if (!known) return reply(call, net::json_error(404, "not_found", "member \"" + call->param("id") + "\" not found"));
                 node_.remove_member(consensus::NodeId(call->param("id")), [this, call](const member::NodeError* err) {
                   if (err) return reply_node_error(call, *err);
                   reply(call, json_response(200, {{"id", call->param("id")}, {"removed", true}}));
                 });
               }});

  router_.add({"POST", "/v1/members/transfer-leadership", Access::kAdmin, true, [this](const CallPtr& call) {
                 auto parsed = parse_object(call->req.body, {"to"});
                 if (parsed.error) return reply(call, std::move(*parsed.error));
                 const auto& j = parsed.value;
                 if (!j.contains("to") || !j["to"].is_string() || !valid_member_id(j["to"].get<std::string>())) {
                   return reply(call, bad_field("to", "required, a member id"));
                 }
                 std::string to = j["to"].get<std::string>();
                 node_.transfer_leadership(consensus::NodeId(to), [this, call, to](const member::NodeError* err) {
                   if (err) {
                     if (err->code == member::NodeErrc::kInvalid) {
                       return reply(call, net::json_error(404, "not_found", err->message));
                     }
                     return reply_node_error(call, *err);
                   }
                   reply(call, json_response(202, {{"to", to}}));
                 });
               }});
}

}  // namespace tenure::api
