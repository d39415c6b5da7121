#pragma once
// Bounded commands: an operation of any size (a create of 100,000 shards,
// the failover of a worker holding 50,000) is proposed as several commands,
// each encoding to at most kMaxCommandBytes, so that every log entry stays
// far below what a follower accepts in one AppendEntries request
// (docs/architecture.md, "Bounded commands"). Each piece is validated on
// its own at apply (expected epochs, the dead state), so a split operation
// is correct whichever pieces commit, and in any number of terms.

#include <cstddef>
#include <string>
#include <vector>

#include "controlplane/commands.h"

namespace tenure::controlplane {

/// The most bytes one encoded command built by the split helpers takes.
/// A quarter of the Raft core's max entry size (peers::kMaxEntryBytes
/// is 1 MiB): room for the request id and the envelope, and an entry a
/// follower takes in a fraction of a heartbeat interval.
inline constexpr size_t kMaxCommandBytes = 256 << 10;
/// What a command's list may take of kMaxCommandBytes; the rest is for the
/// version, kind, request id (at most a few hundred bytes), time, worker id
/// and counts.
inline constexpr size_t kCommandListBudgetBytes = kMaxCommandBytes - 4096;

/// Bytes an item takes in a command's encoding (commands.cc).
size_t encoded_size(const ShardId& id);
size_t encoded_size(const Placement& p);

/// Splits `items` in order into runs whose encoded sizes sum to at most
/// `budget_bytes` and that have at most `max_items` items each (a single
/// item larger than the budget makes a run of its own).
template <typename T, typename SizeOf>
std::vector<std::vector<T>> split_by_bytes(std::vector<T> items, size_t budget_bytes, SizeOf size_of,
                                           size_t max_items = static_cast<size_t>(-1)) {
  std::vector<std::vector<T>> runs;
  size_t bytes = 0;
  for (auto& item : items) {
    size_t n = size_of(item);
    if (runs.empty() || (!runs.back().empty() && (bytes + n > budget_bytes || runs.back().size() >= max_items))) {
      runs.emplace_back();
      bytes = 0;
    }
    bytes += n;
    runs.back().push_back(std::move(item));
  }
  return runs;
}

/// The request id of the k-th piece of a split request ("<id>.<k>", k >= 1;
/// the first piece keeps the id): a retried request (same idempotency key)
/// maps each piece to the same id, so each applies once; a reuse of the key
/// for another request is refused for every piece (StateMachine::apply).
std::string piece_request_id(const std::string& request_id, size_t k);

/// CreateShards commands for `ids`, in order (at least one). `list_bytes`:
/// the bytes each command's list may take (smaller in the simulator, to
/// draw many pieces from few shards).
std::vector<Command> create_commands(const std::string& request_id, std::vector<ShardId> ids,
                                     size_t list_bytes = kCommandListBudgetBytes);

/// The failover of `dead`: a DeclareDead with the first placements, then
/// FailoverShards with the rest (when `declare` is false, only FailoverShards:
/// a continuation of a failover an earlier command began).
std::vector<Command> failover_commands(const std::string& request_id, const WorkerId& dead,
                                       std::vector<Placement> placements, ChangeReason reason, bool declare = true,
                                       size_t list_bytes = kCommandListBudgetBytes);

/// `c` in pieces of bounded size (at least one).
std::vector<Command> complete_moves_commands(const std::string& request_id, CompleteMoves c,
                                             size_t list_bytes = kCommandListBudgetBytes);
/// `c` in pieces of bounded size (at least one).
std::vector<Command> end_prepares_commands(const std::string& request_id, EndPrepares c,
                                           size_t list_bytes = kCommandListBudgetBytes);

}  // namespace tenure::controlplane
