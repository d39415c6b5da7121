// The agents' calls (CONTRACT.md leaves them to us, under /v1/workers/{id}/):
// register, heartbeat, prepared (a planned move's target is ready), release
// (the source drained) and leave (graceful shutdown). All go to the leader, which keeps leases in memory.
// The decisions are the agent service's (controlplane/agent_service.h): these
// routes only check the bodies and turn its answers into HTTP.
#include <boost/asio/post.hpp>

#include "api/controller_api.h"
#include "api/json_body.h"
#include "controlplane/command_split.h"
#include "config/host_port.h"

namespace tenure::api {

using controlplane::ApplyCode;
using controlplane::ApplyResult;
using controlplane::ShardId;
using controlplane::WorkerId;
using controlplane::CallError;
using controlplane::HeartbeatAnswer;
using controlplane::LeaseReply;
using controlplane::LeaveReply;
using controlplane::ReleaseReply;

namespace {
constexpr size_t kMaxAddressBytes = 255;
constexpr std::string_view kControlChars{"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f"
                                         "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f\x7f", 33};
/// Shards one release may name: an agent releases what one handoff batch
/// moved off it, far fewer; the bound keeps one request's command bounded.
constexpr size_t kMaxReleaseShards = 100000;

std::optional<net::HttpResponse> check_worker(const CallPtr& call) {
  if (controlplane::valid_worker_id(call->param("id"))) return std::nullopt;
  return net::json_error(400, "bad_request", "invalid worker id \"" + call->param("id") + "\"");
}

std::optional<net::HttpResponse> parse_register(const std::string& body, controlplane::RegisterWorker& r) {
  auto parsed = parse_object(body, {"address", "zone", "capacity", "prepares"});
  if (parsed.error) return parsed.error;
  const auto& j = parsed.value;
  // Every value here is replicated, kept per worker and shown in lists:
  // each has a checked form and a bound (docs/architecture.md, "Limits").
  if (!j.contains("address") || !j["address"].is_string() ||
      j["address"].get_ref<const std::string&>().size() > kMaxAddressBytes ||
      !config::parse_host_port(j["address"].get_ref<const std::string&>()).ok()) {
    return bad_field("address", "required, host:port the agent serves on (at most 255 bytes)");
  }
  r.address = j["address"].get<std::string>();
  if (j.contains("zone")) {
    // Any text the agent's config allows (JSON made it UTF-8), short and
    // printable: it is shown in tables and logs.
    if (!j["zone"].is_string() || j["zone"].get_ref<const std::string&>().size() > 64 ||
        j["zone"].get_ref<const std::string&>().find_first_of(kControlChars) != std::string::npos) {
      return bad_field("zone", "must be a string of at most 64 bytes, no control characters");
    }
    r.zone = j["zone"].get<std::string>();
  }
  if (j.contains("capacity")) {
    if (!j["capacity"].is_number() || !(j["capacity"].get<double>() > 0) || j["capacity"].get<double>() > 1e6) {
      return bad_field("capacity", "must be a number > 0");
    }
    r.capacity = j["capacity"].get<double>();
  }
  if (j.contains("prepares")) {
    if (!j["prepares"].is_boolean()) return bad_field("prepares", "must be true or false");
    r.prepares = j["prepares"].get<bool>();
  }
  return std::nullopt;
}

/// A release's or a prepared's body, {"shards": [{"shard", "epoch"}, ...]}.
std::optional<net::HttpResponse> parse_shard_list(const std::string& body, std::vector<ShardId>& shards,
                                                  std::vector<controlplane::Epoch>& epochs) {
  auto parsed = parse_object(body, {"shards"});
  if (parsed.error) return parsed.error;
  const auto& j = parsed.value;
  if (!j.contains("shards") || !j["shards"].is_array()) return bad_field("shards", "required array");
  if (j["shards"].size() > kMaxReleaseShards) {
    return bad_field("shards", "at most " + std::to_string(kMaxReleaseShards) + " a request");
  }
  for (const auto& item : j["shards"]) {
    if (!item.is_object() || !item.contains("shard") || !item["shard"].is_string() || !item.contains("epoch") ||
        !item["epoch"].is_number_unsigned() || !controlplane::valid_shard_id(item["shard"].get<std::string>())) {
      return bad_field("shards", "items must be {\"shard\": id, \"epoch\": n}");
    }
    shards.emplace_back(item["shard"].get<std::string>());
    epochs.emplace_back(item["epoch"].get<uint64_t>());
  }
  return std::nullopt;
}
}  // namespace

namespace {
/// Answers a call the agent service could not answer itself.
void reply_call_error(ControllerApi& api, const CallPtr& call, const CallError& e) {
  switch (e.kind) {
    case CallError::Kind::kConsensus: return api.reply_node_error(call, member::to_node_error(e.consensus));
    case CallError::Kind::kRefused: return api.reply(call, apply_error(e.refused));
    case CallError::Kind::kLeadershipMoved: return api.reply_no_leader(call, "leadership moved; retry");
    case CallError::Kind::kNotApplied: return api.reply_no_leader(call, "leave did not apply; retry");
    case CallError::Kind::kUnknownWorker:
      return api.reply(call, net::json_error(404, "not_found", "worker \"" + call->param("id") + "\" not found"));
  }
}
}  // namespace

void ControllerApi::answer_lease(const CallPtr& call, const LeaseReply& a) {
  if (a.error) return reply_call_error(*this, call, *a.error);
  if (a.lease.status == HeartbeatAnswer::Status::kUnknown) {
    return reply(call, net::json_error(404, "not_found", "worker \"" + call->param("id") + "\" is not registered"));
  }
  if (a.lease.status == HeartbeatAnswer::Status::kDead) {
    return reply(call, net::json_error(409, "worker_dead",
                                       "worker \"" + call->param("id") + "\" was declared dead; drop every grant and register again"));
  }
  nlohmann::json revoked = nlohmann::json::array();
  for (const auto& [shard, epoch] : a.lease.revoked) revoked.push_back({{"shard", shard.str()}, {"epoch", epoch.value()}});
  reply(call, json_response(200, {{"worker", call->param("id")},
                                  {"lease_ms", a.lease_ms},
                                  {"revision", a.lease.revision.value()},
                                  {"worker_revision", a.lease.worker_revision.value()},
                                  {"revoked", std::move(revoked)}}));
}

void ControllerApi::add_agent_routes() {
  // Register and heartbeat: the service grants the lease only after a
  // ReadIndex confirmed this member still leads (controlplane/agent_service.h).
  // Runs on the Raft strand; the answer is built and sent off it. At 20,000
  // heartbeats a second the JSON and the reply were a fifth of the leader's
  // strand, and a busy strand delays every other heartbeat (bench/fleet_load).
  auto lease_answer = [this](const CallPtr& call, LeaseReply a) {
    boost::asio::post(node_.io_executor(), [this, call, a = std::move(a)] { answer_lease(call, a); });
  };

  router_.add({"POST", "/v1/workers/{id}/register", Access::kAgent, true, [this, lease_answer](const CallPtr& call) {
                 if (auto err = check_worker(call)) return reply(call, std::move(*err));
                 controlplane::RegisterWorker r;
                 r.id = WorkerId(call->param("id"));
                 if (auto err = parse_register(call->req.body, r)) return reply(call, std::move(*err));
                 node_.post([this, call, r = std::move(r), id = request_id(call), lease_answer]() mutable {
                   supervisor_.agents().register_worker(std::move(r), std::move(id),
                                                        [call, lease_answer](LeaseReply a) { lease_answer(call, std::move(a)); });
                 });
               }});

  router_.add({"POST", "/v1/workers/{id}/heartbeat", Access::kAgent, true, [this, lease_answer](const CallPtr& call) {
                 if (auto err = check_worker(call)) return reply(call, std::move(*err));
                 auto parsed = parse_object(call->req.body, {"revision"}, /*empty_ok=*/true);
                 if (parsed.error) return reply(call, std::move(*parsed.error));
                 if (parsed.value.contains("revision") && !parsed.value["revision"].is_number_unsigned()) {
                   return reply(call, bad_field("revision", "must be an unsigned integer"));
                 }
                 node_.post([this, call, lease_answer] {
                   supervisor_.agents().heartbeat(WorkerId(call->param("id")),
                                                  [call, lease_answer](LeaseReply a) { lease_answer(call, std::move(a)); });
                 });
               }});

  auto shard_list_answer = [this](const CallPtr& call, const ReleaseReply& a, const char* key) {
    if (a.error) return reply_call_error(*this, call, *a.error);
    reply(call, json_response(200, {{key, a.released}, {"revision", a.revision.value()}}));
  };

  router_.add({"POST", "/v1/workers/{id}/release", Access::kAgent, true, [this, shard_list_answer](const CallPtr& call) {
                 if (auto err = check_worker(call)) return reply(call, std::move(*err));
                 controlplane::CompleteMoves c;
                 c.from = WorkerId(call->param("id"));
                 if (auto err = parse_shard_list(call->req.body, c.shards, c.epochs)) return reply(call, std::move(*err));
                 node_.post([this, call, c = std::move(c), id = request_id(call), shard_list_answer]() mutable {
                   supervisor_.agents().release(std::move(c), std::move(id), [call, shard_list_answer](ReleaseReply a) {
                     shard_list_answer(call, a, "released");
                   });
                 });
               }});

  // The epochs are those of the grants to come (what the prepare events said).
  router_.add({"POST", "/v1/workers/{id}/prepared", Access::kAgent, true, [this, shard_list_answer](const CallPtr& call) {
                 if (auto err = check_worker(call)) return reply(call, std::move(*err));
                 controlplane::EndPrepares c;
                 c.target = WorkerId(call->param("id"));
                 if (auto err = parse_shard_list(call->req.body, c.shards, c.epochs)) return reply(call, std::move(*err));
                 node_.post([this, call, c = std::move(c), id = request_id(call), shard_list_answer]() mutable {
                   supervisor_.agents().prepared(std::move(c), std::move(id), [call, shard_list_answer](ReleaseReply a) {
                     shard_list_answer(call, a, "prepared");
                   });
                 });
               }});

  router_.add({"POST", "/v1/workers/{id}/leave", Access::kAgent, true, [this](const CallPtr& call) {
                 if (auto err = check_worker(call)) return reply(call, std::move(*err));
                 node_.post([this, call, id = request_id(call)]() mutable {
                   supervisor_.agents().leave(WorkerId(call->param("id")), std::move(id), [this, call](LeaveReply a) {
                     if (a.error) return reply_call_error(*this, call, *a.error);
                     reply(call, json_response(200, {{"left", true}, {"moved", a.moved}, {"revision", a.revision.value()}}));
                   });
                 });
               }});
}

namespace {
/// Moves a POST /v1/rebalance answer lists: a pass over 1,000,000 new shards
/// plans as many grants, which as JSON would be ~100 MB (issue 8).
constexpr size_t kMaxListedMoves = 10000;

/// {dry_run, moves (the first kMaxListedMoves), moves_total, started?}.
/// Runs off the strand: the plan is the strand's copy.
net::HttpResponse plan_response(int status, const controlplane::Plan& p, std::optional<size_t> started) {
  nlohmann::json moves = nlohmann::json::array();
  auto add = [&](const controlplane::PlannedMove& m) {
    if (moves.size() >= kMaxListedMoves) return;
    moves.push_back({{"shard", m.shard.str()},
                     {"from", m.from.empty() ? nlohmann::json(nullptr) : nlohmann::json(m.from.str())},
                     {"to", m.to.str()},
                     {"epoch", m.epoch.value()},
                     {"reason", to_string(m.reason)}});
  };
  for (const auto& m : p.assignments) add(m);
  for (const auto& m : p.moves) add(m);
  nlohmann::json body{{"dry_run", !started.has_value()},
                      {"moves", std::move(moves)},
                      {"moves_total", p.assignments.size() + p.moves.size()}};
  if (started) body["started"] = *started;
  return json_response(status, body);
}
}  // namespace

void ControllerApi::add_rebalance_routes() {
  router_.add({"POST", "/v1/rebalance", Access::kAdmin, true, [this](const CallPtr& call) {
                 auto dry = call->req.query_param("dry_run");
                 if (dry && *dry != "true" && *dry != "false") return reply(call, bad_field("dry_run", "must be true or false"));
                 bool dry_run = dry && *dry == "true";
                 node_.post([this, call, dry_run] {
                   auto p = std::make_shared<controlplane::Plan>(supervisor_.leader().plan());
                   if (dry_run) {
                     return node_.post_off_strand([this, call, p] { reply(call, plan_response(200, *p, std::nullopt)); });
                   }
                   supervisor_.leader().execute(*p, [this, call, p](const controlplane::PortError* err, size_t changed) {
                     if (err) return reply_node_error(call, member::to_node_error(*err));
                     node_.post_off_strand([this, call, p, changed] { reply(call, plan_response(202, *p, changed)); });
                   });
                 });
               }});
}

}  // namespace tenure::api
