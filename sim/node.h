#pragma once
// One simulated member: the production Raft driver (replication/raft_driver.h,
// the loop the controller runs) with the real core, plugged into the
// simulation: its serial context and its persist context are events of the
// simulator's queue (the persist step and its completion are events of
// their own, so every interleaving the controller's threads allow can be
// drawn), its log is a DurableStore that keeps only what was synced, its
// peers are the simulated network and its clock runs at the member's
// skewed rate. A crash loses the driver, the core, the state machine and
// whatever was not yet persisted, and can be armed to strike inside a
// Ready: after its early messages left but before the fsync, or after the
// fsync but before the other messages left.

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "consensus/raft.h"
#include "replication/raft_driver.h"
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
  kRetry,      ///< refused or lost for now (busy, transfer, leader change), or outcome unknown
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
  /// Runs `fn` after `delay_us` as an event of its own, unless the member
  /// crashed meanwhile; the simulator observes the member after it.
  virtual void schedule(Node& n, int64_t delay_us, std::function<void()> fn) = 0;
  /// How long a Ready's fsync takes, and how long a result takes to come
  /// back to the serial context from the persist thread or a snapshot's
  /// child (drawn per run and call).
  virtual int64_t fsync_us(Node& n) = 0;
  virtual int64_t handoff_us(Node& n) = 0;
  /// The member's steady clock (it runs at the member's skewed tick rate).
  virtual uint64_t steady_ns(const Node& n) const = 0;
  /// The simulation's time (the event queue's).
  virtual int64_t now_us() const = 0;
  /// Whether the member's last exchange with `peer` went through.
  virtual bool link_healthy(const Node& n, const NodeId& peer) const = 0;
  /// A connection from the member to `peer` (PeerSender::probe): `done(true)`
  /// iff it was refused, i.e. the peer was down and the links both ways up.
  /// Not called if the member crashed meanwhile.
  virtual void probe(Node& n, const NodeId& peer, std::function<void(bool)> done) = 0;
  virtual void on_applied(Node& n, const Entry& e) = 0;
  virtual void on_restored(Node& n, const Snapshot& s) = 0;
  /// The core read released payloads back from the durable store.
  virtual void on_read_back(Node& n, const std::vector<Entry>& entries) = 0;
  /// A linearizable read began on the leader's lease (DriverOptions::read_lease_ms).
  virtual void on_lease_read(Node& n) = 0;
  /// The member (re)started from `recovered`.
  virtual void on_started(Node& n, const InitialState& recovered) = 0;
  virtual void on_reply(Node& n, ClientReply r) = 0;
  virtual void on_crashed(Node& n) = 0;
};

using StateMachineFactory = std::function<std::unique_ptr<StateMachine>()>;

class Node final : private replication::Executor,
                   private replication::LogStore,
                   private replication::PeerSender,
                   private replication::Machine,
                   private replication::DriverEvents {
 public:
  struct Settings {
    RaftConfig raft;
    int64_t tick_us = 0;      ///< this member's tick interval (clock skew)
    int compact_every = 100;  ///< applied entries between snapshots
    int keep_entries = 5;     ///< entries kept before a snapshot
    /// The leader promotes caught-up learners itself (the controller's
    /// behaviour); otherwise only the simulator's churn promotes them.
    bool promote_learners = false;
    bool probe_leader = true;  ///< DriverOptions::probe_silent_leader
    size_t apply_entries_per_turn = 0;  ///< DriverOptions::max_apply_entries_per_turn
    uint32_t read_lease_ms = 0;         ///< DriverOptions::read_lease_ms
    /// Members' addresses as a config would list them (the initial voters).
    std::map<NodeId, std::string> configured_addresses;
  };
  Node(NodeId id, Settings s, StateMachineFactory sm, NodeHooks& hooks);
  ~Node() override;

  const NodeId& id() const { return id_; }
  bool up() const { return driver_ != nullptr; }
  /// Changes at every crash: timers of an earlier life check it.
  uint64_t incarnation() const { return incarnation_; }
  int64_t tick_us() const { return settings_.tick_us; }
  bool decommissioned() const { return decommissioned_; }
  Raft& raft() { return driver_->raft(); }
  const Raft& raft() const { return driver_->raft(); }
  DurableStore& store() { return store_; }
  const DurableStore& store() const { return store_; }
  const StateMachine& state_machine() const { return *sm_; }
  /// The machine's applied index (of the last life, while down).
  LogIndex applied() const { return applied_; }

  /// (Re)starts from the durable store; `random_seed` seeds the new Raft.
  void start(uint64_t random_seed);
  /// Loses everything not durable. Replies to no pending client request.
  void crash();
  /// Removed from the group: down for good.
  void decommission();
  /// The next Ready that must be persisted crashes the member at `p`;
  /// kNone disarms, also a crash whose Ready is already being persisted.
  void arm_torn_crash(CrashPoint p) {
    torn_ = p;
    if (p == CrashPoint::kNone) torn_now_ = p;
  }
  /// A Ready is being made durable.
  bool fsync_in_flight() const { return driver_ && driver_->persisting(); }

  // Inputs, as the controller's transport and API hand them to the driver.
  void tick();
  /// Steps a delivered message; returns why it was refused (a drop reason
  /// label: the core's, or the driver's unknown_sender / bad_snapshot_data).
  std::optional<std::string> step(Message m);
  void report_snapshot(const NodeId& to, bool delivered);
  void handle(const ClientRequest& r);
  /// Runs `f` on the Raft core, then the driver's Ready loop.
  template <typename F>
  auto with_raft(F f) {
    auto result = f(driver_->raft());
    driver_->process();
    return result;
  }

 private:
  // replication::Executor
  void post(std::function<void()> fn) override;
  void persist(std::function<void()> job) override;
  uint64_t now_ms() const override { return hooks_.steady_ns(*this) / 1000000; }
  uint64_t now_ns() const override { return hooks_.steady_ns(*this); }
  // replication::LogStore over store_
  bool empty() const override { return false; }  // set_initial() made it what a config would
  consensus::InitialState load() override { return recovered_ = store_.initial_state(); }
  void bootstrap(const consensus::InitialState&) override {}
  void persist(const consensus::Ready& rd) override;
  void save_snapshot(const consensus::Snapshot& snap, LogIndex compact_to) override { store_.compact(snap, compact_to); }
  std::vector<Entry> read_entries(LogIndex lo, LogIndex hi, size_t max_bytes, size_t overhead_bytes) override {
    auto out = store_.read(lo, hi, max_bytes, overhead_bytes);
    hooks_.on_read_back(*this, out);
    return out;
  }
  [[noreturn]] void fatal(const std::string& what) override;
  // replication::PeerSender: the simulated network
  void send(std::vector<Message> msgs) override;
  void set_peer_address(const NodeId&, const std::string&) override {}
  bool peer_healthy(const NodeId& peer) const override { return hooks_.link_healthy(*this, peer); }
  void probe(const NodeId& peer, std::function<void(bool)> done) override { hooks_.probe(*this, peer, std::move(done)); }
  // replication::Machine over sm_
  bool restore(const std::string& data) override { return sm_->restore(data); }
  std::unique_ptr<replication::StagedState> stage(const std::string& data) override;
  void install(std::unique_ptr<replication::StagedState> staged) override;
  void apply(const consensus::Entry& e) override { sm_->apply(e.index, e.data); }
  void make_snapshot(consensus::Snapshot point, std::function<void(replication::MadeSnapshot)> done) override;
  // replication::DriverEvents: what the checkers need
  void dropped(const char* reason, const NodeId& from, const char* type, const std::string& detail) override;
  void stepped(const Message& m, size_t entries, const Raft& raft) override;
  void ready(const consensus::Ready& rd, const Raft& raft) override;
  void applied(const consensus::Entry& e) override;
  void read_started(const char* path) override {
    if (std::string_view(path) == "lease") hooks_.on_lease_read(*this);
  }
  void snapshot_installed(const consensus::Snapshot& s) override {
    applied_ = s.index;
    hooks_.on_restored(*this, s);
  }

  std::optional<Term> acked_term(const Message& m, const Raft& raft) const;
  void reply(const ClientRequest& r, ReplyKind kind, NodeId hint = NodeId());
  void reply_error(const ClientRequest& r, const replication::NodeError& err);

  NodeId id_;
  Settings settings_;
  StateMachineFactory make_sm_;
  NodeHooks& hooks_;
  DurableStore store_;
  std::unique_ptr<StateMachine> sm_;
  std::unique_ptr<replication::RaftDriver> driver_;
  InitialState recovered_;
  uint64_t incarnation_ = 0;
  bool decommissioned_ = false;
  CrashPoint torn_ = CrashPoint::kNone;
  /// The next persist job is a Ready's that the armed torn crash strikes.
  CrashPoint torn_now_ = CrashPoint::kNone;
  bool in_persist_job_ = false;
  int64_t persist_free_at_ = 0;  ///< persist jobs run in order: not before this time
  /// Durable Readies cut and not yet persisted: the log's term before their
  /// first entry when cut (log matching), in order.
  std::deque<Term> prev_terms_;
  /// Snapshots this member made, as their files would be: durable before
  /// the core records them, and what a snapshot message is sent from until
  /// the store's row names one at least as new (PeerSender). A restart
  /// forgets them, as the controller removes unrecorded files at open.
  std::map<LogIndex, consensus::Snapshot> made_files_;
  std::shared_ptr<const std::string> snapshot_bytes(const consensus::Snapshot& s);
  std::deque<std::optional<Term>> acked_;  ///< of every AppendResponse cut and not yet sent, in send order
  /// The term each ack made since the last Ready was cut names, by (to,
  /// term, index): the log may change before the cut.
  std::map<std::tuple<NodeId, Term, LogIndex>, Term> ack_terms_;
  std::optional<std::string> last_drop_;
  std::pair<LogIndex, Term> last_applied_;  ///< the entry whose proposer hears next
  LogIndex applied_;
};

}  // namespace tenure::sim
