#pragma once
// The one canonical history every member must agree on: for each log index,
// the entry some member was first seen to hold as committed. Built as the
// simulation runs (never from a single member's log, which a crash can
// lose), it is what the applied-prefix, leader-completeness, acked-writes
// and read checkers compare against.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "consensus/message.h"

namespace tenure::sim {

using consensus::Entry;
using consensus::EntryType;
using consensus::LogIndex;
using consensus::NodeId;
using consensus::Term;

struct CommittedEntry {
  bool known = false;
  Term term;
  EntryType type = EntryType::kNormal;
  std::string data;
  /// The lowest term in which a member was seen holding this entry as
  /// committed: every leader of a later term must have it (§3.6.3).
  Term commit_term;
  NodeId first_seen_on;
};

class History {
 public:
  /// Records that `node`, whose current term is `node_term`, holds `e` as
  /// committed. Returns a description when a different entry is already
  /// recorded at the same index (two members committed different entries).
  std::optional<std::string> record(const NodeId& node, Term node_term, const Entry& e);

  /// The entry at `i`, or nullptr when none was recorded yet.
  const CommittedEntry* at(LogIndex i) const;
  /// The highest recorded index.
  LogIndex last() const { return LogIndex(entries_.size()); }
  /// The KV register `key` after applying the history up to `index`.
  std::string value_at(const std::string& key, LogIndex index) const;
  /// Every key any committed command wrote, in order.
  std::vector<std::string> keys() const;

 private:
  std::vector<CommittedEntry> entries_;  ///< entries_[i - 1] is index i
  std::map<std::string, std::map<LogIndex, std::string>> writes_;
};

/// "term=3 data=put k v" for violation details.
std::string describe_entry(Term term, EntryType type, const std::string& data);

}  // namespace tenure::sim
