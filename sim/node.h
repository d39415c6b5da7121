#pragma once
// One simulated member: the real Raft core, a durable store and a state
// machine, driven exactly as the controller drives them (persist -> send ->
// apply -> advance, early messages before the fsync). A crash loses the Raft
// object, the state machine and whatever was not yet persisted, and can be
// armed to strike inside a Ready: after its early messages left but before
// the fsync, or after the fsync but before the other messages left.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>

#include "consensus/raft.h"
#include "sim/durable_store.h"
#include "sim/state_machine.h"

namespace tenure::sim {

using consensus::Message;
using consensus::NodeId;
using consensus::Raft;
using consensus::RaftConfig;

enum class CrashPoint : uint8_t { kNone, kBeforePersist, kAfterPersist };

/// A client's request as it reaches a member.
struct ClientRequest {
  int client = 0;
  uint64_t attempt = 0;  ///< unique per attempt within a run
  bool write = false;
  std::string key;
  std::string value;  ///< writes only
  /// Fleet mode: a write of this command as is (instead of a put of key and value).
  std::string command;
};

enum class ReplyKind : uint8_t {
  kOk,
  kNotLeader,  ///< `hint` names the leader the member knows of, may be empty
  kRetry,      ///< refused or lost for now (busy, transfer, leader change)
};

struct ClientReply {
  int client = 0;
  uint64_t attempt = 0;
  ReplyKind kind = ReplyKind::kRetry;
  NodeId server;
  NodeId hint;
  LogIndex index;         ///< writes: where the write committed
  Term term;              ///< writes: its term
  LogIndex read_index;    ///< reads
  LogIndex served_index;  ///< reads: the applied index the value was read at
  std::string value;      ///< reads
};

class Node;

/// What a member reports to the simulator as it processes its Ready batches.
/// Called synchronously, in the order of the Ready contract.
class NodeHooks {
 public:
  virtual ~NodeHooks() = default;
  /// A message leaves; `early` when it left before its Ready was persisted.
  /// `acked_term`: for an AppendResponse, the term of the acknowledged entry
  /// in this member's log when the ack was made (right after the step of the
  /// append it answers; otherwise when its Ready was cut).
  virtual void on_send(Node& from, Message m, bool early, std::optional<Term> acked_term) = 0;
  /// A Ready's durable parts were written; `before` is the previous hard
  /// state, `contract_error` set when the Ready could not be stored as given.
  virtual void on_persisted(Node& n, const Ready& rd, const HardState& before, Term prev_term,
                            const std::optional<std::string>& contract_error) = 0;
  /// (Async fsync mode) a Ready's fsync began; the simulator calls
  /// Node::finish_fsync() when it completes, unless the member crashed.
  virtual void on_fsync_started(Node& n) = 0;
  virtual void on_applied(Node& n, const Entry& e) = 0;
  virtual void on_restored(Node& n, const Snapshot& s) = 0;
  /// The member (re)started from `recovered`.
  virtual void on_started(Node& n, const InitialState& recovered) = 0;
  virtual void on_reply(Node& n, ClientReply r) = 0;
  virtual void on_crashed(Node& n) = 0;
};

using StateMachineFactory = std::function<std::unique_ptr<StateMachine>()>;

class Node {
 public:
  struct Settings {
    RaftConfig raft;
    int64_t tick_us = 0;      ///< this member's tick interval (clock skew)
    int compact_every = 100;  ///< applied entries between snapshots
    int keep_entries = 5;     ///< entries kept before a snapshot
    /// The fsync of a Ready takes time, and the member keeps ticking,
    /// stepping messages and taking requests meanwhile (allowed by the Raft
    /// core, as by etcd-io/raft's RawNode); otherwise a Ready is processed
    /// at once, as the controller's driver does.
    bool async_fsync = false;
    /// A Ready that needs no fsync (it only moves the commit index) is not
    /// persisted at all, as the controller's driver does (bf9b302).
    bool skip_unsynced = false;
  };
  Node(NodeId id, Settings s, StateMachineFactory sm, NodeHooks& hooks);

  const NodeId& id() const { return id_; }
  bool up() const { return raft_ != nullptr; }
  /// Changes at every crash: timers of an earlier life check it.
  uint64_t incarnation() const { return incarnation_; }
  int64_t tick_us() const { return settings_.tick_us; }
  bool decommissioned() const { return decommissioned_; }
  Raft& raft() { return *raft_; }
  const Raft& raft() const { return *raft_; }
  DurableStore& store() { return store_; }
  const DurableStore& store() const { return store_; }
  const StateMachine& state_machine() const { return *sm_; }
  LogIndex applied() const { return applied_; }

  /// (Re)starts from the durable store; `random_seed` seeds the new Raft.
  void start(uint64_t random_seed);
  /// Loses everything not durable. Replies to no pending client request.
  void crash();
  /// Removed from the group: down for good.
  void decommission();
  /// The next Ready that must be persisted crashes the member at `p`.
  void arm_torn_crash(CrashPoint p) { torn_ = p; }
  /// (Async fsync mode) the fsync of the outstanding Ready completed.
  void finish_fsync();
  bool fsync_in_flight() const { return pending_.has_value(); }

  // Inputs; each processes the resulting Ready batches at once.
  void tick();
  /// Steps a delivered message; returns the reason when the core refused it.
  std::optional<consensus::DropReason> step(Message m);
  void report_snapshot(const NodeId& to, bool delivered);
  void handle(const ClientRequest& r);
  /// Runs `f` on the Raft core, then processes the resulting Ready batches.
  template <typename F>
  auto with_raft(F f) {
    auto result = f(*raft_);
    drain();
    return result;
  }

 private:
  struct PendingRead {
    ClientRequest request;
    LogIndex read_index;
  };
  void drain();
  bool begin_ready();
  bool finish_ready(Ready rd, Term prev_term, std::vector<std::optional<Term>> acked);
  std::optional<Term> acked_term(const Message& m) const;
  void restore(const Snapshot& s);
  void apply(const Entry& e);
  void serve_reads();
  void maybe_compact();
  void reply(const ClientRequest& r, ReplyKind kind, NodeId hint = NodeId());

  NodeId id_;
  Settings settings_;
  StateMachineFactory make_sm_;
  NodeHooks& hooks_;
  DurableStore store_;
  std::unique_ptr<Raft> raft_;
  std::unique_ptr<StateMachine> sm_;
  LogIndex applied_;
  uint64_t incarnation_ = 0;
  bool decommissioned_ = false;
  CrashPoint torn_ = CrashPoint::kNone;
  std::optional<Ready> pending_;  ///< async fsync mode: the Ready being persisted
  Term pending_prev_term_;        ///< the log's term before pending_->entries at ready()
  std::vector<std::optional<Term>> pending_acked_;  ///< acked_term of each of pending_->messages
  /// The term each ack made since the last Ready was cut names, by (to,
  /// term, index): in async mode the log may change before the cut.
  std::map<std::tuple<NodeId, Term, LogIndex>, Term> ack_terms_;

  uint64_t next_read_id_ = 0;
  std::multimap<LogIndex, std::pair<ClientRequest, Term>> writes_;  ///< by proposal index
  std::map<uint64_t, ClientRequest> reads_;                         ///< awaiting their read index
  std::multimap<LogIndex, PendingRead> waiting_reads_;              ///< awaiting apply
};

}  // namespace tenure::sim
