#pragma once
// GET /v1/grants/watch on the agent: the grants this worker holds, then
// every change, as ndjson, for data-plane programs in any language
// (docs/api.md, "Agent and program"). A stream starts with the current
// grants (`"initial": true`) and a `synced` line, then one line per grant
// or revoke as it takes effect, and a `progress` line every few seconds.
// Every line carries a `resume` token; `?resume=TOKEN` after a cut replays
// only what came after it when this agent still keeps it (the last
// kKeptChanges changes of this process's life), else the stream starts
// over with a `reset` line and the current grants. Current grants that
// would take more than kMaxSnapshotBytes (about 65,000 with 128-character
// ids, 140,000 with short ones) get a 413 `too_large` instead of a stream
// the server would cut on every try (its queue holds 16 MiB).
//
// Threads: every method is thread-safe.

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dataplane_agent/messages.h"
#include "dataplane_agent/program_change.h"

namespace tenure::net {
class Responder;
}  // namespace tenure::net

namespace tenure::agent {

class GrantFeed {
 public:
  static constexpr size_t kKeptChanges = 10000;
  /// Unsent bytes a watcher may have queued before its stream is ended
  /// (it resumes with its last token).
  static constexpr size_t kMaxQueuedBytes = 8 << 20;
  /// The current grants, sent in one piece at the start of a stream.
  static constexpr size_t kMaxSnapshotBytes = 15 << 20;

  /// `held` lists the grants in effect now (FenceState::held).
  explicit GrantFeed(std::function<std::vector<ShardEpoch>()> held, std::function<Revision()> revision);

  /// Changes as they took effect, in order.
  void push(const std::vector<ProgramChange>& changes);
  /// Serves one watcher from `resume` (empty: from the current grants).
  void watch(const std::string& resume, std::shared_ptr<net::Responder> res);
  /// A `lease_lost` line to every watcher: writes are refused until the
  /// lease is renewed (the grants stay unless revokes follow).
  void lease_lost();
  /// A progress line to every watcher (keeps idle streams alive).
  void tick();
  /// Ends every stream.
  void close();
  size_t watchers() const;

 private:
  struct Entry {
    uint64_t seq;
    std::string line;  ///< the ndjson line, without its token
  };
  std::string token(uint64_t seq) const;
  std::string with_token(const std::string& line, uint64_t seq) const;
  /// A line of `type` with the agent's revision to every watcher.
  void note(const char* type);
  /// Writes to every watcher; drops those gone or too slow. Under mu_.
  void broadcast_locked(const std::string& data);

  const std::function<std::vector<ShardEpoch>()> held_;
  const std::function<Revision()> revision_;
  /// Names this process's life in tokens: a token of another life starts over.
  const uint64_t life_;
  mutable std::mutex mu_;
  uint64_t seq_ = 0;  ///< of the last change pushed
  std::deque<Entry> kept_;
  std::vector<std::shared_ptr<net::Responder>> watchers_;
};

}  // namespace tenure::agent
