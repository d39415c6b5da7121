#pragma once
// Paged lists (CONTRACT.md: GET /v1/shards, and the same for /v1/workers and
// GET /v1/rebalance): `?limit=N` rows a page in id order, and an opaque
// `continue` token that resumes after the last id of the page before.
//
// Why pages: with 1,000,000 shards one whole list was a 60 MiB answer built
// on the Raft strand in 1.4-2.5 s, long enough to cost the leader its term
// (issue 8). A page costs the strand O(log n + limit): a lower bound in the
// ordered index and a copy of at most `limit` plain rows (collect_*, on the
// strand); the JSON is written from that copy on an I/O thread (*_body, off
// the strand), so the answer is never built whole and never on the strand.
//
// Semantics across pages (written honestly; docs/api.md repeats them):
// every page is read from the state at its own `revision` (not a snapshot
// of the first page's, as Kubernetes' etcd-backed lists are: our state has
// no old versions to read). A row that exists, and matches the filter, for
// the whole listing is seen exactly once; one created or deleted meanwhile
// may or may not be; a row's fields are as of its page's revision. To build
// a consistent cache, list every page and then watch from the smallest page
// revision (the first one's, for linearizable reads): the events since then
// bring every row up to date.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controlplane/state_machine.h"
#include "net/http_types.h"

namespace tenure::api {

/// Rows a page when `limit` is not given.
inline constexpr size_t kDefaultPageLimit = 1000;
/// The largest `limit` accepted (a page of 100-character ids is then about
/// 1.6 MB of JSON and about 1 ms of the strand's time).
inline constexpr size_t kMaxPageLimit = 10000;
/// Longer `continue` values are refused without decoding.
inline constexpr size_t kMaxTokenChars = 1024;

/// What a `continue` token carries: which list and filter issued it, the
/// last id of that page, and that page's revision (informational: the next
/// page is read from the state current then, see above).
struct PageToken {
  std::string list;    ///< "shards", "workers" or "rebalance": a token of one list is refused by another
  std::string filter;  ///< the worker filter of the listing ("" none)
  std::string after;   ///< the last id of the page that issued it
  uint64_t revision = 0;
  std::string prefix;  ///< the shard id prefix of the listing ("" none); `after` starts with it
  bool operator==(const PageToken&) const = default;
};

/// base64url (no padding) of a small JSON object: opaque to clients.
std::string encode_token(const PageToken& token);
/// The token, or nullopt when `text` is not one this server issued (bad
/// base64, bad JSON, missing or mistyped fields, an invalid id).
std::optional<PageToken> decode_token(std::string_view text);

/// A page request, decoded from the query string.
struct PageQuery {
  std::string list;
  std::string filter;
  std::string prefix;  ///< shards only: ids starting with it ("" every id)
  size_t limit = kDefaultPageLimit;
  std::optional<std::string> after;  ///< set when resuming from a token
};

/// Decodes ?limit and ?continue for `list` with the request's `filter`
/// and id `prefix` (both already validated). nullopt on success; else the
/// 400 naming `limit` or `continue` (a token of another list, filter or
/// prefix is refused too).
std::optional<net::HttpResponse> parse_page_query(const net::HttpRequest& req, const std::string& list,
                                                  const std::string& filter, PageQuery& out,
                                                  const std::string& prefix = "");

/// A valid `?prefix=` of GET /v1/shards: 1 to 128 characters of a shard id.
bool valid_id_prefix(const std::string& prefix);

/// One row of GET /v1/shards: what the answer shows, copied off the state.
struct ShardRow {
  controlplane::ShardId id;
  controlplane::WorkerId worker;
  controlplane::Epoch epoch;
  controlplane::ShardState state = controlplane::ShardState::kUnassigned;
  controlplane::HandoffPhase phase = controlplane::HandoffPhase::kDraining;  ///< handoff rows only
};

/// One row of GET /v1/workers.
struct WorkerRow {
  controlplane::WorkerId id;
  controlplane::Worker worker;
  size_t shards = 0;
};

/// One row of GET /v1/rebalance: a handoff in flight.
struct MoveRow {
  controlplane::ShardId shard;
  controlplane::WorkerId from;
  controlplane::WorkerId to;  ///< empty when the target died meanwhile
  controlplane::Epoch epoch;
  controlplane::ChangeReason reason = controlplane::ChangeReason::kRebalance;
  uint64_t since_ms = 0;
  controlplane::HandoffPhase phase = controlplane::HandoffPhase::kDraining;
  uint64_t phase_since_ms = 0;  ///< when the current phase began
};

/// A page copied off the state: rows plus where to resume.
template <class Row>
struct Page {
  std::string list;
  std::string filter;
  std::string prefix;
  controlplane::Revision revision;
  std::vector<Row> rows;
  bool more = false;  ///< rows remain after the last one
  /// The `continue` token (nullopt on the last page).
  std::optional<std::string> next_token() const;
};

// Strand side: O(log n + limit) each, copies only what the page shows.
Page<ShardRow> collect_shards(const controlplane::StateMachine& sm, const PageQuery& q);
Page<WorkerRow> collect_workers(const controlplane::StateMachine& sm, const PageQuery& q);
Page<MoveRow> collect_moves(const controlplane::StateMachine& sm, const PageQuery& q);

// I/O-thread side: the answer's body, keys in nlohmann's (sorted) order, no
// spaces, a final newline (as json_response gives).
std::string shards_body(const Page<ShardRow>& page);
std::string workers_body(const Page<WorkerRow>& page);
std::string moves_body(const Page<MoveRow>& page);

}  // namespace tenure::api
