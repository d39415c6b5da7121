#include "api/views.h"
#include "net/http_types.h"

namespace tenure::api {

namespace {
nlohmann::json id_or_null(const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); }
}  // namespace

nlohmann::json shard_json(const controlplane::ShardId& id, const controlplane::Shard& s,
                          const controlplane::Handoff* handoff) {
  nlohmann::json j{{"id", id.str()},
                   {"worker", id_or_null(s.worker.str())},
                   {"epoch", s.epoch.value()},
                   {"state", controlplane::to_string(s.state)}};
  if (s.state == controlplane::ShardState::kHandoff && handoff) j["phase"] = controlplane::to_string(handoff->phase);
  return j;
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
  nlohmann::json j{{"revision", h.revision.value()},
                   {"epoch", h.epoch.value()},
                   {"from", id_or_null(h.from.str())},
                   {"to", id_or_null(h.to.str())},
                   {"reason", controlplane::to_string(h.reason)},
                   {"at_ms", h.at_ms}};
  // A planned move's phases (a failover or a grant of an unassigned shard has none).
  bool planned = !h.from.empty() && (h.reason == controlplane::ChangeReason::kDrain || h.reason == controlplane::ChangeReason::kRebalance ||
                 h.reason == controlplane::ChangeReason::kManual);
  if (planned) {
    j["phases"] = {{"prepare_ms", h.prepare_ms},
                   {"drain_ms", h.drain_ms},
                   {"prepare_timed_out", h.prepare_timed_out},
                   {"drain_timed_out", h.drain_timed_out}};
  }
  return j;
}

}  // namespace tenure::api

namespace tenure::api {

void append_json_string(std::string& out, std::string_view s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) {
      out += net::json_text(nlohmann::json(std::string(s)));
      return;
    }
  }
  static constexpr char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out.push_back(kHex[(c >> 4) & 0xf]);
          out.push_back(kHex[c & 0xf]);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
}

namespace {
void append_id_or_null(std::string& out, const std::string& s) {
  if (s.empty()) {
    out += "null";
  } else {
    append_json_string(out, s);
  }
}

void append_ids(std::string& out, const std::vector<controlplane::ShardId>& ids) {
  out.push_back('[');
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out.push_back(',');
    append_json_string(out, ids[i].str());
  }
  out.push_back(']');
}
}  // namespace

std::string shard_body(const controlplane::ShardId& id, const controlplane::Shard& s, const controlplane::Handoff* handoff,
                       controlplane::Revision revision) {
  std::string out;
  out.reserve(96 + id.str().size() + s.worker.str().size());
  out += "{\"epoch\":";
  out += std::to_string(s.epoch.value());
  out += ",\"id\":";
  append_json_string(out, id.str());
  if (s.state == controlplane::ShardState::kHandoff && handoff) {
    out += ",\"phase\":";
    append_json_string(out, controlplane::to_string(handoff->phase));
  }
  out += ",\"revision\":";
  out += std::to_string(revision.value());
  out += ",\"state\":";
  append_json_string(out, controlplane::to_string(s.state));
  out += ",\"worker\":";
  append_id_or_null(out, s.worker.str());
  out += "}\n";
  return out;
}

std::string created_body(const controlplane::ApplyResult& r) {
  std::string out;
  out.reserve(64);
  out += "{\"created\":";
  append_ids(out, r.created);
  out += ",\"existing\":";
  append_ids(out, r.existing);
  out += ",\"revision\":";
  out += std::to_string(r.revision.value());
  out += "}\n";
  return out;
}

}  // namespace tenure::api
