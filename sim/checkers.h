#pragma once
// The simulator's named safety checkers. Each sees a narrow slice of what
// happens (a role, a persisted batch, a sent message, an applied entry, a
// client's read) and returns a Violation the moment a Raft guarantee is
// broken. They take plain values rather than the simulator, so unit tests
// can feed them bad histories directly.

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "consensus/message.h"
#include "consensus/raft_log.h"
#include "sim/durable_store.h"
#include "sim/history.h"
#include "sim/state_machine.h"

namespace tenure::sim {

using consensus::HardState;
using consensus::Message;
using consensus::MessageType;
using consensus::RaftLog;

/// A broken guarantee, with enough context to find it in a --verbose trace.
struct Violation {
  std::string checker;  ///< e.g. "leader-per-term"
  NodeId node;
  Term term;
  LogIndex index;
  std::string detail;

  /// `checker=... node=... term=... index=... detail="..."`
  std::string describe() const;
};
using Check = std::optional<Violation>;

/// Election safety (§3.6.3): at most one leader per term, ever.
class LeaderPerTerm {
 public:
  Check observe(const NodeId& node, Term term);

 private:
  std::map<Term, NodeId> leaders_;
};

/// Log matching (§3.5): two entries with the same index and term hold the
/// same command and follow the same term, hence (by induction) the logs
/// are identical up to them. Fed with every batch a member persists.
class LogMatching {
 public:
  /// `prev_term` is the term of the entry before entries.front() in the member's log.
  Check observe(const NodeId& node, Term prev_term, const std::vector<Entry>& entries);
  /// The full pairwise comparison of two in-memory logs (run at the end).
  static Check compare(const NodeId& a, const RaftLog& la, const NodeId& b, const RaftLog& lb);

 private:
  struct Seen {
    Term term;
    Term prev_term;
    EntryType type;
    std::string data;
    NodeId node;
  };
  std::vector<std::vector<Seen>> by_index_;  ///< by_index_[i] lists one record per term seen at i
};

/// Leader completeness (§3.6.3): a leader of term T holds every entry
/// committed in a term below T. Checks history indexes [from, to].
Check check_leader_completeness(const NodeId& leader, Term term, const RaftLog& log, const History& history,
                                LogIndex from, LogIndex to);

/// The configuration a member would count election votes in: `applied` (its
/// current one) with every committed but not yet applied change in `log`
/// applied too. A member whose Ready handing those changes out is still being
/// persisted may start a campaign, but its vote requests leave only with a
/// later Ready, after advance() applied them, and while campaigning it learns
/// no new commit (any message from a leader ends the campaign). So votes are
/// never counted in the stale configuration (tests/sim/stale_config_campaign_test.cc).
consensus::ConfState conf_for_votes(const RaftLog& log, consensus::ConfState applied);

/// What the commit-safety checker needs to know of one member.
struct ElectorView {
  NodeId id;
  bool can_campaign = false;     ///< up, and a voter of conf_for_votes()
  std::set<NodeId> voters;       ///< the voters of conf_for_votes()
  Term last_term;                ///< its log's last entry (what it campaigns with)
  LogIndex last_index;
  Term durable_last_term;        ///< its durable log's last entry (what it votes with after any crash)
  LogIndex durable_last_index;
  bool holds_committed = false;  ///< holds the newest committed entry (or a snapshot past it)
  bool gone = false;             ///< decommissioned: votes no more
};

/// Commit safety, the invariant behind leader completeness (§3.6.3): no
/// member lacking the newest committed entry can win an election, i.e. a
/// majority of its configuration's voters (by their durable logs) would not
/// all find its log at least as up to date as theirs. Catches a commit that
/// is not yet lost but could be (Figure 8) without waiting for the fatal
/// election.
Check check_commit_safety(const std::vector<ElectorView>& members, LogIndex committed, Term committed_term);

/// State-machine safety: every member's applied sequence is a prefix of the
/// one committed history, and a restored snapshot equals that history's state.
class AppliedPrefix {
 public:
  /// `node` (in `node_term`) holds `e` as committed.
  Check on_commit(History& h, const NodeId& node, Term node_term, const Entry& e);
  /// `node` applied `e` to its state machine.
  Check on_apply(History& h, const NodeId& node, Term node_term, const Entry& e);
  /// `node` replaced its state machine by snapshot `s`; `sm` is the result.
  Check on_restore(const History& h, const NodeId& node, const consensus::Snapshot& s, const StateMachine& sm);
  /// `node` (re)started with its state machine at `applied`.
  void on_start(const NodeId& node, LogIndex applied) { applied_[node] = applied; }

 private:
  std::map<NodeId, LogIndex> applied_;
};

/// Term and vote never go back (§3.8): a persisted hard state only moves
/// forward, a restarted member recovers at least what its messages promised,
/// and no message carries a term that is not durable.
class DurableTermVote {
 public:
  Check on_persist(const NodeId& node, const HardState& before, const HardState& after);
  Check on_send(const NodeId& node, const Message& m, const HardState& durable);
  Check on_restart(const NodeId& node, const HardState& recovered, Term raft_term, const NodeId& raft_vote);

 private:
  struct Promise {
    Term term;    ///< the highest term the member sent a message in
    NodeId vote;  ///< the vote it granted (or cast for itself) in that term
  };
  std::map<NodeId, Promise> promised_;
};

/// Nothing acknowledged that was not persisted (§3.8): an AppendEntries
/// acknowledgement of index i leaves only once entry i is durable, a vote is
/// granted (or requested for oneself) only once that vote is durable.
class AckPersisted {
 public:
  /// `acked_term` is the term the sender's log held at m.index when the ack
  /// was made (Node records it after the step of the append it answers; else
  /// when the message's Ready was cut; nullopt when compacted there): what an
  /// AppendResponse acknowledges, even if the log moved on during the fsync.
  Check on_send(const NodeId& node, const Message& m, const DurableStore& durable, std::optional<Term> acked_term);
};

/// Every acknowledged proposal is in the final history.
class AckedWrites {
 public:
  struct Ack {
    NodeId via;
    LogIndex index;
    Term term;
    std::string data;
  };
  /// A client was told its write committed at (index, term). Checked at once
  /// against the history and again by final().
  Check on_ack(const History& h, Ack ack);
  /// Every acknowledged write is in the history and, unless compacted, in `leader_log`.
  Check final(const History& h, const NodeId& leader, const RaftLog* leader_log) const;
  size_t count() const { return acks_.size(); }

 private:
  static Check compare(const History& h, const Ack& a);
  std::vector<Ack> acks_;
};

/// One read a client completed.
struct ReadRecord {
  NodeId server;
  std::string key;
  LogIndex min_index;     ///< the highest index of a write acknowledged before the read began
  LogIndex read_index;    ///< what ReadIndex returned
  LogIndex served_index;  ///< the server's applied index when it answered
  std::string value;
};

/// Linearizable reads (§6.4): a read sees every write acknowledged before it
/// began (its read index is at or past them), returns exactly the state of
/// the committed history at the index it was served at, and nothing from
/// beyond the committed history.
class LinearizableReads {
 public:
  void on_write_ack(LogIndex i) {
    if (i > max_acked_) max_acked_ = i;
  }
  /// What a read beginning now must at least see.
  LogIndex begin() const { return max_acked_; }
  Check on_read(const History& h, const ReadRecord& r) const;

 private:
  LogIndex max_acked_;
};

}  // namespace tenure::sim
