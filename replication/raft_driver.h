#pragma once
// The Raft driver: the one loop that runs the pure core (consensus/) for a
// member, in the order the core requires: persist (one transaction, one
// fsync per Ready: group commit) -> send -> apply -> advance. It owns the
// core, queues proposals and reads, completes them, takes snapshots and
// decodes the leader's, and hands leadership over on a graceful stop.
//
// It is the same code in the controller (an Asio strand and a persist
// thread, SQLite, HTTP) and in the simulator (one event queue, an
// in-memory store, a simulated network): everything it needs from the
// world comes through driver_ports.h. Every public method runs on the
// executor's serial context; the controller's RaftNode posts to it.
//
// While a Ready is being made durable the serial context goes on stepping
// messages and queueing proposals (the core allows steps between ready()
// and advance()), and pulls the next Ready only after that one is
// advanced, so the next fsync covers everything that arrived meanwhile.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "consensus/raft.h"
#include "replication/driver_ports.h"
#include "replication/peer_sender.h"
#include "replication/queue_bound.h"

namespace tenure::replication {

using consensus::LogIndex;
using consensus::NodeId;
using consensus::Term;

/// Where a member snapshots next by entry count (DriverOptions::
/// stagger_snapshots): the first point at least every/2 past `last` of the
/// points rank/voters * every + k * every. With one voter, last + every.
uint64_t staggered_snapshot_index(uint64_t last, uint64_t every, size_t rank, size_t voters);

struct DriverOptions {
  /// The core's configuration: id, ticks, message bounds, random seed (and,
  /// in the simulator only, planted bugs).
  consensus::RaftConfig raft;
  uint32_t tick_ms = 10;  ///< the tick's length in steady milliseconds (hand-over deadline)
  uint64_t snapshot_threshold_entries = 10000;
  /// Members take their entry-count snapshots at different indexes: the
  /// k-th of n voters (by id) at k/n of the way between the others'. The
  /// same threshold would otherwise have every member fork and encode at
  /// once, and the group stall together (a leader's stall delays every
  /// write; one follower's stall is hidden by the other's acknowledgement).
  bool stagger_snapshots = false;
  /// Or once the entries applied since the last snapshot hold this many
  /// bytes, and at least twice as many as the last snapshot held or the
  /// state would take now (Machine::approximate_snapshot_bytes) (0: no
  /// bound). Large entries (a placement or failover pass) are few: counted
  /// in entries, a fleet that keeps moving would keep growing its log in
  /// memory without a snapshot. The second half keeps a large state's
  /// snapshots in proportion (at most one snapshot byte written per two
  /// log bytes applied): at 1,000,000 ids of ~100 characters a snapshot is
  /// 230 MB and ~20 s of a core, and with a child alive every page the
  /// strand touches is copied on write, which slowed a mass failover past
  /// lease + 2 s (integration.scale_failover) at 1x.
  uint64_t snapshot_threshold_bytes = 0;
  /// Entries kept behind a snapshot the byte bound started (their bytes
  /// are what it is for): at most this many of snapshot_keep_entries.
  uint64_t snapshot_keep_entries_by_bytes = 100;
  uint64_t snapshot_keep_entries = 1000;  ///< entries kept behind a snapshot for slow followers
  uint32_t request_timeout_ms = 5000;
  /// Members' addresses from this member's config (they win over learned ones).
  std::map<NodeId, std::string> configured_addresses;
  /// First start: the initial voters; empty to join an existing group.
  std::vector<NodeId> bootstrap_voters;
  /// Proposals queued while a Ready's fsync runs (they join the next Ready):
  /// past either bound a proposal is refused with kBusy.
  size_t max_queued_proposals = 10000;
  size_t max_queued_proposal_bytes = size_t(32) << 20;
  /// The leader promotes a learner to voter once it has caught up (§4.2.1).
  bool promote_learners = true;
  /// A follower whose leader has been silent for more than 1.5 heartbeat
  /// intervals dials it (PeerSender::probe); if the leader's address refuses
  /// the connection, its process is gone and the follower campaigns without
  /// waiting out the election timeout (Raft::leader_unreachable).
  bool probe_silent_leader = true;
  /// A turn of the serial context applies a Ready's committed entries for
  /// at most this long (at least one entry); the rest follow in later turns,
  /// after the ticks and messages queued meanwhile. 0: all in one turn.
  uint32_t max_apply_ms_per_turn = 0;
  /// And at most this many entries (0: no bound); the simulator draws it,
  /// since its applies take no simulated time.
  size_t max_apply_entries_per_turn = 0;
  /// A leader answers a linearizable read at its commit index, without a
  /// heartbeat round, while its lease holds (thesis §6.4.1): for this long
  /// after it asked for a read index that a quorum then confirmed. Each
  /// member that confirmed refuses votes for an election timeout after it
  /// heard the round, (election_ticks - 1) ticks at least, so no other
  /// leader can be elected meanwhile; the lease must stay below that by
  /// the worst rate difference between two members' steady clocks. Sets
  /// raft.leader_lease; ignored without raft.check_quorum. The leader asks
  /// again once half the lease is gone. 0: every read waits for a round.
  uint32_t read_lease_ms = 0;
};

/// kTooLarge: the command exceeds the max entry size (413 too_large).
enum class NodeErrc { kNotLeader, kTimeout, kDropped, kBusy, kStopped, kInvalid, kTooLarge };

struct NodeError {
  NodeErrc code;
  std::string message;
  NodeId leader;  ///< the known leader for kNotLeader, may be empty
};

/// A proposal's outcome: null error once its entry applied (what the
/// machine returned is the machine's to hand out).
using EntryDone = std::function<void(const NodeError*)>;
/// A linearizable read's outcome: the machine is at `read_index` or past it.
using ReadIndexDone = std::function<void(const NodeError*, LogIndex read_index)>;

class RaftDriver {
 public:
  RaftDriver(DriverOptions options, Executor& executor, LogStore& store, PeerSender& peers, Machine& machine,
             DriverEvents& events);
  ~RaftDriver();
  RaftDriver(const RaftDriver&) = delete;
  RaftDriver& operator=(const RaftDriver&) = delete;

  /// Loads the stored state (or bootstraps); the first Ready follows (posted).
  void start();
  /// Fails every pending request with kStopped; nothing runs after it.
  void stop();
  bool running() const { return !stopped_; }

  /// One tick of the core's clock, then the leader's own tasks and the hooks.
  void tick();
  /// Proposes a command (leader only).
  void propose(std::string data, EntryDone done);
  /// A linearizable read (ReadIndex, thesis §6.4), at a leader or a
  /// follower; at a leader whose lease holds, at its commit index at once.
  void read(ReadIndexDone done);
  /// Peer traffic. Each message is checked against this member's state
  /// before the core acts on it; what fails is dropped and reported
  /// (nothing from the network reaches an assertion). A snapshot's data is
  /// decoded here, before the core may make it durable.
  void step(std::vector<consensus::Message> msgs);
  /// The transport's verdict on a snapshot it was asked to send.
  void report_snapshot(const NodeId& to, bool delivered);
  void add_member(const NodeId& id, const std::string& address, EntryDone done);
  void remove_member(const NodeId& id, EntryDone done);
  void transfer_leadership(const NodeId& to, EntryDone done);
  /// A graceful stop's first step: at the leader, hands leadership to the
  /// voter that has the most of the log among those that answer (§3.10,
  /// TimeoutNow), still serving meanwhile; done(true) once another member
  /// leads. done(false) at once when this member does not lead or leads
  /// alone, or after an election timeout without a new leader.
  void hand_over_leadership(std::function<void(bool moved)> done);
  /// Runs the Ready loop now (after code that worked on raft() directly).
  void process();
  /// Takes a snapshot as soon as none is in flight, whatever the thresholds
  /// say: the current one's file failed its checksum (PeerSender's report).
  void snapshot_now();

  const NodeId& id() const { return options_.raft.id; }
  bool started() const { return raft_ != nullptr; }
  consensus::Raft& raft() { return *raft_; }
  const consensus::Raft& raft() const { return *raft_; }
  const DriverOptions& options() const { return options_; }
  /// Where a member is reached: its configured address, else the one its
  /// membership change carried; empty if neither.
  std::string address_of(const NodeId& id) const;
  /// The index the machine has applied (the core's applied index moves only
  /// at advance(), after the Ready's entries are applied).
  LogIndex applied_index() const { return applied_; }
  /// A Ready is being made durable (the next one waits for it).
  bool persisting() const { return persisting_; }
  /// A Ready's entries are being applied over several turns (the next one waits for it).
  bool applying() const { return applying_ != nullptr; }

  /// After every tick at the leader (leases, failover, placement).
  void set_leader_tick_hook(std::function<void()> hook) { leader_tick_hook_ = std::move(hook); }
  /// After every tick, on every member.
  void set_every_tick_hook(std::function<void()> hook) { every_tick_hook_ = std::move(hook); }
  /// After a batch of committed entries was applied.
  void set_apply_hook(std::function<void()> hook) { apply_hook_ = std::move(hook); }

 private:
  struct PendingProposal {
    Term term;
    EntryDone done;
    uint64_t deadline_ms;
    uint64_t proposed_ns;
  };
  struct QueuedProposal {
    std::string data;
    EntryDone done;
    bool conf_change = false;
  };
  struct PendingRead {
    ReadIndexDone done;
    uint64_t deadline_ms;
    LogIndex index;  ///< set once the read index is known
    uint64_t asked_ns = 0;  ///< when the core was asked (a confirmed round began after it)
    Term asked_term;
  };
  struct HandOver {
    std::function<void(bool)> done;
    uint64_t deadline_ms = 0;
  };

  // raft_driver.cc: the loop.
  void schedule_process();
  bool handle_ready(consensus::Ready& rd);
  void continue_apply();
  /// After a Ready was advanced: the Ready loop, now or (entries to apply) in a later turn.
  void next_turn();
  void finish_ready(consensus::Ready& rd);
  void start_persist(consensus::Ready rd);
  void on_persisted(consensus::Ready& rd);
  /// How many of rd's committed entries this member already holds durably
  /// from earlier Readies (the leading ones up to the stable index, none
  /// past a membership change or with a snapshot): those may be applied
  /// while rd's own fsync runs.
  size_t durable_commits(const consensus::Ready& rd) const;
  void install_snapshot(const consensus::Snapshot& snap);
  /// Applies entries [from, end) (end: all of them), within this turn's
  /// budget; returns the index of the first one left for a later turn.
  size_t apply_entries(std::vector<consensus::Entry>& entries, size_t from, size_t end = SIZE_MAX);
  void complete(LogIndex index, Term term);
  void release_reads();
  // raft_driver_requests.cc: the read lease (DriverOptions::read_lease_ms).
  void ask_read_index(ReadIndexDone done);
  bool lease_holds() const;
  void extend_lease(const PendingRead& confirmed);
  void renew_lease();
  void maybe_snapshot();
  /// The applied index at which a snapshot by entry count is due.
  LogIndex next_snapshot_by_entries() const;
  void record_snapshot();
  void expire_requests();
  void fail_all(NodeErrc code, const std::string& message);

  // raft_driver_requests.cc: what comes in.
  void enqueue(QueuedProposal q);
  void flush_proposals();
  void step_one(consensus::Message& m);
  bool known_sender(const consensus::Message& m) const;
  void apply_conf_change(const consensus::Entry& e);
  void maybe_promote_learners();
  void maybe_probe_leader();
  void check_hand_over();
  /// Logs a role change a tick made (an election timeout, check quorum).
  void log_timeout(consensus::Role before, int silent_ticks, const NodeId& leader);
  NodeError not_leader() const;
  bool refuse_if_not_leader(EntryDone& done);

  DriverOptions options_;
  Executor& executor_;
  LogStore& store_;
  PeerSender& peers_;
  Machine& machine_;
  DriverEvents& events_;
  std::unique_ptr<consensus::Raft> raft_;
  LogIndex applied_;  ///< see applied_index()
  bool stopped_ = true;  ///< until start(), and again after stop()
  bool process_scheduled_ = false;
  bool persisting_ = false;  ///< a Ready is being persisted: no ready() until it is advanced
  /// A Ready whose committed entries are applied over several turns (no
  /// ready() until it is advanced), and the first of them not applied yet.
  std::shared_ptr<consensus::Ready> applying_;
  size_t apply_next_ = 0;
  /// Of the Ready being persisted: its committed entries already applied
  /// while its fsync ran (start_persist); handle_ready() goes on from there.
  size_t applied_early_ = 0;
  bool probe_in_flight_ = false;  ///< maybe_probe_leader: one dial of a silent leader at a time
  int ticks_since_probe_ = 0;

  /// Snapshots from the leader, decoded when they arrived, by index, until
  /// the Ready that installs them.
  std::map<LogIndex, std::unique_ptr<StagedState>> staged_snapshots_;
  std::vector<QueuedProposal> queued_;
  QueueBound queued_bound_{options_.max_queued_proposals, options_.max_queued_proposal_bytes};
  std::map<LogIndex, PendingProposal> pending_;
  std::map<uint64_t, PendingRead> reads_;  ///< by request id
  uint64_t lease_until_ns_ = 0;  ///< the read lease's end, in lease_term_ only
  Term lease_term_;
  bool lease_renewal_asked_ = false;
  uint64_t next_read_id_ = 1;
  std::map<NodeId, std::string> learned_addresses_;
  std::function<void()> leader_tick_hook_;
  std::function<void()> every_tick_hook_;
  std::function<void()> apply_hook_;

  /// A local snapshot being made off the serial context, and its result
  /// until the core can take it (not while a Ready is out).
  bool snapshot_in_flight_ = false;
  bool snapshot_forced_ = false;  ///< snapshot_now(): the next maybe_snapshot() starts one
  uint64_t applied_bytes_ = 0;         ///< payload applied since the last snapshot's point
  uint64_t snapshot_start_bytes_ = 0;  ///< applied_bytes_ when the snapshot in flight began
  uint64_t last_snapshot_bytes_ = 0;   ///< the size of the last snapshot taken or installed
  uint64_t snapshot_keep_ = 0;         ///< entries the snapshot in flight keeps behind it
  std::optional<MadeSnapshot> made_snapshot_;
  uint64_t snapshot_retry_ms_ = 0;  ///< after a failed attempt, not before this steady time
  std::optional<HandOver> hand_over_;
};

}  // namespace tenure::replication
