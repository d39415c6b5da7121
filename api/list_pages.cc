#include "api/list_pages.h"

#include <cerrno>
#include <cstdlib>

#include <nlohmann/json.hpp>

#include "api/json_body.h"
#include "api/views.h"

namespace tenure::api {

using controlplane::ShardId;
using controlplane::StateMachine;
using controlplane::WorkerId;

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
constexpr int kTokenVersion = 1;

std::string base64url_encode(std::string_view in) {
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kB64[(acc >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kB64[(acc << (6 - bits)) & 0x3f]);
  return out;
}

int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

std::optional<std::string> base64url_decode(std::string_view in) {
  if (in.size() % 4 == 1) return std::nullopt;  // no encoding ends with a lone 6-bit group
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = b64_value(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  // The leftover bits must be zero: one token has one spelling.
  if ((acc & ((1u << bits) - 1)) != 0) return std::nullopt;
  return out;
}

bool valid_row_id(const std::string& list, const std::string& id) {
  if (list == "workers") return controlplane::valid_worker_id(id);
  return controlplane::valid_shard_id(id);
}

bool known_list(const std::string& list) { return list == "shards" || list == "workers" || list == "rebalance"; }

template <class Key, class Value>
const Key& key_of(const std::pair<const Key, Value>& kv) {
  return kv.first;
}
template <class Key>
const Key& key_of(const Key& k) {
  return k;
}

/// Rows of the ordered `index` (a std::map or std::set keyed by id) after
/// `after` whose id starts with `prefix`, at most `limit`, each through
/// `copy`; sets page.more. The ids with one prefix are contiguous in id
/// order, so this too is O(log n + limit).
template <class Index, class Key, class Row, class Copy>
void copy_rows(const Index& index, const std::optional<std::string>& after, const std::string& prefix, size_t limit,
               Page<Row>& page, Copy copy) {
  auto it = after ? index.upper_bound(Key(*after)) : prefix.empty() ? index.begin() : index.lower_bound(Key(prefix));
  auto in_range = [&](const auto& it) {
    return it != index.end() && std::string_view(key_of(*it).str()).starts_with(prefix);
  };
  page.rows.reserve(std::min(limit, index.size()));
  for (; in_range(it) && page.rows.size() < limit; ++it) page.rows.push_back(copy(*it));
  page.more = in_range(it);
}

template <class Row>
Page<Row> start_page(const StateMachine& sm, const PageQuery& q) {
  Page<Row> page;
  page.list = q.list;
  page.filter = q.filter;
  page.prefix = q.prefix;
  page.revision = sm.revision();
  return page;
}

std::string_view row_id(const ShardRow& r) { return r.id.str(); }
std::string_view row_id(const WorkerRow& r) { return r.id.str(); }
std::string_view row_id(const MoveRow& r) { return r.shard.str(); }

/// `"continue":...,` then `"revision":N,` : the keys before the rows'.
void append_head(std::string& out, const std::optional<std::string>& token, controlplane::Revision revision) {
  out += "{\"continue\":";
  if (token) {
    append_json_string(out, *token);
  } else {
    out += "null";
  }
  out += ",\"revision\":";
  out += std::to_string(revision.value());
}

template <class Row>
nlohmann::json head_json(const Page<Row>& page) {
  auto token = page.next_token();
  return {{"revision", page.revision.value()},
          {"continue", token ? nlohmann::json(*token) : nlohmann::json(nullptr)}};
}

}  // namespace

std::string encode_token(const PageToken& t) {
  nlohmann::json j{{"v", kTokenVersion}, {"l", t.list}, {"f", t.filter}, {"a", t.after}, {"r", t.revision}};
  if (!t.prefix.empty()) j["p"] = t.prefix;  // absent otherwise: unprefixed tokens are as before
  return base64url_encode(j.dump());
}

std::optional<PageToken> decode_token(std::string_view text) {
  if (text.empty() || text.size() > kMaxTokenChars) return std::nullopt;
  auto raw = base64url_decode(text);
  if (!raw) return std::nullopt;
  auto j = nlohmann::json::parse(*raw, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  auto v = j.find("v"), l = j.find("l"), f = j.find("f"), a = j.find("a"), r = j.find("r"), p = j.find("p");
  if (j.size() != (p == j.end() ? 5u : 6u) || (p != j.end() && !p->is_string())) return std::nullopt;
  if (v == j.end() || !v->is_number_integer() || v->get<int64_t>() != kTokenVersion) return std::nullopt;
  if (l == j.end() || !l->is_string() || f == j.end() || !f->is_string() || a == j.end() || !a->is_string()) {
    return std::nullopt;
  }
  if (r == j.end() || !r->is_number_unsigned()) return std::nullopt;
  PageToken t{l->get<std::string>(), f->get<std::string>(), a->get<std::string>(), r->get<uint64_t>(),
              p == j.end() ? std::string() : p->get<std::string>()};
  if (!known_list(t.list) || !valid_row_id(t.list, t.after)) return std::nullopt;
  if (p != j.end() && (t.list != "shards" || !valid_id_prefix(t.prefix) || !t.after.starts_with(t.prefix))) {
    return std::nullopt;
  }
  if (!t.filter.empty() && (t.list != "shards" || !controlplane::valid_worker_id(t.filter))) return std::nullopt;
  // One token, one spelling: anything but what encode_token() gives (a
  // trailing NUL nlohmann stops at, other key orders, spaces) is refused.
  if (encode_token(t) != text) return std::nullopt;
  return t;
}

bool valid_id_prefix(const std::string& prefix) { return controlplane::valid_shard_id(prefix); }

std::optional<net::HttpResponse> parse_page_query(const net::HttpRequest& req, const std::string& list,
                                                  const std::string& filter, PageQuery& out,
                                                  const std::string& prefix) {
  out.list = list;
  out.filter = filter;
  out.prefix = prefix;
  out.limit = kDefaultPageLimit;
  out.after.reset();
  const std::string range = "must be an integer from 1 to " + std::to_string(kMaxPageLimit);
  if (auto limit = req.query_param("limit")) {
    if (limit->empty() || limit->size() > 9 || limit->find_first_not_of("0123456789") != std::string::npos) {
      return bad_field("limit", range);
    }
    unsigned long v = std::strtoul(limit->c_str(), nullptr, 10);
    if (v < 1 || v > kMaxPageLimit) return bad_field("limit", range);
    out.limit = v;
  }
  if (auto text = req.query_param("continue")) {
    auto token = decode_token(*text);
    if (!token) return bad_field("continue", "not a continue token of this server");
    if (token->list != list) return bad_field("continue", "a token of another list (" + token->list + ")");
    if (token->filter != filter) {
      return bad_field("continue", "the token was issued for worker filter \"" + token->filter +
                                       "\"; repeat the same filter with it");
    }
    if (token->prefix != prefix) {
      return bad_field("continue", "the token was issued for prefix \"" + token->prefix +
                                       "\"; repeat the same prefix with it");
    }
    out.after = token->after;
  }
  return std::nullopt;
}

template <class Row>
std::optional<std::string> Page<Row>::next_token() const {
  if (!more || rows.empty()) return std::nullopt;
  return encode_token({list, filter, std::string(row_id(rows.back())), revision.value(), prefix});
}

template struct Page<ShardRow>;
template struct Page<WorkerRow>;
template struct Page<MoveRow>;

Page<ShardRow> collect_shards(const StateMachine& sm, const PageQuery& q) {
  auto page = start_page<ShardRow>(sm, q);
  auto row = [&sm](const ShardId& id, const controlplane::Shard& s) {
    const controlplane::Handoff* h = s.state == controlplane::ShardState::kHandoff ? sm.handoff(id) : nullptr;
    return ShardRow{id, s.worker, s.epoch, s.state, h ? h->phase : controlplane::HandoffPhase::kDraining};
  };
  if (q.filter.empty()) {
    copy_rows<std::map<ShardId, controlplane::Shard>, ShardId>(
        sm.shards(), q.after, q.prefix, q.limit, page, [&row](const auto& kv) { return row(kv.first, kv.second); });
    return page;
  }
  copy_rows<controlplane::ShardIdSet, ShardId>(sm.shards_of(WorkerId(q.filter)), q.after, q.prefix, q.limit, page,
                                        [&sm, &row](const ShardId& id) { return row(id, *sm.shard(id)); });
  return page;
}

Page<WorkerRow> collect_workers(const StateMachine& sm, const PageQuery& q) {
  auto page = start_page<WorkerRow>(sm, q);
  copy_rows<std::map<WorkerId, controlplane::Worker>, WorkerId>(
      sm.workers(), q.after, "", q.limit, page,
      [&sm](const auto& kv) { return WorkerRow{kv.first, kv.second, sm.shards_of(kv.first).size()}; });
  return page;
}

Page<MoveRow> collect_moves(const StateMachine& sm, const PageQuery& q) {
  auto page = start_page<MoveRow>(sm, q);
  copy_rows<std::map<ShardId, controlplane::Handoff>, ShardId>(
      sm.handoffs(), q.after, "", q.limit, page, [&sm](const auto& kv) {
        const auto& [id, h] = kv;
        const auto& s = *sm.shard(id);
        bool preparing = h.phase == controlplane::HandoffPhase::kPreparing;
        return MoveRow{id, s.worker, h.target, s.epoch, h.reason, h.since_ms,
                       h.phase, preparing ? h.since_ms : h.drain_since_ms};
      });
  return page;
}

std::string shards_body(const Page<ShardRow>& page) {
  std::string out;
  size_t bytes = 64;
  for (const auto& r : page.rows) bytes += 56 + r.id.str().size() + r.worker.str().size();
  out.reserve(bytes);
  append_head(out, page.next_token(), page.revision);
  out += ",\"shards\":[";
  bool first = true;
  for (const auto& r : page.rows) {
    out += first ? "{\"epoch\":" : ",{\"epoch\":";
    first = false;
    out += std::to_string(r.epoch.value());
    out += ",\"id\":";
    append_json_string(out, r.id.str());
    // A handoff's phase: its owner serves it while the target prepares
    // (an agent's re-list must not take it for revoked).
    if (r.state == controlplane::ShardState::kHandoff) {
      out += r.phase == controlplane::HandoffPhase::kPreparing ? ",\"phase\":\"preparing\"" : ",\"phase\":\"draining\"";
    }
    out += ",\"state\":";
    append_json_string(out, controlplane::to_string(r.state));
    out += ",\"worker\":";
    if (r.worker.empty()) {
      out += "null";
    } else {
      append_json_string(out, r.worker.str());
    }
    out += "}";
  }
  out += "]}\n";
  return out;
}

std::string workers_body(const Page<WorkerRow>& page) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : page.rows) rows.push_back(worker_json(r.id, r.worker, r.shards));
  auto j = head_json(page);
  j["workers"] = std::move(rows);
  return json_response(200, j).body;
}

std::string moves_body(const Page<MoveRow>& page) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& r : page.rows) {
    rows.push_back({{"shard", r.shard.str()},
                    {"from", r.from.str()},
                    {"to", r.to.empty() ? nlohmann::json(nullptr) : nlohmann::json(r.to.str())},
                    {"epoch", r.epoch.value()},
                    {"reason", controlplane::to_string(r.reason)},
                    {"since_ms", r.since_ms},
                    {"phase", controlplane::to_string(r.phase)},
                    {"phase_since_ms", r.phase_since_ms}});
  }
  auto j = head_json(page);
  j["moves"] = std::move(rows);
  return json_response(200, j).body;
}

}  // namespace tenure::api
