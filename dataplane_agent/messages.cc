#include "dataplane_agent/messages.h"

#include <nlohmann/json.hpp>

#include "net/http_types.h"

namespace tenure::agent {

using nlohmann::json;

namespace {

/// Parses an object; the error names what was wrong.
std::optional<json> parse_object(std::string_view text, ParseError& error) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) {
    error = "not JSON";
    return std::nullopt;
  }
  if (!j.is_object()) {
    error = "not a JSON object";
    return std::nullopt;
  }
  return j;
}

bool read_u64(const json& j, const char* key, uint64_t& out, ParseError& error) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) {
    error = std::string("field \"") + key + "\" must be an unsigned integer";
    return false;
  }
  out = it->get<uint64_t>();
  return true;
}

bool read_string(const json& j, const char* key, std::string& out, bool nullable, ParseError& error) {
  auto it = j.find(key);
  if (it != j.end() && it->is_string()) {
    out = it->get<std::string>();
    return true;
  }
  if (nullable && (it == j.end() || it->is_null())) {
    out.clear();
    return true;
  }
  error = std::string("field \"") + key + "\" must be a string";
  return false;
}

WatchEvent::Kind kind_of(const std::string& type) {
  if (type == "grant") return WatchEvent::Kind::kGrant;
  if (type == "revoke") return WatchEvent::Kind::kRevoke;
  if (type == "prepare") return WatchEvent::Kind::kPrepare;
  if (type == "shard_deleted") return WatchEvent::Kind::kShardDeleted;
  if (type == "worker") return WatchEvent::Kind::kWorker;
  if (type == "progress") return WatchEvent::Kind::kProgress;
  return WatchEvent::Kind::kUnknown;
}

bool read_shard_event(const json& j, WatchEvent& e, ParseError& error) {
  std::string shard, worker;
  uint64_t epoch = 0;
  if (!read_string(j, "shard", shard, false, error) || !controlplane::valid_shard_id(shard)) {
    if (error.empty()) error = "field \"shard\" is not a valid shard id";
    return false;
  }
  if (!read_string(j, "worker", worker, true, error) || !read_u64(j, "epoch", epoch, error)) return false;
  e.shard = ShardId(shard);
  e.worker = WorkerId(worker);
  e.epoch = Epoch(epoch);
  return true;
}

}  // namespace

Parsed<LeaseAnswer> parse_lease_answer(std::string_view body) {
  Parsed<LeaseAnswer> out;
  auto j = parse_object(body, out.error);
  if (!j) return out;
  LeaseAnswer a;
  uint64_t lease = 0, revision = 0;
  if (!read_u64(*j, "lease_ms", lease, out.error) || !read_u64(*j, "revision", revision, out.error)) return out;
  if (lease == 0 || lease > UINT32_MAX) {
    out.error = "field \"lease_ms\" out of range";
    return out;
  }
  a.lease_ms = static_cast<uint32_t>(lease);
  a.revision = Revision(revision);
  a.worker_revision = a.revision;
  if (j->contains("worker_revision")) {
    uint64_t worker_revision = 0;
    if (!read_u64(*j, "worker_revision", worker_revision, out.error)) return out;
    a.worker_revision = Revision(worker_revision);
  }
  auto it = j->find("revoked");
  if (it != j->end()) {
    if (!it->is_array()) {
      out.error = "field \"revoked\" must be an array";
      return out;
    }
    for (const auto& item : *it) {
      std::string shard;
      uint64_t epoch = 0;
      if (!item.is_object() || !read_string(item, "shard", shard, false, out.error) ||
          !read_u64(item, "epoch", epoch, out.error) || !controlplane::valid_shard_id(shard)) {
        out.error = "field \"revoked\" items must be {\"shard\": id, \"epoch\": n}";
        return out;
      }
      a.revoked.push_back({ShardId(shard), Epoch(epoch)});
    }
  }
  out.value = std::move(a);
  return out;
}

Parsed<ShardList> parse_shard_list(std::string_view body) {
  Parsed<ShardList> out;
  auto j = parse_object(body, out.error);
  if (!j) return out;
  ShardList list;
  uint64_t revision = 0;
  if (!read_u64(*j, "revision", revision, out.error)) return out;
  list.revision = Revision(revision);
  auto it = j->find("shards");
  if (it == j->end() || !it->is_array()) {
    out.error = "field \"shards\" must be an array";
    return out;
  }
  for (const auto& item : *it) {
    ListedShard s;
    std::string id, worker;
    uint64_t epoch = 0;
    if (!item.is_object() || !read_string(item, "id", id, false, out.error) ||
        !read_string(item, "worker", worker, true, out.error) || !read_u64(item, "epoch", epoch, out.error) ||
        !read_string(item, "state", s.state, false, out.error) ||
        !read_string(item, "phase", s.phase, true, out.error) || !controlplane::valid_shard_id(id)) {
      out.error = "field \"shards\" items must be {\"id\", \"worker\", \"epoch\", \"state\"}";
      return out;
    }
    s.id = ShardId(id);
    s.worker = WorkerId(worker);
    s.epoch = Epoch(epoch);
    list.shards.push_back(std::move(s));
  }
  // Absent or null on the last page (and from controllers that do not page).
  if (!read_string(*j, "continue", list.next, true, out.error)) return out;
  out.value = std::move(list);
  return out;
}

Parsed<WatchEvent> parse_watch_line(std::string_view line) {
  Parsed<WatchEvent> out;
  auto j = parse_object(line, out.error);
  if (!j) return out;
  WatchEvent e;
  if (auto err = j->find("error"); err != j->end()) {
    e.kind = WatchEvent::Kind::kError;
    e.error = err->is_string() ? err->get<std::string>() : "unknown";
    out.value = std::move(e);
    return out;
  }
  std::string type;
  uint64_t revision = 0;
  if (!read_string(*j, "type", type, false, out.error) || !read_u64(*j, "revision", revision, out.error)) return out;
  e.kind = kind_of(type);
  e.revision = Revision(revision);
  switch (e.kind) {
    case WatchEvent::Kind::kGrant:
    case WatchEvent::Kind::kRevoke:
    case WatchEvent::Kind::kShardDeleted:
    case WatchEvent::Kind::kPrepare:
      if (!read_shard_event(*j, e, out.error)) return out;
      break;
    case WatchEvent::Kind::kWorker: {
      std::string worker;
      if (!read_string(*j, "worker", worker, false, out.error) ||
          !read_string(*j, "state", e.state, false, out.error)) {
        return out;
      }
      e.worker = WorkerId(worker);
      break;
    }
    default: break;
  }
  if (auto at = j->find("at_ms"); at != j->end() && at->is_number_integer()) e.at_ms = at->get<int64_t>();
  out.value = std::move(e);
  return out;
}

std::string error_code_of(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_object()) {
    auto it = j.find("error");
    if (it != j.end() && it->is_string()) return it->get<std::string>();
  }
  return {};
}

std::string register_body(const std::string& address, const std::string& zone, double capacity, bool prepares) {
  json j{{"address", address}, {"capacity", capacity}};
  if (!zone.empty()) j["zone"] = zone;
  if (prepares) j["prepares"] = true;
  return net::json_text(j);
}

std::string release_body(const std::vector<ShardEpoch>& shards) {
  json items = json::array();
  for (const auto& s : shards) items.push_back({{"shard", s.shard.str()}, {"epoch", s.epoch.value()}});
  return net::json_text(json{{"shards", std::move(items)}});
}

}  // namespace tenure::agent
