#pragma once
// A member whose history has a gap (it installed a leader's snapshot, which
// carries no history: member/history_store.h) copies the leader's records
// up to the gap, a page at a time, over the peer route GET /raft/history,
// until its gap closes. Until then its history reads are forwarded to the
// leader (api/shard_routes.cc), so operators never see the gap unless the
// leader has one too.
//
// One copy at a time, started from the tick (at most once a second); a
// failed page (no leader, a refused or malformed answer, a new gap) ends
// the copy and the next tick starts it over from the first shard: the
// imports are idempotent. Threads: on_tick on the strand; pages are
// fetched by the HTTP client and imported by the store's writer, whose
// callbacks only post to the io_context (which outlives this object).

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "member/history_store.h"
#include "member/raft_node.h"
#include "net/http_client.h"

namespace tenure::api {

class HistoryBackfill {
 public:
  /// Records per page (one JSON body of about 100 bytes per record).
  static constexpr size_t kPageRecords = 2000;

  HistoryBackfill(member::RaftNode& node, member::HistoryStore& store, net::HttpClient& client,
                  std::string peer_token);
  ~HistoryBackfill();
  HistoryBackfill(const HistoryBackfill&) = delete;
  HistoryBackfill& operator=(const HistoryBackfill&) = delete;

  /// Starts a copy when there is a gap, a leader other than this member and
  /// no copy running; does nothing otherwise. Cheap: call it every tick.
  void on_tick();

 private:
  struct Copy;
  void fetch(std::shared_ptr<Copy> copy);
  void end(const std::shared_ptr<Copy>& copy, const std::string& why);

  member::RaftNode& node_;
  member::HistoryStore& store_;
  net::HttpClient& client_;
  std::string peer_token_;
  std::atomic<bool> running_{false};
  uint64_t ticks_ = 0;  ///< strand only
  /// Cleared by the destructor: a page answered after it is dropped.
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
};

/// The body of GET /raft/history: {"records": [[shard, revision, epoch,
/// from, to, reason, at_ms, prepare_ms, drain_ms, flags], ...], "more",
/// "gap_through_revision"}.
std::string encode_history_page(const member::HistoryStore::Page& page);
/// Decodes and checks a page exported for a gap through `through`: ids
/// well formed, enums in range, every record at or below `through`.
/// nullopt when anything is off (peer input).
std::optional<member::HistoryStore::Page> decode_history_page(const std::string& body, controlplane::Revision through);

}  // namespace tenure::api
