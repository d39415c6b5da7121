#include "sim/node.h"

namespace tenure::sim {

using consensus::EntryType;
using consensus::RaftError;

Node::Node(NodeId id, Settings s, StateMachineFactory sm, NodeHooks& hooks)
    : id_(std::move(id)), settings_(std::move(s)), make_sm_(std::move(sm)), hooks_(hooks) {
  settings_.raft.id = id_;
}

void Node::start(uint64_t random_seed) {
  if (decommissioned_) return;
  RaftConfig cfg = settings_.raft;
  cfg.random_seed = random_seed;
  InitialState recovered = store_.initial_state();
  raft_ = std::make_unique<Raft>(cfg, recovered);
  sm_ = make_sm_();
  applied_ = recovered.snapshot.index;
  if (!recovered.snapshot.empty() && recovered.snapshot.data) sm_->restore(*recovered.snapshot.data);
  // Read ids of different lives never collide: answers meant for an earlier
  // life are ignored.
  next_read_id_ = incarnation_ << 32;
  hooks_.on_started(*this, recovered);
  drain();
}

void Node::crash() {
  if (!up()) return;
  raft_.reset();
  sm_.reset();
  writes_.clear();
  reads_.clear();
  waiting_reads_.clear();
  pending_.reset();
  ack_terms_.clear();
  torn_ = CrashPoint::kNone;
  ++incarnation_;
  hooks_.on_crashed(*this);
}

void Node::decommission() {
  decommissioned_ = true;
  crash();
}

void Node::tick() {
  raft_->tick();
  drain();
}

std::optional<consensus::DropReason> Node::step(Message m) {
  // An ack of this append names the entry our log holds at its last index
  // right after the step. In async mode the ack may wait in the core for the
  // next Ready while a newer leader replaces that entry (81022f1): the
  // checker must judge the ack by the entry it named, not by its successor.
  bool append = m.type == consensus::MessageType::kAppend;
  std::tuple<NodeId, Term, LogIndex> key{m.from, m.term, m.index.plus(m.entries.size())};
  auto dropped = raft_->step(std::move(m));
  if (append && !dropped) {
    if (auto t = raft_->log().term(std::get<2>(key))) ack_terms_[key] = *t;
  }
  drain();
  return dropped;
}

void Node::report_snapshot(const NodeId& to, bool delivered) {
  raft_->report_snapshot(to, delivered);
  drain();
}

void Node::handle(const ClientRequest& r) {
  if (r.write) {
    auto res = raft_->propose(r.command.empty() ? KvRegister::encode_put(r.key, r.value) : r.command);
    if (res.ok()) {
      writes_.emplace(res.value().index, std::make_pair(r, res.value().term));
    } else if (res.code() == RaftError::kNotLeader) {
      reply(r, ReplyKind::kNotLeader, NodeId(res.error().message));
    } else {
      reply(r, ReplyKind::kRetry);
    }
  } else {
    uint64_t rid = ++next_read_id_;
    auto res = raft_->read_index(rid);
    if (res.ok()) {
      reads_.emplace(rid, r);
    } else {
      reply(r, ReplyKind::kNotLeader, raft_->leader());
    }
  }
  drain();
}

void Node::drain() {
  while (up() && !pending_ && raft_->has_ready()) {
    if (!begin_ready()) return;
  }
}

bool Node::begin_ready() {
  Ready rd = raft_->ready();
  // Log matching needs the term before the first new entry as the log was
  // when the Ready was cut (in async mode the log moves on meanwhile).
  Term prev_term;
  if (!rd.entries.empty()) prev_term = raft_->log().term(rd.entries.front().index.prev()).value_or(Term(0));
  std::vector<std::optional<Term>> acked;
  for (const auto& m : rd.messages) acked.push_back(acked_term(m));
  // A leader's own appends may leave before its fsync (§10.2.1).
  for (auto& m : rd.early_messages) {
    auto t = acked_term(m);
    hooks_.on_send(*this, std::move(m), true, t);
  }
  ack_terms_.clear();  // every ack made so far is in this Ready
  rd.early_messages.clear();
  bool sync = rd.must_sync();
  if (sync && torn_ == CrashPoint::kBeforePersist) {
    crash();
    return false;
  }
  if (sync && settings_.async_fsync) {
    pending_ = std::move(rd);
    pending_prev_term_ = prev_term;
    pending_acked_ = std::move(acked);
    hooks_.on_fsync_started(*this);
    return false;
  }
  return finish_ready(std::move(rd), prev_term, std::move(acked));
}

std::optional<Term> Node::acked_term(const Message& m) const {
  if (m.type != consensus::MessageType::kAppendResponse) return std::nullopt;
  auto it = ack_terms_.find({m.to, m.term, m.index});
  if (it != ack_terms_.end()) return it->second;
  return raft_->log().term(m.index);
}

void Node::finish_fsync() {
  if (!up() || !pending_) return;
  Ready rd = std::move(*pending_);
  pending_.reset();
  if (finish_ready(std::move(rd), pending_prev_term_, std::move(pending_acked_))) drain();
}

bool Node::finish_ready(Ready rd, Term prev_term, std::vector<std::optional<Term>> acked) {
  bool sync = rd.must_sync();
  HardState before = store_.hard_state();
  bool stored = sync || !settings_.skip_unsynced;
  auto error = store_.persist(rd, stored);
  if (stored) hooks_.on_persisted(*this, rd, before, prev_term, error);
  if (sync && torn_ == CrashPoint::kAfterPersist) {
    crash();
    return false;
  }
  for (size_t k = 0; k < rd.messages.size(); ++k) hooks_.on_send(*this, std::move(rd.messages[k]), false, acked[k]);
  if (rd.snapshot) restore(*rd.snapshot);
  for (const auto& e : rd.committed_entries) apply(e);
  for (const auto& rs : rd.read_states) {
    auto it = reads_.find(rs.request_id);
    if (it == reads_.end()) continue;  // a duplicate answer, or one for an earlier life
    waiting_reads_.emplace(rs.index, PendingRead{std::move(it->second), rs.index});
    reads_.erase(it);
  }
  for (uint64_t id : rd.dropped_reads) {
    auto it = reads_.find(id);
    if (it == reads_.end()) continue;
    reply(it->second, ReplyKind::kRetry);
    reads_.erase(it);
  }
  raft_->advance();
  serve_reads();
  maybe_compact();
  return true;
}

void Node::restore(const Snapshot& s) {
  sm_ = make_sm_();
  if (s.data) sm_->restore(*s.data);
  applied_ = s.index;
  // Proposals the snapshot jumped over have an unknown fate here.
  while (!writes_.empty() && writes_.begin()->first <= s.index) {
    reply(writes_.begin()->second.first, ReplyKind::kRetry);
    writes_.erase(writes_.begin());
  }
  hooks_.on_restored(*this, s);
}

void Node::apply(const Entry& e) {
  if (e.type == EntryType::kNormal && !e.data.empty()) sm_->apply(e.index, e.data);
  applied_ = e.index;
  hooks_.on_applied(*this, e);
  auto range = writes_.equal_range(e.index);
  for (auto it = range.first; it != range.second; ++it) {
    const auto& [req, term] = it->second;
    // The proposal succeeded iff the entry applied at its index has its term.
    if (term == e.term) {
      ClientReply r;
      r.client = req.client;
      r.attempt = req.attempt;
      r.kind = ReplyKind::kOk;
      r.server = id_;
      r.index = e.index;
      r.term = e.term;
      hooks_.on_reply(*this, std::move(r));
    } else {
      reply(req, ReplyKind::kRetry);
    }
  }
  writes_.erase(range.first, range.second);
}

void Node::serve_reads() {
  while (!waiting_reads_.empty() && waiting_reads_.begin()->first <= applied_) {
    PendingRead p = std::move(waiting_reads_.begin()->second);
    waiting_reads_.erase(waiting_reads_.begin());
    ClientReply r;
    r.client = p.request.client;
    r.attempt = p.request.attempt;
    r.kind = ReplyKind::kOk;
    r.server = id_;
    r.read_index = p.read_index;
    r.served_index = applied_;
    r.value = sm_->query(p.request.key);
    hooks_.on_reply(*this, std::move(r));
  }
}

void Node::maybe_compact() {
  if (applied_.value() < store_.snapshot().index.value() + static_cast<uint64_t>(settings_.compact_every)) return;
  auto [snap, compact_to] = raft_->compact(sm_->snapshot(), static_cast<uint64_t>(settings_.keep_entries));
  store_.compact(snap, compact_to);
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
