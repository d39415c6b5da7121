// /v1/workers (list, drain, undrain, forget) and manual moves.
#include "api/controller_api.h"
#include "api/json_body.h"
#include "api/views.h"

namespace tenure::api {

using controlplane::ApplyCode;
using controlplane::ApplyResult;
using controlplane::ShardId;
using controlplane::ShardState;
using controlplane::StateMachine;
using controlplane::WorkerId;
using controlplane::WorkerState;

namespace {
std::optional<net::HttpResponse> check_worker_id(const CallPtr& call) {
  if (controlplane::valid_worker_id(call->param("id"))) return std::nullopt;
  return net::json_error(400, "bad_request", "invalid worker id \"" + call->param("id") + "\"");
}
}  // namespace

void ControllerApi::add_worker_routes() {
  for (bool draining : {true, false}) {
    std::string path = draining ? "/v1/workers/{id}/drain" : "/v1/workers/{id}/undrain";
    router_.add({"POST", path, Access::kAdmin, true, [this, draining](const CallPtr& call) {
                   if (auto err = check_worker_id(call)) return reply(call, std::move(*err));
                   auto parsed = parse_object(call->req.body, {}, /*empty_ok=*/true);
                   if (parsed.error) return reply(call, std::move(*parsed.error));
                   WorkerId id(call->param("id"));
                   controlplane::Command cmd{request_id(call), 0, controlplane::SetDraining{id, draining}};
                   node_.propose(std::move(cmd), [this, call, draining](const member::NodeError* err,
                                                                        const ApplyResult* r) {
                     if (err) return reply_node_error(call, *err);
                     if (r->code != ApplyCode::kOk) return reply(call, apply_error(*r));
                     reply(call, json_response(200, {{"id", call->param("id")},
                                                     {"state", draining ? "draining" : "alive"},
                                                     {"revision", r->revision.value()}}));
                   });
                 }});
  }

  router_.add({"GET", "/v1/workers/{id}", Access::kOpen, false, [this](const CallPtr& call) {
                 if (auto err = check_worker_id(call)) return reply(call, std::move(*err));
                 with_state(call, [this, call](const StateMachine& sm) {
                   WorkerId id(call->param("id"));
                   auto it = sm.workers().find(id);
                   if (it == sm.workers().end()) {
                     return reply(call, net::json_error(404, "not_found", "worker \"" + id.str() + "\" not found"));
                   }
                   auto body = worker_json(id, it->second, sm.shards_of(id).size());
                   body["revision"] = sm.revision().value();
                   reply(call, json_response(200, body));
                 });
               }});

  router_.add({"DELETE", "/v1/workers/{id}", Access::kAdmin, true, [this](const CallPtr& call) {
                 if (auto err = check_worker_id(call)) return reply(call, std::move(*err));
                 controlplane::Command cmd{request_id(call), 0, controlplane::RemoveWorker{WorkerId(call->param("id"))}};
                 node_.propose(std::move(cmd), [this, call](const member::NodeError* err, const ApplyResult* r) {
                   if (err) return reply_node_error(call, *err);
                   if (r->code != ApplyCode::kOk) return reply(call, apply_error(*r));
                   reply(call, json_response(200, {{"id", call->param("id")}, {"removed", true},
                                                   {"revision", r->revision.value()}}));
                 });
               }});
}

void ControllerApi::move_shard(const CallPtr& call) {
  if (!controlplane::valid_shard_id(call->param("id"))) {
    return reply(call, net::json_error(400, "bad_request", "invalid shard id \"" + call->param("id") + "\""));
  }
  auto parsed = parse_object(call->req.body, {"to"});
  if (parsed.error) return reply(call, std::move(*parsed.error));
  if (!parsed.value.contains("to") || !parsed.value["to"].is_string()) {
    return reply(call, bad_field("to", "required, a worker id"));
  }
  std::string to = parsed.value["to"].get<std::string>();
  if (!controlplane::valid_worker_id(to)) return reply(call, bad_field("to", "invalid worker id \"" + to + "\""));
  // Plan on the leader's applied state; apply re-checks the expected epoch,
  // so a move that raced with another change is refused, never half-done.
  node_.post([this, call, to = WorkerId(to)] {
    const StateMachine& sm = node_.state();
    ShardId id(call->param("id"));
    const auto* s = sm.shard(id);
    if (!s) return reply(call, net::json_error(404, "not_found", "shard \"" + id.str() + "\" not found"));
    const auto* w = sm.worker(to);
    if (!w) return reply(call, net::json_error(404, "not_found", "worker \"" + to.str() + "\" not found"));
    if (w->state != WorkerState::kAlive) {
      return reply(call, net::json_error(409, "conflict", "worker \"" + to.str() + "\" is " + to_string(w->state)));
    }
    if (s->state == ShardState::kHandoff) {
      return reply(call, net::json_error(409, "conflict", "shard \"" + id.str() + "\" is already being handed off"));
    }
    if (s->worker == to) {
      return reply(call, net::json_error(409, "conflict", "shard \"" + id.str() + "\" is already owned by " + to.str()));
    }
    if (s->state == ShardState::kUnassigned && s->epoch > controlplane::Epoch(0)) {
      // A shard never granted (epoch 0) has no earlier owner to wait for. A
      // shard deleted and created again is granted to no one until its
      // last owner's lease has run out (docs/api.md): a manual move obeys
      // the hold as placement does.
      auto hold = supervisor_.leader().grant_hold_ms(id);
      if (!hold) return reply_no_leader(call, "the leader is not serving moves yet; retry");
      if (*hold > 0) {
        auto res = net::json_error(409, "conflict", "shard \"" + id.str() + "\" was deleted less than a worker lease ago; it may be granted in " +
                                                  std::to_string(*hold) + " ms");
        res.headers.emplace_back("Retry-After", std::to_string((*hold + 999) / 1000));
        return reply(call, std::move(res));
      }
    }
    controlplane::Placement p{id, to, s->epoch};
    controlplane::Command cmd{request_id(call), 0, {}};
    if (s->state == ShardState::kUnassigned) {
      cmd.body = controlplane::AssignShards{{p}, controlplane::ChangeReason::kManual};
    } else {
      cmd.body = controlplane::BeginMoves{{p}, controlplane::ChangeReason::kManual};
    }
    std::string from = s->worker.str();
    node_.propose(std::move(cmd), [this, call, from, to](const member::NodeError* err, const ApplyResult* r) {
      if (err) return reply_node_error(call, *err);
      if (r->code != ApplyCode::kOk) return reply(call, apply_error(*r));
      if (r->changed == 0) {
        return reply(call, net::json_error(409, "conflict", "shard changed while the move was planned; retry"));
      }
      reply(call, json_response(202, {{"shard", call->param("id")},
                                      {"from", from.empty() ? nlohmann::json(nullptr) : nlohmann::json(from)},
                                      {"to", to.str()},
                                      {"revision", r->revision.value()}}));
    });
  });
}

}  // namespace tenure::api
