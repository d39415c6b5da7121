#include "api/views.h"

namespace tenure::api {

namespace {
nlohmann::json id_or_null(const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); }
}  // namespace

nlohmann::json shard_json(const controlplane::ShardId& id, const controlplane::Shard& s) {
  return {{"id", id.str()},
          {"worker", id_or_null(s.worker.str())},
          {"epoch", s.epoch.value()},
          {"state", controlplane::to_string(s.state)}};
}

nlohmann::json worker_json(const controlplane::WorkerId& id, const controlplane::Worker& w, size_t shards) {
  return {{"id", id.str()},         {"address", w.address},
          {"zone", w.zone},         {"capacity", w.capacity},
          {"state", controlplane::to_string(w.state)}, {"shards", shards}};
}

nlohmann::json event_json(const controlplane::Event& e) {
  nlohmann::json j{{"revision", e.revision.value()},
                   {"type", controlplane::to_string(e.type)},
                   {"shard", id_or_null(e.shard.str())},
                   {"worker", id_or_null(e.worker.str())},
                   {"epoch", e.epoch.value()},
                   {"at_ms", e.at_ms}};
  if (e.type == controlplane::EventType::kWorker) j["state"] = e.worker_state;
  return j;
}

nlohmann::json history_json(const controlplane::HistoryRecord& h) {
  return {{"revision", h.revision.value()},
          {"epoch", h.epoch.value()},
          {"from", id_or_null(h.from.str())},
          {"to", id_or_null(h.to.str())},
          {"reason", controlplane::to_string(h.reason)},
          {"at_ms", h.at_ms}};
}

}  // namespace tenure::api
