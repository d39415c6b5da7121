// /v1/shards: create, list, get, delete, move, history.
#include "api/controller_api.h"
#include "api/json_body.h"
#include "controlplane/propose_pieces.h"
#include "api/views.h"
#include "controlplane/command_split.h"

#include <boost/asio/post.hpp>

namespace tenure::api {

using controlplane::ApplyCode;
using controlplane::ApplyResult;
using controlplane::ShardId;
using controlplane::StateMachine;
using controlplane::WorkerId;

namespace {
constexpr int64_t kMaxCreateCount = 100000;

/// Parses POST /v1/shards: {"ids": [...]} or {"count": N, "prefix": P}.
std::optional<net::HttpResponse> parse_create(const std::string& body, std::vector<ShardId>& ids) {
  auto parsed = parse_object(body, {"ids", "count", "prefix"});
  if (parsed.error) return parsed.error;
  const auto& j = parsed.value;
  bool has_ids = j.contains("ids"), has_count = j.contains("count");
  if (has_ids == has_count) return net::json_error(400, "bad_request", "give exactly one of \"ids\" or \"count\"");
  if (has_ids) {
    if (!j["ids"].is_array()) return bad_field("ids", "must be an array of strings");
    if (j.contains("prefix")) return bad_field("prefix", "only allowed with \"count\"");
    for (const auto& v : j["ids"]) {
      if (!v.is_string()) return bad_field("ids", "must be an array of strings");
      const auto& s = v.get_ref<const std::string&>();
      if (!controlplane::valid_shard_id(s)) return bad_field("ids", "invalid shard id \"" + s + "\"");
      ids.emplace_back(s);
    }
    if (ids.empty()) return bad_field("ids", "must not be empty");
    return std::nullopt;
  }
  if (!j["count"].is_number_integer()) return bad_field("count", "must be an integer");
  int64_t count = j["count"].get<int64_t>();
  if (count < 1 || count > kMaxCreateCount) {
    return bad_field("count", "must be between 1 and " + std::to_string(kMaxCreateCount));
  }
  std::string prefix = "s-";
  if (j.contains("prefix")) {
    if (!j["prefix"].is_string()) return bad_field("prefix", "must be a string");
    prefix = j["prefix"].get<std::string>();
  }
  if (!controlplane::valid_shard_id(prefix + std::to_string(count - 1))) {
    return bad_field("prefix", "makes invalid shard ids");
  }
  for (int64_t i = 0; i < count; ++i) ids.emplace_back(prefix + std::to_string(i));
  return std::nullopt;
}

std::optional<net::HttpResponse> check_shard_id(const CallPtr& call) {
  if (controlplane::valid_shard_id(call->param("id"))) return std::nullopt;
  return net::json_error(400, "bad_request", "invalid shard id \"" + call->param("id") + "\"");
}

}  // namespace

void ControllerApi::with_state(const CallPtr& call, std::function<void(const StateMachine&)> fn) {
  auto consistency = call->req.query_param("consistency");
  if (consistency && *consistency != "stale" && *consistency != "linearizable") {
    return reply(call, bad_field("consistency", "must be \"stale\" or \"linearizable\""));
  }
  if (consistency && *consistency == "stale") {
    // A restarted member may not yet have re-applied all it served before
    // (RaftNode::caught_up): its answers would go back in time.
    if (!node_.caught_up()) {
      auto r = net::json_error(503, "recovering",
                               "this member restarted and has not caught up with its leader yet, so its state may be "
                               "older than what it answered before; retry, ask another member, or read with "
                               "consistency=linearizable");
      r.headers.push_back({"Retry-After", "1"});
      return reply(call, std::move(r));
    }
    return node_.read_stale(std::move(fn));
  }
  node_.read([this, call, fn = std::move(fn)](const member::NodeError* err, const StateMachine* sm) {
    if (err) return reply_node_error(call, *err);
    fn(*sm);
  });
}

net::HttpResponse apply_error(const ApplyResult& r) {
  switch (r.code) {
    case ApplyCode::kNotFound: return net::json_error(404, "not_found", r.message);
    case ApplyCode::kConflict: return net::json_error(409, "conflict", r.message);
    case ApplyCode::kInvalid: return net::json_error(400, "bad_request", r.message);
    case ApplyCode::kIdempotencyMismatch: return net::json_error(422, "idempotency_mismatch", r.message);
    case ApplyCode::kOk: break;
  }
  return net::json_error(500, "internal", "unexpected apply result");
}

void ControllerApi::answer_create(const CallPtr& call, const controlplane::PiecesOutcome& o) {
  if (o.error) {
    member::NodeError err = member::to_node_error(*o.error);
    if (o.pieces > 1) {
      err.message += "; " + std::to_string(o.results.size()) + " of " + std::to_string(o.pieces) +
                     " pieces of this create committed, retrying the request is safe";
    }
    return reply_node_error(call, err);
  }
  if (const auto* refused = controlplane::first_refused(o)) return reply(call, apply_error(*refused));
  ApplyResult all;
  for (const auto& r : o.results) {
    all.created.insert(all.created.end(), r.created.begin(), r.created.end());
    all.existing.insert(all.existing.end(), r.existing.begin(), r.existing.end());
    all.revision = std::max(all.revision, r.revision);
  }
  net::HttpResponse resp;
  resp.status = 201;
  resp.body = created_body(all);
  reply(call, std::move(resp));
}

void ControllerApi::add_shard_routes() {
  router_.add({"POST", "/v1/shards", Access::kAdmin, true, [this](const CallPtr& call) {
                 std::vector<ShardId> ids;
                 if (auto err = parse_create(call->req.body, ids)) return reply(call, std::move(*err));
                 // Bounded commands (command_split.h): a large create is several
                 // entries. 201 only once every piece committed; otherwise 503 and
                 // a retry is safe (existing ids are left as they are).
                 auto cmds = controlplane::create_commands(request_id(call), std::move(ids));
                 controlplane::propose_pieces(supervisor_.port(), std::move(cmds),
                                              [this, call](controlplane::PiecesOutcome o) { answer_create(call, o); });
               }});

  router_.add({"GET", "/v1/shards/{id}", Access::kOpen, false, [this](const CallPtr& call) {
                 if (auto err = check_shard_id(call)) return reply(call, std::move(*err));
                 with_state(call, [this, call](const StateMachine& sm) {
                   ShardId id(call->param("id"));
                   const auto* s = sm.shard(id);
                   if (!s) return reply(call, net::json_error(404, "not_found", "shard \"" + id.str() + "\" not found"));
                   net::HttpResponse resp;
                   resp.body = shard_body(id, *s, sm.handoff(id), sm.revision());
                   reply(call, std::move(resp));
                 });
               }});

  router_.add({"DELETE", "/v1/shards/{id}", Access::kAdmin, true, [this](const CallPtr& call) {
                 if (auto err = check_shard_id(call)) return reply(call, std::move(*err));
                 controlplane::Command cmd{request_id(call), 0, controlplane::DeleteShard{ShardId(call->param("id"))}};
                 node_.propose(std::move(cmd), [this, call](const member::NodeError* err, const ApplyResult* r) {
                   if (err) return reply_node_error(call, *err);
                   if (r->code != ApplyCode::kOk) return reply(call, apply_error(*r));
                   reply(call, json_response(200, {{"id", call->param("id")}, {"deleted", true},
                                                   {"revision", r->revision.value()}}));
                 });
               }});

  router_.add({"GET", "/v1/shards/{id}/history", Access::kOpen, false, [this](const CallPtr& call) {
                 if (auto err = check_shard_id(call)) return reply(call, std::move(*err));
                 with_state(call, [this, call](const StateMachine& sm) {
                   ShardId id(call->param("id"));
                   if (!sm.shard(id)) return reply(call, net::json_error(404, "not_found", "shard \"" + id.str() + "\" not found"));
                   member::HistoryStore* history = node_.history();
                   if (!history) return reply(call, net::json_error(503, "unavailable", "this member keeps no history"));
                   // Read after the writes of every apply up to this state
                   // (the store's queue is in order); answered off the strand.
                   history->read(id, [this, call, io = node_.io_executor()](member::HistoryStore::Answer a) {
                     boost::asio::post(io, [this, call, a = std::move(a)] { answer_history(call, a); });
                   });
                 });
               }});

  router_.add({"POST", "/v1/shards/{id}/move", Access::kAdmin, true, [this](const CallPtr& call) { move_shard(call); }});
}

void ControllerApi::answer_history(const CallPtr& call, const member::HistoryStore::Answer& a) {
  // This member installed a leader's snapshot: records before it may be
  // missing here. The leader most likely has them (one hop only).
  bool gap = a.gap_through > controlplane::Revision(0);
  if (gap && !node_.is_leader() && call->req.header("tenure-forwarded").empty()) return forward_to_leader(call);
  nlohmann::json h = nlohmann::json::array();
  for (const auto& rec : a.records) h.push_back(history_json(rec));
  nlohmann::json body{{"id", call->param("id")}, {"history", std::move(h)}};
  if (gap) body["gap_through_revision"] = a.gap_through.value();
  reply(call, json_response(200, std::move(body)));
}

}  // namespace tenure::api
