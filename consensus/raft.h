#pragma once
// The Raft core: a pure state machine with no I/O, threads, clocks or
// randomness beyond a seeded generator. The driver feeds it time (tick),
// messages (step) and requests (propose, read_index, ...), then drains a
// Ready batch and processes it strictly in this order (as etcd-io/raft's
// RawNode): persist hard state, snapshot and entries (fsync) -> send
// messages -> apply committed entries -> advance(). Only
// Ready::early_messages may be sent before the fsync (thesis §10.2.1).
//
// Thread: not thread-safe; one driver thread or strand owns it.

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/result.h"
#include "consensus/drop_reason.h"
#include "consensus/message.h"
#include "consensus/progress.h"
#include "consensus/raft_config.h"
#include "consensus/raft_log.h"

namespace tenure::consensus {

enum class Role { kFollower, kPreCandidate, kCandidate, kLeader };
const char* to_string(Role r);

/// Why a request was refused. All are expected failures, not bugs.
enum class RaftError {
  kNotLeader,           ///< message names the known leader (NotLeader{hint}), may be empty
  kTransferInProgress,  ///< leadership is being handed over; retry at the new leader
  kConfChangePending,   ///< one membership change at a time (§4.1)
  kInvalidConfChange,
  kTooManyUncommitted,  ///< backpressure: max_uncommitted_bytes reached
  kUnknownMember,       ///< the named node is not a voter of the group
  kEntryTooLarge,       ///< an entry exceeds RaftConfig::max_entry_bytes; message names the limit
};

template <typename T>
using RaftResult = Result<T, RaftError>;

/// What a member recovered from stable storage on start.
struct InitialState {
  HardState hard_state;
  Snapshot snapshot;           ///< empty (index 0) if none
  std::vector<Entry> entries;  ///< every persisted entry after the snapshot
};

/// The bootstrap state of a brand-new group: one AddVoter entry per initial
/// member at term 1, already committed, identical on every initial member so
/// that log matching holds from the start (as etcd-io/raft's Bootstrap).
InitialState bootstrap_state(const std::vector<NodeId>& voters);

/// A linearizable read may be served once the state machine has applied
/// `index` (thesis §6.4).
struct ReadState {
  uint64_t request_id = 0;
  LogIndex index;
};

/// Where a proposal landed; it succeeded iff the entry applied at `index` has `term`.
struct ProposalTicket {
  Term term;
  LogIndex index;
};

struct Ready {
  /// Persist if set (term and vote must be durable before `messages` go out).
  std::optional<HardState> hard_state;
  /// Persist if set: replaces the log and the state machine.
  std::optional<Snapshot> snapshot;
  /// Persist: first drop any stored entries at or after entries.front().index.
  std::vector<Entry> entries;
  /// May be sent before persisting (a leader's own appends, §10.2.1).
  std::vector<Message> early_messages;
  /// Must be sent only after everything above is durable.
  std::vector<Message> messages;
  /// All committed; apply in order. Those at or below the log's stable
  /// index before this Ready (durable from earlier Readies) may be applied
  /// while this Ready persists; the others only after it is durable.
  std::vector<Entry> committed_entries;
  /// Reads that may be served once applied_index >= index.
  std::vector<ReadState> read_states;
  /// Read requests of this node that can no longer be answered (leader lost).
  std::vector<uint64_t> dropped_reads;

  /// Whether hard_state changes the term or the vote (not only the commit index).
  bool hard_state_changes_vote = false;

  /// Whether this Ready needs an fsync before its messages go out. A
  /// hard state that only moves the commit index does not: the commit index
  /// is a hint that a restarted member relearns from the leader (as in
  /// etcd-io/raft's MustSync), so it may be written lazily or not at all.
  bool must_sync() const { return hard_state_changes_vote || snapshot.has_value() || !entries.empty(); }
};

struct FollowerStatus {
  NodeId id;
  LogIndex match;
  LogIndex next;
  ProgressState state;
  bool learner;
  bool recent_active;
};

struct Status {
  NodeId id;
  Role role;
  Term term;
  NodeId vote;
  NodeId leader;
  LogIndex commit;
  LogIndex applied;
  LogIndex last_index;
  LogIndex first_index;
  ConfState conf;
  NodeId transferee;
  std::vector<FollowerStatus> followers;  ///< leader only, sorted by id
};

class Raft {
 public:
  Raft(RaftConfig config, InitialState state);

  /// Advances logical time by one tick.
  void tick();
  /// Handles a message from a peer. A message inconsistent with this
  /// member's state (for another node, out of range, entries that do not
  /// follow, an ack past our log, see raft_check.cc) is dropped without any
  /// effect and the reason returned, for the driver to count and log.
  std::optional<DropReason> step(Message m);
  /// Starts an election now (pre-vote first when enabled), as on a timeout.
  void campaign();
  /// The driver found nothing listening at `leader`'s address (its process
  /// is gone: the kernel refused a connection). A follower of `leader`
  /// forgets it, which ends its leader lease (so it grants other members'
  /// pre-votes), and campaigns [heartbeat, 2 heartbeat) ticks later instead
  /// of a whole election timeout. Only the timing of an election changes, never
  /// its rules. A no-op otherwise.
  void leader_unreachable(const NodeId& leader);
  /// Ticks since a follower last heard from its leader (or since it last
  /// reset its election clock); 0 on a leader.
  int ticks_since_leader_heard() const { return role_ == Role::kLeader ? 0 : election_elapsed_; }

  /// Appends a command to the log (leader only).
  RaftResult<ProposalTicket> propose(std::string data);
  /// Appends many commands at once; all or none (one backpressure check).
  RaftResult<ProposalTicket> propose_batch(std::vector<std::string> data);
  /// Proposes a single-server membership change (§4.1, §4.2.1); one at a time.
  RaftResult<ProposalTicket> propose_conf_change(const ConfChange& cc);
  /// Asks for a linearizable read index (§6.4); the answer comes as a
  /// ReadState with the same id in a later Ready (or in dropped_reads).
  /// Works on followers by asking the leader.
  RaftResult<Ok> read_index(uint64_t request_id);
  /// A member's ReadIndex request `m`, at a leader whose driver holds a read
  /// lease (RaftConfig::leader_lease, thesis §6.4.1; the caller vouches for
  /// it): answered at the commit index now, as the leader's own reads on the
  /// lease are, instead of in the next round of heartbeats. False, and
  /// nothing done, unless `m` is a ReadIndex of this term from a member, at
  /// a leader that has committed an entry of its term and kept its lease
  /// (no transfer began): the caller then steps `m` as usual.
  bool answer_read_on_lease(const Message& m);
  /// Hands leadership to `to` (§3.10).
  RaftResult<Ok> transfer_leadership(const NodeId& to);
  /// The driver could not deliver a snapshot (or did): lets the leader retry.
  void report_snapshot(const NodeId& to, bool delivered);

  /// Records a snapshot of the state machine at the applied index and
  /// compacts the log, keeping `keep_entries` entries before it so that
  /// slightly lagging followers still get entries. Returns the snapshot
  /// (the driver persists it) and the index up to which stored entries may go.
  std::pair<Snapshot, LogIndex> compact(std::string data, uint64_t keep_entries);
  /// compact() in two steps, for a driver that encodes the state elsewhere
  /// while the group goes on (a snapshot of the whole state takes long):
  /// snapshot_point() names the applied index, its term and the
  /// configuration now (data empty); compact_at() later records that
  /// snapshot with its data and compacts as compact() does. nullopt when
  /// the log's snapshot has meanwhile moved to or past it (one received
  /// from the leader): the late snapshot is then of no use. Unlike
  /// compact(), it keeps the entries after a snapshot being sent to a
  /// follower (the driver's snapshots; the simulator's keep compact()'s
  /// behaviour until it runs the driver, issue 10).
  Snapshot snapshot_point() const;
  std::optional<std::pair<Snapshot, LogIndex>> compact_at(Snapshot snap, uint64_t keep_entries);
  /// Forgets the data of the snapshot at `index` (if it is still the
  /// current one) once the member's store holds it: a snapshot message then
  /// carries its index, term and configuration only, and the sender reads
  /// the bytes from the store (replication::PeerSender). At 1,000,000 shards
  /// that is 40-170 MB a member need not keep in memory between sends.
  void release_snapshot_data(LogIndex index) { log_.release_snapshot_data(index); }

  /// Index of a snapshot received from the leader and not yet handed out in
  /// a Ready; 0 if none (the driver keeps the decoded state for it).
  LogIndex pending_snapshot_index() const { return pending_snapshot_ ? pending_snapshot_->index : LogIndex(0); }

  bool has_ready() const;
  /// Committed entries remain that no Ready handed out yet (a Ready hands
  /// out at most max_committed_bytes_per_ready of them).
  bool has_committed_to_apply() const { return log_.has_next_committed(); }
  Ready ready();
  /// A leader's messages that need no fsync (what the next Ready's
  /// early_messages would carry: appends, heartbeats), taken while the
  /// previous Ready is still being persisted. A slow fsync then does not
  /// silence the leader: etcd's leader sends nothing while its WAL syncs,
  /// and a sync longer than the election timeout deposes it. Empty unless
  /// leading. Reads waiting for a round start one here, as in ready().
  std::vector<Message> take_early_messages();
  /// Acknowledges that the last Ready was fully processed.
  void advance();

  Status status() const;
  Role role() const { return role_; }
  Term term() const { return term_; }
  NodeId leader() const { return leader_; }
  const NodeId& id() const { return config_.id; }
  const ConfState& conf() const { return conf_; }
  const RaftLog& log() const { return log_; }
  /// Where payloads released under config().max_resident_log_bytes are read
  /// back from; none (the default) keeps every payload in memory.
  void set_entry_reader(EntryReader* reader) { log_.set_reader(reader); }
  const RaftConfig& config() const { return config_; }
  /// Whether the leader has committed an entry of its own term (§6.4 step 1).
  bool committed_in_current_term() const;
  /// A leader that began a leadership transfer in this term: its target may
  /// campaign at once, past the other members' leases, so no read may rest
  /// on a lease until the next term (RaftConfig::leader_lease).
  bool lease_forfeited() const { return lease_forfeited_; }

 private:
  // raft.cc: roles, ticks, the term rules common to every message.
  void become_follower(Term term, NodeId leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void reset(Term term);
  void tick_election();
  void tick_heartbeat();
  bool promotable() const;
  bool past_election_timeout() const { return election_elapsed_ >= randomized_election_timeout_; }
  void reset_randomized_election_timeout();
  void send(Message m);
  bool step_term(const Message& m);
  // raft_check.cc: why `m` must be dropped, if it must.
  std::optional<DropReason> check_message(const Message& m) const;

  // raft_election.cc
  void start_election(bool pre_vote, bool transfer);
  void handle_vote_request(const Message& m);
  void handle_vote_response(const Message& m);
  size_t quorum() const { return conf_.voters.size() / 2 + 1; }

  // raft_replication.cc
  RaftResult<ProposalTicket> append_as_leader(std::vector<Entry> entries);
  bool send_append(const NodeId& to, bool send_if_empty);
  void send_snapshot(const NodeId& to, Progress& pr);
  void broadcast_append();
  void send_heartbeat(const NodeId& to, uint64_t context);
  void broadcast_heartbeat(uint64_t context);
  void handle_append(Message& m);
  /// Drops acknowledgements not yet handed out that name entries past `kept`,
  /// which were just replaced (see the definition).
  void drop_unsent_acks_after(LogIndex kept);
  void handle_append_response(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_heartbeat_response(const Message& m);
  void handle_snapshot(const Message& m);
  bool maybe_commit();
  void on_committed(LogIndex old_commit);

  // raft_read_index.cc
  struct PendingRead {
    uint64_t request_id;
    NodeId from;  ///< empty for this node's own reads
    uint64_t round = 0;  ///< 0: waits for the next round
    LogIndex index;      ///< commit index when its round started
  };
  void enqueue_read(uint64_t request_id, const NodeId& from);
  bool read_round_due() const;
  void maybe_start_read_round();
  void release_confirmed_reads();
  void answer_read(const PendingRead& r, LogIndex index);
  void drop_pending_reads();
  void handle_read_index_response(const Message& m);

  // raft_membership.cc
  void apply_conf_entry(const Entry& e);
  /// Where a snapshot at `snapshot` compacts the log to: `keep_entries`
  /// behind it, not past `pinned`, never behind what is compacted already.
  LogIndex compaction_point(LogIndex snapshot, uint64_t keep_entries, LogIndex pinned) const;
  void sync_progress_with_conf();
  void handle_timeout_now(const Message& m);
  void abort_transfer() { transferee_.reset(); }

  RaftConfig config_;
  RaftLog log_;
  Role role_ = Role::kFollower;
  Term term_;
  NodeId vote_;
  NodeId leader_;
  ConfState conf_;
  std::map<NodeId, Progress> progress_;  ///< leader only; ordered for determinism
  std::map<NodeId, bool> votes_;         ///< candidate only
  std::optional<NodeId> transferee_;
  bool lease_forfeited_ = false;  ///< see lease_forfeited()
  /// Since start, until an election timeout passes or a leader is heard
  /// (RaftConfig::leader_lease): refuses votes as if in a leader's lease.
  bool start_lease_ = false;
  LogIndex pending_conf_index_;
  size_t uncommitted_bytes_ = 0;

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_election_timeout_ = 0;
  uint64_t rng_state_;

  // ReadIndex batching (§6.4): requests join the next heartbeat round; a
  // round is confirmed once a quorum answered it or any later round.
  std::deque<PendingRead> pending_reads_;
  uint64_t read_round_started_ = 0;
  uint64_t read_round_confirmed_ = 0;
  std::map<NodeId, uint64_t> read_round_acked_;

  // Output accumulated for the next Ready.
  std::vector<Message> msgs_;
  std::vector<Message> early_msgs_;
  std::vector<ReadState> read_states_;
  std::vector<uint64_t> dropped_reads_;
  std::optional<Snapshot> pending_snapshot_;
  HardState persisted_hard_state_;
  // The commit index of the last hard state handed out in a Ready that must
  // be synced: what the driver surely persisted (it may skip a Ready that
  // only moves the commit index, see Ready::must_sync()).
  LogIndex durable_commit_;
  /// The index of the last membership change handed out to be applied.
  LogIndex conf_handed_out_;
  // What the last Ready handed out, acknowledged by advance().
  HardState ready_hard_state_;
  LogIndex ready_durable_commit_;
  LogIndex ready_stable_to_;
  Term ready_stable_term_;  ///< term of the entry at ready_stable_to_ when handed out
  LogIndex ready_applied_to_;
  std::vector<Entry> ready_conf_entries_;
  bool ready_outstanding_ = false;
};

}  // namespace tenure::consensus
