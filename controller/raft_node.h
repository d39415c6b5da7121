#pragma once
// The Raft driver of one controller: it owns the core, the durable storage
// and the replicated state machine, and runs them on one Asio strand in the
// order the core requires: persist (one transaction, one fsync per Ready:
// group commit) -> send -> apply -> advance. Everything else reaches it by
// posting to that strand, so the state machine needs no locks.
//
// The fsync runs on a PersistWorker thread: while a Ready is being made
// durable the strand goes on stepping messages and queueing proposals (the
// core allows steps between ready() and advance()), and pulls the next
// Ready only after that one is advanced, so the next fsync covers
// everything that arrived meanwhile.

#include <atomic>
#include <cstdint>
#include <array>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "consensus/raft.h"
#include "controller/guarded.h"
#include "controller/message_drops.h"
#include "controller/metrics.h"
#include "controller/peer_sender.h"
#include "controller/persist_worker.h"
#include "controller/queue_bound.h"
#include "controller/snapshot_maker.h"
#include "controlplane/commands.h"
#include "controlplane/state_machine.h"

namespace tenure::storage {
class RaftStorage;
}

namespace tenure::controller {

using consensus::LogIndex;
using consensus::NodeId;
using consensus::Term;

struct NodeOptions {
  NodeId id;
  /// The Raft clock's resolution. Finer than the heartbeat so that members'
  /// randomized election timeouts land on distinct instants.
  uint32_t tick_ms = 10;
  int heartbeat_ticks = 10;       ///< heartbeat interval in ticks
  int election_ticks = 100;       ///< election timeout in ticks
  int election_jitter_ticks = 10; ///< randomization above it, in ticks
  uint64_t snapshot_threshold_entries = 10000;
  uint64_t snapshot_keep_entries = 1000;  ///< entries kept behind a snapshot for slow followers
  uint32_t request_timeout_ms = 5000;
  /// Members' addresses from this node's config (they win over learned ones).
  std::map<NodeId, std::string> configured_addresses;
  /// First start: the initial voters; empty to join an existing group.
  std::vector<NodeId> bootstrap_voters;
  /// Proposals queued while a Ready's fsync runs (they join the next Ready):
  /// past either bound a proposal is refused with kBusy (503 `busy`).
  size_t max_queued_proposals = 10000;
  size_t max_queued_proposal_bytes = size_t(32) << 20;
  /// Bounds of the replicated state (events kept for watches, ...).
  controlplane::Limits limits;
};

/// kTooLarge: the command exceeds the max entry size (413 too_large).
enum class NodeErrc { kNotLeader, kTimeout, kDropped, kBusy, kStopped, kInvalid, kTooLarge };

struct NodeError {
  NodeErrc code;
  std::string message;
  NodeId leader;  ///< the known leader for kNotLeader, may be empty
};

struct MemberInfo {
  NodeId id;
  std::string address;
  std::string role;  ///< leader, follower, learner
  /// As this member knows it first hand: at the leader, whether it reaches
  /// the member (its own sends succeed); at a follower, only for itself and
  /// the leader. nullopt: not known here (followers do not talk to each
  /// other), never a guess.
  std::optional<bool> healthy;
  /// Entries the member's log is behind the leader's (leader's progress);
  /// known only at the leader.
  std::optional<uint64_t> lag;
  bool started = false;  ///< known to have taken part in the group (see MarkMembersStarted)
};

/// A consistent copy of the node's view, cheap to take from any thread.
struct NodeSummary {
  NodeId id;
  NodeId leader;
  Term term;
  LogIndex commit;
  LogIndex applied;
  controlplane::Revision revision;
  bool is_leader = false;
  std::vector<MemberInfo> members;
  std::string leader_address;
  /// Shards and workers by state (indexed by ShardState / WorkerState) in
  /// this member's applied state.
  std::array<size_t, 3> shards_by_state{};
  std::array<size_t, 3> workers_by_state{};
};

using ProposeDone = std::function<void(const NodeError*, const controlplane::ApplyResult*)>;
/// Runs on the strand with the state machine at an index at least the read index.
using ReadDone = std::function<void(const NodeError*, const controlplane::StateMachine*)>;
using StateFn = std::function<void(const controlplane::StateMachine&)>;
using SimpleDone = std::function<void(const NodeError*)>;

class RaftNode {
 public:
  RaftNode(boost::asio::io_context& io, NodeOptions options, storage::RaftStorage& storage,
           PeerSender& peers, RaftMetrics& metrics);
  ~RaftNode();

  /// Loads persisted state (or bootstraps) and starts ticking.
  void start();
  /// Stops ticking and fails every pending request with kStopped.
  void stop();

  // Thread-safe; completions run on the node's strand.
  /// Proposes a command (leader only; followers' API forwards writes).
  void propose(controlplane::Command cmd, ProposeDone done);
  /// A linearizable read (ReadIndex, thesis §6.4), at a leader or a follower.
  void read(ReadDone done);
  /// A read of this node's own, possibly stale, state.
  void read_stale(StateFn fn);
  /// Runs `fn` on the strand with the core (for leader-only soft state).
  void post(std::function<void()> fn);
  /// Runs `fn` on an I/O thread, off the strand: for work a strand task
  /// hands on so that it does not delay Raft (serializing a list's page).
  void post_off_strand(std::function<void()> fn);
  void add_member(const NodeId& id, const std::string& address, SimpleDone done);
  void remove_member(const NodeId& id, SimpleDone done);
  void transfer_leadership(const NodeId& to, SimpleDone done);
  /// A graceful stop's first step (SIGTERM): at the leader, hands
  /// leadership to the voter that has the most of the log among those that
  /// answer (§3.10, TimeoutNow), still serving meanwhile, and calls
  /// done(true) once another member leads. done(false) at once when this
  /// member does not lead or leads alone, or after an election timeout
  /// without a new leader (the stop goes on; the others elect as after a
  /// crash). On the strand.
  void hand_over_leadership(std::function<void(bool moved)> done);
  /// Peer traffic from the transport. Each message is checked against
  /// this member's state before the core acts on it; what fails is dropped
  /// and counted in drops() (issue 8: nothing from the network reaches an
  /// assertion). A snapshot's data is decoded here, before the core may
  /// make it durable.
  void step(std::vector<consensus::Message> msgs);
  /// Counter and log of refused peer messages; thread-safe.
  MessageDrops& drops() { return drops_; }
  /// The transport's verdict on a snapshot it was asked to send.
  void report_snapshot(const NodeId& to, bool delivered);

  NodeSummary summary() const;
  /// summary().is_leader without copying the summary (asked on every request).
  bool is_leader() const { return is_leader_.load(std::memory_order_relaxed); }
  const std::string& id() const { return options_.id.str(); }

  /// Strand-only access for code already on the strand (e.g. leader tasks).
  consensus::Raft& raft() { return *raft_; }
  controlplane::StateMachine& state() { return state_; }
  /// Called on the strand after each tick on the leader (issue 4's lease tasks hook here).
  void set_tick_hook(std::function<void()> hook) { tick_hook_ = guarded(std::move(hook), "tick_hook"); }
  /// Called on the strand after every tick, on every member.
  void set_every_tick_hook(std::function<void()> hook) { every_tick_hook_ = guarded(std::move(hook), "every_tick_hook"); }
  /// Called on the strand after entries were applied.
  void set_apply_hook(std::function<void()> hook) { apply_hook_ = guarded(std::move(hook), "apply_hook"); }

 private:
  struct PendingProposal {
    Term term;
    ProposeDone done;
    uint64_t deadline_ms;
    uint64_t proposed_ns;
  };
  struct QueuedProposal {
    std::string data;
    ProposeDone done;
    bool conf_change = false;
  };
  struct PendingRead {
    ReadDone done;
    uint64_t deadline_ms;
    LogIndex index;  ///< set once the read index is known
  };

  void start_on_strand();
  void on_tick();
  void schedule_tick();
  void schedule_process();
  void process();
  void flush_proposals();
  void handle_ready(consensus::Ready& rd);
  void start_persist(consensus::Ready rd);
  void on_persisted(consensus::Ready& rd);
  void step_one(consensus::Message& m);
  bool known_sender(const consensus::Message& m) const;
  void install_snapshot(const consensus::Snapshot& snap);
  void apply_entries(std::vector<consensus::Entry>& entries);
  void apply_conf_change(const consensus::Entry& e);
  void complete(LogIndex index, Term term, const controlplane::ApplyResult* result);
  void release_reads();
  void maybe_snapshot();
  void record_snapshot();
  void maybe_promote_learners();
  void maybe_mark_started();
  void expire_requests();
  void fail_all(NodeErrc code, const std::string& message);
  void update_summary();
  NodeError not_leader() const;
  std::string address_of(const NodeId& id) const;

  boost::asio::io_context& io_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer ticker_;
  NodeOptions options_;
  storage::RaftStorage& storage_;
  PeerSender& peers_;
  RaftMetrics& metrics_;
  MessageDrops drops_;
  std::unique_ptr<consensus::Raft> raft_;
  controlplane::StateMachine state_;
  bool stopped_ = true;  ///< until start(), and again after stop()
  bool process_scheduled_ = false;
  bool persisting_ = false;  ///< a Ready is on the persist worker: no ready() until it is advanced

  /// Snapshots from the leader, decoded when they arrived, by index, until
  /// the Ready that installs them (at most the one the core holds and the
  /// one being persisted).
  std::map<LogIndex, std::unique_ptr<controlplane::StateMachine>> staged_snapshots_;
  /// Queues `q` if queued_bound_ admits it, else fails it with kBusy.
  void enqueue(QueuedProposal q);
  std::vector<QueuedProposal> queued_;
  QueueBound queued_bound_{options_.max_queued_proposals, options_.max_queued_proposal_bytes};
  std::map<LogIndex, PendingProposal> pending_;
  std::map<uint64_t, PendingRead> reads_;  ///< by request id
  uint64_t next_read_id_ = 1;
  std::map<NodeId, std::string> learned_addresses_;
  NodeId last_leader_;
  uint64_t ticks_ = 0;
  bool marking_started_ = false;
  controlplane::Revision metrics_revision_{~uint64_t(0)};
  std::array<size_t, 3> shards_by_state_{};   ///< cached with metrics_revision_
  std::array<size_t, 3> workers_by_state_{};
  std::function<void()> tick_hook_;
  std::function<void()> every_tick_hook_;
  std::function<void()> apply_hook_;

  mutable std::mutex summary_mu_;
  NodeSummary summary_;
  std::atomic<bool> is_leader_{false};
  /// A local snapshot being made off the strand (snapshot_maker.h), and
  /// its result until the core can take it (not while a Ready is out).
  SnapshotMaker snapshots_{storage_};
  bool snapshot_in_flight_ = false;
  std::optional<MadeSnapshot> made_snapshot_;
  uint64_t snapshot_retry_ms_ = 0;  ///< after a failed attempt, not before this steady time
  /// A hand-over in progress: checked every tick until another member
  /// leads or the deadline passes.
  struct HandOver {
    std::function<void(bool)> done;
    uint64_t deadline_ms = 0;
  };
  std::optional<HandOver> hand_over_;
  void check_hand_over();
  /// Last: destroyed (joined) first, while what its jobs touch still exists.
  PersistWorker persister_;
};

/// Milliseconds of the wall clock (the leader stamps commands with it).
uint64_t wall_clock_ms();

}  // namespace tenure::controller
