#pragma once
// The values the Raft core exchanges with its driver: log entries, the
// durable hard state, membership configurations, snapshots and messages.

#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "consensus/types.h"

namespace tenure::consensus {

enum class EntryType : uint8_t {
  kNormal = 0,      ///< application command (may be empty: a leader's no-op)
  kConfChange = 1,  ///< membership change, encoded by encode_conf_change()
};

/// One log entry. `data` is opaque to the core except for kConfChange.
struct Entry {
  Term term;
  LogIndex index;
  EntryType type = EntryType::kNormal;
  std::string data;

  bool operator==(const Entry&) const = default;
};

/// What must survive a crash besides the log (thesis §3.8, Figure 3.1):
/// the current term and the vote cast in it, plus the commit index as a hint.
struct HardState {
  Term term;
  NodeId vote;
  LogIndex commit;

  bool operator==(const HardState&) const = default;
};

/// A membership configuration: voters decide elections and commitment,
/// learners only receive the log (thesis §4.2.1).
struct ConfState {
  std::set<NodeId> voters;
  std::set<NodeId> learners;

  bool operator==(const ConfState&) const = default;
  bool contains(const NodeId& id) const { return voters.count(id) || learners.count(id); }
};

enum class ConfChangeType : uint8_t {
  kAddLearner = 0,  ///< add a non-voting member (or demote a voter)
  kAddVoter = 1,    ///< add a voter or promote a learner
  kRemoveNode = 2,
};

/// A single-server membership change (thesis §4.1). `context` is carried
/// to the application untouched (the controller puts the address there).
struct ConfChange {
  ConfChangeType type = ConfChangeType::kAddLearner;
  NodeId node;
  std::string context;

  bool operator==(const ConfChange&) const = default;
};

std::string encode_conf_change(const ConfChange& cc);
/// Returns nullopt when `data` is not a valid encoding.
std::optional<ConfChange> decode_conf_change(const std::string& data);
/// Applies `cc` to `conf`; pure.
ConfState apply_conf_change(ConfState conf, const ConfChange& cc);

/// A state-machine snapshot covering the log up to `index` (thesis §5.1).
/// `data` is shared because the leader may send the same snapshot to
/// several followers; it is immutable once built. Null once the member's
/// store holds it (Raft::release_snapshot_data): the bytes live in the
/// store, and whoever sends the snapshot reads them from there.
struct Snapshot {
  LogIndex index;
  Term term;
  ConfState conf;
  std::shared_ptr<const std::string> data;

  bool empty() const { return index == LogIndex(0); }
};

enum class MessageType : uint8_t {
  kAppend,             ///< AppendEntries (thesis §3.5)
  kAppendResponse,
  kVote,               ///< RequestVote (§3.4)
  kVoteResponse,
  kPreVote,            ///< pre-vote round (§9.6)
  kPreVoteResponse,
  kHeartbeat,          ///< empty AppendEntries carrying commit and a read context
  kHeartbeatResponse,
  kSnapshot,           ///< InstallSnapshot (§5.2)
  kTimeoutNow,         ///< leadership transfer (§3.10)
  kReadIndex,          ///< follower asks the leader for a read index (§6.4)
  kReadIndexResponse,
};

const char* to_string(MessageType t);

/// A message between members. Fields unused by a type stay at their defaults.
struct Message {
  MessageType type = MessageType::kAppend;
  NodeId from;
  NodeId to;
  Term term;          ///< sender's term (for kPreVote: the term it would campaign in)
  Term log_term;      ///< kAppend: term of `index`; votes: term of last entry; reject: hint term
  LogIndex index;     ///< kAppend: index preceding `entries`; votes: last index; resp: match/rejected
  std::vector<Entry> entries;
  LogIndex commit;
  bool reject = false;
  LogIndex reject_hint;  ///< fast backtracking: follower's guess at the match (§5.3 of etcd)
  uint64_t context = 0;  ///< ReadIndex round or request id; 1 on kVote marks a transfer
  std::optional<Snapshot> snapshot;
};

}  // namespace tenure::consensus
