#pragma once
// One controller's Raft member: the driver (replication/raft_driver.h, the
// same loop the simulator runs) plugged into the controller's world. Its
// serial context is one Asio strand, its fsyncs run on a PersistWorker
// thread, its log is SQLite (storage/), its machine is the control plane's
// state machine (snapshots forked off by SnapshotMaker), and what happens
// is counted in Prometheus metrics. Everything reaches the driver by
// posting to the strand, so the state machine needs no locks.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>
#include <chrono>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include "consensus/raft.h"
#include "member/guarded.h"
#include "member/history_store.h"
#include "member/message_drops.h"
#include "member/metrics.h"
#include "member/persist_worker.h"
#include "member/snapshot_maker.h"
#include "replication/raft_driver.h"
#include "controlplane/commands.h"
#include "controlplane/state_machine.h"

namespace tenure::storage {
class RaftStorage;
}

namespace tenure::member {

using consensus::LogIndex;
using consensus::NodeId;
using consensus::Term;

/// The driver's options (snapshots, request timeout, addresses, bootstrap,
/// the proposal queue's bounds: replication::DriverOptions) and what the
/// controller derives the core's configuration from.
struct NodeOptions : replication::DriverOptions {
  NodeId id;
  /// (DriverOptions::tick_ms is the Raft clock's resolution: finer than the
  /// heartbeat so that members' randomized election timeouts land on
  /// distinct instants.)
  int heartbeat_ticks = 10;       ///< heartbeat interval in ticks
  int election_ticks = 100;       ///< election timeout in ticks
  int election_jitter_ticks = 10; ///< randomization above it, in ticks
  /// Bounds of the replicated state (events kept for watches, ...).
  controlplane::Limits limits;
};

using replication::NodeErrc;
using replication::NodeError;
using replication::PeerSender;

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
  /// This life of the member has applied an entry that a leader committed
  /// in the member's current term (RaftNode::caught_up()).
  bool caught_up = false;
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

class RaftNode final : private replication::Executor,
                       private replication::Machine,
                       private replication::DriverEvents {
 public:
  /// `history`: where each shard's history goes (null: nowhere); it must
  /// outlive the node.
  RaftNode(boost::asio::io_context& io, NodeOptions options, storage::RaftStorage& storage,
           PeerSender& peers, RaftMetrics& metrics, HistoryStore* history = nullptr);
  ~RaftNode() override;

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
  void post(std::function<void()> fn) override;
  /// Runs `fn` on an I/O thread, off the strand: for work a strand task
  /// hands on so that it does not delay Raft (serializing a list's page).
  void post_off_strand(std::function<void()> fn);
  /// Where post_off_strand posts, for callers on threads that may outlive
  /// the node (the history store's writer): the io_context outlives it.
  boost::asio::io_context::executor_type io_executor() { return io_.get_executor(); }
  void add_member(const NodeId& id, const std::string& address, SimpleDone done);
  void remove_member(const NodeId& id, SimpleDone done);
  void transfer_leadership(const NodeId& to, SimpleDone done);
  /// A graceful stop's first step (SIGTERM): RaftDriver::hand_over_leadership.
  void hand_over_leadership(std::function<void(bool moved)> done);
  /// Peer traffic from the transport (RaftDriver::step); refused messages
  /// are counted in drops().
  void step(std::vector<consensus::Message> msgs);
  /// Counter and log of refused peer messages; thread-safe.
  MessageDrops& drops() { return drops_; }
  /// The transport's verdict on a snapshot it was asked to send.
  void report_snapshot(const NodeId& to, bool delivered);
  /// The current snapshot's file failed its checksum (the transport's
  /// check): take a new one, whose file replaces it.
  void snapshot_now();

  NodeSummary summary() const;
  /// summary().is_leader without copying the summary (asked on every request).
  bool is_leader() const { return is_leader_.load(std::memory_order_relaxed); }
  /// Whether this member's own state is at least as new as anything it
  /// served before it last started. The commit index is made durable only
  /// with a Ready that persists something else (a commit-only Ready is not
  /// fsynced), so a restarted member replays its log to an older commit
  /// index than it had applied, and learns the rest from its leader. It is
  /// caught up once a linearizable read (ReadIndex) it started after its
  /// start has completed: it has then applied everything committed before
  /// that read began. False from start until then (retried every heartbeat
  /// interval while there is no leader); never false again in this life.
  bool caught_up() const { return caught_up_.load(std::memory_order_acquire); }
  const std::string& id() const { return options_.id.str(); }
  /// Each shard's history (null when the node keeps none). Thread-safe.
  HistoryStore* history() { return history_; }

  /// Strand-only access for code already on the strand (e.g. leader tasks).
  consensus::Raft& raft() { return driver_.raft(); }
  controlplane::StateMachine& state() { return state_; }
  /// How late this member's ticks ran in all, counting only ticks late by
  /// kStallMinMs or more (the strand was busy or starved: nothing it
  /// was sent was read meanwhile). Strand only.
  uint64_t stalled_ms() const { return stalled_ms_; }
  static constexpr uint64_t kStallMinMs = 100;
  /// Called on the strand after each tick on the leader (issue 4's lease tasks hook here).
  void set_tick_hook(std::function<void()> hook) { tick_hook_ = guarded(std::move(hook), "tick_hook"); }
  /// Called on the strand after every tick, on every member.
  void set_every_tick_hook(std::function<void()> hook) {
    driver_.set_every_tick_hook(guarded(std::move(hook), "every_tick_hook"));
  }
  /// Called on the strand after entries were applied.
  void set_apply_hook(std::function<void()> hook) { driver_.set_apply_hook(guarded(std::move(hook), "apply_hook")); }

 private:
  /// What held the strand (label work of tenure_raft_strand_busy_seconds).
  /// Nested: a tick includes its leader_tasks and applies, posted work its applies.
  enum class StrandWork { kTick, kLeaderTasks, kPeerMessages, kPosted, kApply, kRequest, kStaleRead, kCount };
  /// Runs `fn` (the caller is on the strand) and notes how long it held it.
  template <typename F>
  void timed(StrandWork work, F&& fn) {
    auto started = std::chrono::steady_clock::now();
    // The thread's CPU time too, where it is cheap to ask (a system call,
    // 100 times a second): a hold far longer than its CPU time was the
    // strand waiting for a core, not doing work.
    const bool cpu = work == StrandWork::kTick || work == StrandWork::kLeaderTasks;
    const int64_t cpu_started = cpu ? thread_cpu_ns() : -1;
    fn();
    note_strand_busy(work, started, nullptr, 0, cpu_started);
  }
  static int64_t thread_cpu_ns();
  void note_strand_busy(StrandWork work, std::chrono::steady_clock::time_point started, const char* detail = nullptr,
                        size_t bytes = 0, int64_t cpu_started_ns = -1);
  void schedule_tick();
  void note_tick_delay(std::chrono::steady_clock::duration late);
  void maybe_mark_started();
  void update_summary();
  void update_history_metrics(const HistoryStore& history);
  /// Until caught_up(): a ReadIndex read now and then, on the tick.
  void maybe_catch_up();

  // replication::Executor: the strand, the persist thread, the steady clock.
  void persist(std::function<void()> job) override { persister_.submit(std::move(job)); }
  uint64_t now_ms() const override;
  uint64_t now_ns() const override;
  // replication::Machine: the control plane's state machine.
  bool restore(const std::string& data) override;
  std::unique_ptr<replication::StagedState> stage(const std::string& data) override;
  void install(std::unique_ptr<replication::StagedState> staged) override;
  void apply(const consensus::Entry& e) override;
  void make_snapshot(consensus::Snapshot point, std::function<void(replication::MadeSnapshot)> done) override;
  uint64_t approximate_snapshot_bytes() const override { return state_.approximate_snapshot_bytes(); }
  // replication::DriverEvents: metrics, the drops' log, the summary.
  void proposals(const char* result, size_t count) override;
  void committed(uint64_t latency_ns) override;
  void read_started(const char* path) override;
  void queue_length(size_t proposals) override;
  void persisted(const consensus::Ready& rd, uint64_t ns) override;
  void dropped(const char* reason, const NodeId& from, const char* type, const std::string& detail) override;
  void snapshot_installed(const consensus::Snapshot& s) override;
  void snapshot_taken(const replication::MadeSnapshot& made, LogIndex compacted_to) override;
  void processed() override { update_summary(); }

  boost::asio::io_context& io_;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer ticker_;
  /// When the next tick was due by the cadence. The timer is clamped to
  /// now after a tick that ran long; lateness is measured against this, so
  /// the time a tick itself took counts too.
  std::chrono::steady_clock::time_point tick_due_{};
  NodeOptions options_;
  storage::RaftStorage& storage_;
  PeerSender& peers_;
  RaftMetrics& metrics_;
  MessageDrops drops_;
  HistoryStore* history_;
  controlplane::StateMachine state_;
  /// What the last applied command returned, for its proposer's completion
  /// (which the driver runs right after the apply).
  controlplane::ApplyResult last_result_;
  replication::RaftDriver driver_;
  bool ticking_ = false;
  uint64_t ticks_ = 0;
  std::chrono::steady_clock::time_point last_late_tick_log_{};
  std::chrono::steady_clock::time_point last_busy_log_{};
  std::chrono::steady_clock::time_point last_slow_persist_log_{};  ///< persist thread only
  std::array<prometheus::Histogram*, static_cast<size_t>(StrandWork::kCount)> strand_busy_{};
  bool marking_started_ = false;
  NodeId last_leader_;  ///< the last leader known, and its term (leader_changes)
  Term last_leader_term_;
  controlplane::Revision metrics_revision_{~uint64_t(0)};
  uint64_t history_written_seen_ = 0;  ///< the history store's counts at the last update
  uint64_t history_dropped_seen_ = 0;
  uint64_t read_back_seen_ = 0;  ///< the core's read_back_entries() at the last summary
  std::array<size_t, 3> shards_by_state_{};   ///< cached with metrics_revision_
  std::array<size_t, 3> workers_by_state_{};
  std::function<void()> tick_hook_;
  uint64_t stalled_ms_ = 0;  ///< strand only (stalled_ms())

  mutable std::mutex summary_mu_;
  NodeSummary summary_;
  std::atomic<bool> is_leader_{false};
  std::atomic<bool> caught_up_{false};
  bool catch_up_in_flight_ = false;  ///< strand only
  uint64_t next_catch_up_tick_ = 0;
  SnapshotMaker snapshots_{storage_};
  /// Last: destroyed (joined) first, while what its jobs touch still exists.
  PersistWorker persister_;
};

/// Milliseconds of the wall clock (the leader stamps commands with it).
uint64_t wall_clock_ms();

}  // namespace tenure::member
