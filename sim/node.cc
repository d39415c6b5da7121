#include "sim/node.h"

#include <cstdio>
#include <cstdlib>

namespace tenure::sim {

using consensus::EntryType;

namespace {
/// A leader's snapshot decoded aside until the Ready that installs it.
struct StagedMachine final : replication::StagedState {
  std::unique_ptr<StateMachine> sm;
};
}  // namespace

Node::Node(NodeId id, Settings s, StateMachineFactory sm, NodeHooks& hooks)
    : id_(std::move(id)), settings_(std::move(s)), make_sm_(std::move(sm)), hooks_(hooks) {
  settings_.raft.id = id_;
}

Node::~Node() = default;

void Node::start(uint64_t random_seed) {
  if (decommissioned_) return;
  replication::DriverOptions o;
  o.raft = settings_.raft;
  o.raft.random_seed = random_seed;
  o.tick_ms = static_cast<uint32_t>(std::max<int64_t>(1, settings_.tick_us / 1000));
  o.snapshot_threshold_entries = static_cast<uint64_t>(settings_.compact_every);
  o.snapshot_keep_entries = static_cast<uint64_t>(settings_.keep_entries);
  o.stagger_snapshots = true;  // as the controller
  o.configured_addresses = settings_.configured_addresses;
  o.promote_learners = settings_.promote_learners;
  o.probe_silent_leader = settings_.probe_leader;
  o.max_apply_entries_per_turn = settings_.apply_entries_per_turn;
  o.read_lease_ms = settings_.read_lease_ms;
  sm_ = make_sm_();
  persist_free_at_ = 0;
  // The conversions to the private bases happen here, where they are allowed.
  replication::Executor& executor = *this;
  replication::LogStore& log = *this;
  replication::PeerSender& peers = *this;
  replication::Machine& machine = *this;
  replication::DriverEvents& events = *this;
  driver_ = std::make_unique<replication::RaftDriver>(std::move(o), executor, log, peers, machine, events);
  driver_->start();
  applied_ = recovered_.snapshot.index;
  hooks_.on_started(*this, recovered_);
}

void Node::crash() {
  if (!up()) return;
  driver_.reset();
  sm_.reset();
  prev_terms_.clear();
  made_files_.clear();
  acked_.clear();
  ack_terms_.clear();
  torn_ = torn_now_ = CrashPoint::kNone;
  ++incarnation_;
  hooks_.on_crashed(*this);
}

void Node::decommission() {
  decommissioned_ = true;
  crash();
}

void Node::tick() { driver_->tick(); }

std::optional<std::string> Node::step(Message m) {
  last_drop_.reset();
  std::vector<Message> one;
  one.push_back(std::move(m));
  driver_->step(std::move(one));
  return last_drop_;
}

void Node::report_snapshot(const NodeId& to, bool delivered) { driver_->report_snapshot(to, delivered); }

void Node::handle(const ClientRequest& r) {
  if (r.write) {
    std::string data = r.command.empty() ? KvRegister::encode_put(r.key, r.value) : r.command;
    driver_->propose(std::move(data), [this, r](const replication::NodeError* err) {
      if (err) return reply_error(r, *err);
      ClientReply ok;
      ok.client = r.client;
      ok.attempt = r.attempt;
      ok.kind = ReplyKind::kOk;
      ok.server = id_;
      ok.index = last_applied_.first;
      ok.term = last_applied_.second;
      hooks_.on_reply(*this, std::move(ok));
    });
    return;
  }
  driver_->read([this, r](const replication::NodeError* err, LogIndex read_index) {
    if (err) return reply_error(r, *err);
    ClientReply ok;
    ok.client = r.client;
    ok.attempt = r.attempt;
    ok.kind = ReplyKind::kOk;
    ok.server = id_;
    ok.read_index = read_index;
    ok.served_index = applied();
    ok.value = sm_->query(r.key);
    hooks_.on_reply(*this, std::move(ok));
  });
}

// ---- The executor: events of the simulator's queue ----

void Node::post(std::function<void()> fn) {
  // From the persist thread (a fsync's completion) the result crosses
  // threads and may wait behind other work; on the serial context itself
  // (the driver's own schedule_process) it runs next.
  if (in_persist_job_ && torn_now_ == CrashPoint::kAfterPersist) {
    // Durable, but the member dies before its messages leave.
    torn_now_ = CrashPoint::kNone;
    hooks_.schedule(*this, 0, [this] { crash(); });
    return;
  }
  hooks_.schedule(*this, in_persist_job_ ? hooks_.handoff_us(*this) : 0, std::move(fn));
}

void Node::persist(std::function<void()> job) {
  if (torn_now_ == CrashPoint::kBeforePersist) {
    // Its early messages left; the member dies before the fsync.
    torn_now_ = CrashPoint::kNone;
    hooks_.schedule(*this, 0, [this] { crash(); });
    return;
  }
  // Jobs run one at a time, in order, as on the persist thread.
  int64_t now = hooks_.now_us();
  int64_t at = std::max(now + hooks_.fsync_us(*this), persist_free_at_);
  persist_free_at_ = at;
  hooks_.schedule(*this, at - now, [this, job = std::move(job)] {
    in_persist_job_ = true;
    job();
    in_persist_job_ = false;
  });
}

// ---- The store ----

void Node::persist(const consensus::Ready& rd) {
  HardState before = store_.hard_state();
  Term prev_term;
  if (!prev_terms_.empty()) {
    prev_term = prev_terms_.front();
    prev_terms_.pop_front();
  }
  auto error = store_.persist(rd);
  hooks_.on_persisted(*this, rd, before, prev_term, error);
}

void Node::fatal(const std::string& what) {
  std::fprintf(stderr, "FATAL sim node=%s %s\n", id_.str().c_str(), what.c_str());
  std::abort();
}

// ---- The network ----

std::shared_ptr<const std::string> Node::snapshot_bytes(const consensus::Snapshot& s) {
  // Files older than the recorded snapshot are removed (storage/snapshot_file.h).
  made_files_.erase(made_files_.begin(), made_files_.lower_bound(store_.snapshot().index));
  const Snapshot& stored = store_.snapshot();
  if (stored.index == s.index && stored.term == s.term && stored.data) return stored.data;
  auto it = made_files_.find(s.index);
  return it != made_files_.end() && it->second.term == s.term ? it->second.data : nullptr;
}

void Node::send(std::vector<Message> msgs) {
  for (auto& m : msgs) {
    std::optional<Term> acked;
    if (m.type == consensus::MessageType::kAppendResponse && !acked_.empty()) {
      acked = acked_.front();
      acked_.pop_front();
    }
    // The core forgets a snapshot's bytes once they are stored; the
    // controller's transport reads them from the snapshot's file, this one
    // from the store. Still none: the simulator fails the send, as the
    // transport does when a newer snapshot replaced the file.
    if (m.type == consensus::MessageType::kSnapshot && m.snapshot && !m.snapshot->data) {
      m.snapshot->data = snapshot_bytes(*m.snapshot);
    }
    hooks_.on_send(*this, std::move(m), false, acked);
  }
}

// ---- The machine ----

std::unique_ptr<replication::StagedState> Node::stage(const std::string& data) {
  auto staged = std::make_unique<StagedMachine>();
  staged->sm = make_sm_();
  if (!staged->sm->restore(data)) return nullptr;
  return staged;
}

void Node::install(std::unique_ptr<replication::StagedState> staged) {
  sm_ = std::move(static_cast<StagedMachine&>(*staged).sm);
}

void Node::make_snapshot(consensus::Snapshot point, std::function<void(replication::MadeSnapshot)> done) {
  // The controller's child encodes a copy-on-write image of this moment;
  // here the encoding is now and the result comes back later.
  replication::MadeSnapshot made;
  made.snapshot = std::move(point);
  made.snapshot.data = std::make_shared<const std::string>(sm_->snapshot());
  hooks_.schedule(*this, hooks_.handoff_us(*this), [this, done = std::move(done), made = std::move(made)] {
    made_files_[made.snapshot.index] = made.snapshot;
    done(made);
  });
}

// ---- Events: what the checkers need ----

void Node::dropped(const char* reason, const NodeId&, const char*, const std::string&) { last_drop_ = reason; }

void Node::stepped(const Message& m, size_t entries, const Raft& raft) {
  // An ack of this append names the entry our log holds at its last index
  // right after the step. The ack may wait in the core for the next Ready
  // while a newer leader replaces that entry (81022f1): the checker must
  // judge the ack by the entry it named, not by its successor.
  if (m.type != consensus::MessageType::kAppend) return;
  LogIndex last = m.index.plus(entries);
  if (auto t = raft.log().term(last)) ack_terms_[{m.from, m.term, last}] = *t;
}

std::optional<Term> Node::acked_term(const Message& m, const Raft& raft) const {
  if (m.type != consensus::MessageType::kAppendResponse) return std::nullopt;
  auto it = ack_terms_.find({m.to, m.term, m.index});
  if (it != ack_terms_.end()) return it->second;
  return raft.log().term(m.index);
}

void Node::ready(const consensus::Ready& rd, const Raft& raft) {
  // Log matching needs the term before the first new entry as the log was
  // when the Ready was cut (the log moves on while it is persisted).
  if (rd.must_sync()) {
    Term prev;
    if (!rd.entries.empty()) prev = raft.log().term(rd.entries.front().index.prev()).value_or(Term(0));
    prev_terms_.push_back(prev);
    if (torn_ != CrashPoint::kNone) {
      torn_now_ = torn_;
      torn_ = CrashPoint::kNone;
    }
  }
  // Acknowledgements leave in the order they were cut (a leader's early
  // messages may also leave between Readies, but those never acknowledge).
  for (const auto* msgs : {&rd.early_messages, &rd.messages}) {
    for (const auto& m : *msgs) {
      if (m.type == consensus::MessageType::kAppendResponse) acked_.push_back(acked_term(m, raft));
    }
  }
  ack_terms_.clear();  // every ack made so far is in this Ready
}

void Node::applied(const consensus::Entry& e) {
  last_applied_ = {e.index, e.term};
  applied_ = e.index;
  hooks_.on_applied(*this, e);
}

void Node::reply_error(const ClientRequest& r, const replication::NodeError& err) {
  if (err.code == replication::NodeErrc::kNotLeader) return reply(r, ReplyKind::kNotLeader, err.leader);
  reply(r, ReplyKind::kRetry);
}

void Node::reply(const ClientRequest& req, ReplyKind kind, NodeId hint) {
  ClientReply r;
  r.client = req.client;
  r.attempt = req.attempt;
  r.kind = kind;
  r.server = id_;
  r.hint = std::move(hint);
  hooks_.on_reply(*this, std::move(r));
}

}  // namespace tenure::sim
