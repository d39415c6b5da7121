// Requests into the driver: proposals, reads, membership, peer traffic.
#include <chrono>

#include <boost/asio/post.hpp>

#include "consensus/assert.h"
#include "common/steady_clock.h"
#include "common/log.h"
#include "controller/raft_node.h"
#include "controller/wire_limits.h"

namespace tenure::controller {

namespace asio = boost::asio;
using consensus::ConfChange;
using consensus::ConfChangeType;
using consensus::RaftError;

namespace {

NodeErrc map_error(RaftError e) {
  switch (e) {
    case RaftError::kNotLeader:
    case RaftError::kTransferInProgress: return NodeErrc::kNotLeader;
    case RaftError::kTooManyUncommitted:
    case RaftError::kConfChangePending: return NodeErrc::kBusy;
    case RaftError::kInvalidConfChange:
    case RaftError::kUnknownMember: return NodeErrc::kInvalid;
    case RaftError::kEntryTooLarge: return NodeErrc::kTooLarge;
  }
  return NodeErrc::kInvalid;
}
}  // namespace

NodeError RaftNode::not_leader() const {
  return NodeError{NodeErrc::kNotLeader, "this member is not the leader", raft_ ? raft_->leader() : NodeId()};
}

namespace {
// Before start() (or after stop()) the core does not run: nothing is served.
NodeError not_serving() { return NodeError{NodeErrc::kStopped, "this member is not serving yet (or any more)", NodeId()}; }
}  // namespace

void RaftNode::propose(controlplane::Command cmd, ProposeDone done) {
  asio::post(strand_, [this, cmd = std::move(cmd), done = guarded(std::move(done), "propose")]() mutable {
    if (stopped_) {
      NodeError err = not_serving();
      return done(&err, nullptr);
    }
    if (raft_->role() != consensus::Role::kLeader) {
      metrics_.proposals.Add({{"result", "not_leader"}}).Increment();
      NodeError err = not_leader();
      return done(&err, nullptr);
    }
    // The leader stamps its time; apply never reads a clock.
    cmd.at_ms = wall_clock_ms();
    std::string data = controlplane::encode_command(cmd);
    if (data.size() > kMaxEntryBytes) {
      // Refused here, alone, rather than failing the batch it would join.
      metrics_.proposals.Add({{"result", "too_large"}}).Increment();
      NodeError err{NodeErrc::kTooLarge, "command of " + std::to_string(data.size()) +
                                             " bytes exceeds the max entry size of " +
                                             std::to_string(kMaxEntryBytes) + " bytes; split it",
                    NodeId()};
      return done(&err, nullptr);
    }
    enqueue(QueuedProposal{std::move(data), std::move(done), false});
    schedule_process();
  });
}

void RaftNode::enqueue(QueuedProposal q) {
  if (!queued_bound_.admit(q.data.size())) {
    metrics_.proposals.Add({{"result", "busy"}}).Increment();
    NodeError err{NodeErrc::kBusy,
                  "too many proposals wait for the log's fsync (" + std::to_string(queued_bound_.count()) + ", " +
                      std::to_string(queued_bound_.bytes()) + " bytes); retry",
                  raft_ ? raft_->leader() : NodeId()};
    return q.done(&err, nullptr);
  }
  queued_.push_back(std::move(q));
  metrics_.proposal_queue.Set(static_cast<double>(queued_.size()));
}

void RaftNode::flush_proposals() {
  if (queued_.empty()) return;
  auto queued = std::move(queued_);
  queued_.clear();
  queued_bound_.reset();
  metrics_.proposal_queue.Set(0);
  // Normal commands go in one batch: one append, one message per follower.
  std::vector<std::string> batch;
  std::vector<ProposeDone> dones;
  auto submit = [&] {
    if (batch.empty()) return;
    size_t n = batch.size();
    auto r = raft_->propose_batch(std::move(batch));
    batch.clear();
    if (!r.ok()) {
      const char* result = r.code() == RaftError::kTooManyUncommitted ? "busy"
                           : r.code() == RaftError::kEntryTooLarge    ? "too_large"
                                                                      : "not_leader";
      metrics_.proposals.Add({{"result", result}})
          .Increment(static_cast<double>(n));
      NodeError err{map_error(r.code()), r.error().message, raft_->leader()};
      for (auto& d : dones) d(&err, nullptr);
    } else {
      uint64_t deadline = steady_ms() + options_.request_timeout_ms;
      LogIndex first(r.value().index.value() - n + 1);
      for (size_t k = 0; k < n; ++k) {
        pending_[first.plus(k)] = PendingProposal{r.value().term, std::move(dones[k]), deadline, steady_ns()};
      }
    }
    dones.clear();
  };
  for (auto& q : queued) {
    if (!q.conf_change) {
      batch.push_back(std::move(q.data));
      dones.push_back(std::move(q.done));
      continue;
    }
    submit();
    auto cc = consensus::decode_conf_change(q.data);
    auto r = raft_->propose_conf_change(*cc);
    if (!r.ok()) {
      NodeError err{map_error(r.code()), r.error().message, raft_->leader()};
      q.done(&err, nullptr);
      continue;
    }
    pending_[r.value().index] = PendingProposal{r.value().term, std::move(q.done),
                                                steady_ms() + options_.request_timeout_ms, steady_ns()};
  }
  submit();
}

void RaftNode::read(ReadDone done) {
  asio::post(strand_, [this, done = guarded(std::move(done), "read")]() mutable {
    if (stopped_) {
      NodeError err = not_serving();
      return done(&err, nullptr);
    }
    uint64_t id = next_read_id_++;
    auto r = raft_->read_index(id);
    if (!r.ok()) {
      NodeError err = not_leader();
      return done(&err, nullptr);
    }
    reads_.emplace(id, PendingRead{std::move(done), steady_ms() + options_.request_timeout_ms, LogIndex(0)});
    schedule_process();
  });
}

void RaftNode::read_stale(StateFn fn) {
  asio::post(strand_, [this, fn = guarded(std::move(fn), "read_stale")] { fn(state_); });
}

void RaftNode::step(std::vector<consensus::Message> msgs) {
  asio::post(strand_, [this, msgs = std::move(msgs)]() mutable {
    if (stopped_) return;
    for (auto& m : msgs) step_one(m);
    schedule_process();
  });
}

bool RaftNode::known_sender(const consensus::Message& m) const {
  if (raft_->conf().contains(m.from) || options_.configured_addresses.count(m.from) ||
      learned_addresses_.count(m.from)) {
    return true;
  }
  // A leader added after the last membership change we applied is not known
  // yet, and only its log can tell us about it: its appends, heartbeats and
  // snapshots are let through to the core's own checks (as etcd's pipeline
  // handler accepts them). Votes, answers and reads from strangers are not.
  using consensus::MessageType;
  return m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat || m.type == MessageType::kSnapshot;
}

void RaftNode::step_one(consensus::Message& m) {
  const char* type = consensus::to_string(m.type);
  if (m.to != options_.id) {
    return drops_.count(consensus::DropReason::kWrongRecipient, m.from.str(), type, "to=" + m.to.str().substr(0, 64));
  }
  if (!known_sender(m)) {
    return drops_.count(drop_reason::kUnknownSender, m.from.str(), type, "not a member this node knows");
  }
  std::unique_ptr<controlplane::StateMachine> staged;
  LogIndex snap_index;
  if (m.type == consensus::MessageType::kSnapshot && m.snapshot && m.snapshot->data) {
    // Decoded and checked before the core may make it durable: a snapshot
    // that cannot be restored used to be persisted, then stop the member
    // at every start.
    snap_index = m.snapshot->index;
    staged = std::make_unique<controlplane::StateMachine>(options_.limits);
    if (!staged->restore(*m.snapshot->data)) {
      return drops_.count(drop_reason::kBadSnapshotData, m.from.str(), type,
                          "index=" + std::to_string(snap_index.value()) + " bytes=" +
                              std::to_string(m.snapshot->data->size()));
    }
  }
  // The message moves into the core; what the log line needs is kept.
  uint64_t term = m.term.value(), index = m.index.value(), entries = m.entries.size();
  NodeId from = m.from;
  if (auto why = raft_->step(std::move(m))) {
    return drops_.count(*why, from.str(), type,
                        "term=" + std::to_string(term) + " index=" + std::to_string(index) +
                            " entries=" + std::to_string(entries));
  }
  if (staged && raft_->pending_snapshot_index() == snap_index) staged_snapshots_[snap_index] = std::move(staged);
}

void RaftNode::report_snapshot(const NodeId& to, bool delivered) {
  asio::post(strand_, [this, to, delivered] {
    if (stopped_) return;
    raft_->report_snapshot(to, delivered);
    schedule_process();
  });
}

namespace {
ProposeDone as_propose_done(SimpleDone done) {
  return [done = std::move(done)](const NodeError* err, const controlplane::ApplyResult*) { done(err); };
}
}  // namespace

void RaftNode::add_member(const NodeId& id, const std::string& address, SimpleDone done) {
  asio::post(strand_, [this, id, address, done = guarded(std::move(done), "add_member")]() mutable {
    if (stopped_) {
      NodeError err = not_serving();
      return done(&err);
    }
    if (raft_->role() != consensus::Role::kLeader) {
      NodeError err = not_leader();
      return done(&err);
    }
    if (raft_->conf().contains(id)) {
      NodeError err{NodeErrc::kInvalid, "member " + id.str() + " already exists", NodeId()};
      return done(&err);
    }
    // §4.2.1: it joins as a learner and is promoted once caught up (maybe_promote_learners).
    ConfChange cc{ConfChangeType::kAddLearner, id, address};
    enqueue(QueuedProposal{consensus::encode_conf_change(cc), as_propose_done(std::move(done)), true});
    schedule_process();
  });
}

void RaftNode::remove_member(const NodeId& id, SimpleDone done) {
  asio::post(strand_, [this, id, done = guarded(std::move(done), "remove_member")]() mutable {
    if (stopped_) {
      NodeError err = not_serving();
      return done(&err);
    }
    if (raft_->role() != consensus::Role::kLeader) {
      NodeError err = not_leader();
      return done(&err);
    }
    if (!raft_->conf().contains(id)) {
      NodeError err{NodeErrc::kInvalid, "member " + id.str() + " not found", NodeId()};
      return done(&err);
    }
    ConfChange cc{ConfChangeType::kRemoveNode, id, ""};
    enqueue(QueuedProposal{consensus::encode_conf_change(cc), as_propose_done(std::move(done)), true});
    schedule_process();
  });
}

void RaftNode::transfer_leadership(const NodeId& to, SimpleDone done) {
  asio::post(strand_, [this, to, done = guarded(std::move(done), "transfer_leadership")]() mutable {
    if (stopped_) {
      NodeError err = not_serving();
      return done(&err);
    }
    auto r = raft_->transfer_leadership(to);
    if (!r.ok()) {
      NodeError err{map_error(r.code()), r.error().message, raft_->leader()};
      return done(&err);
    }
    schedule_process();
    done(nullptr);
  });
}

void RaftNode::hand_over_leadership(std::function<void(bool)> done) {
  asio::post(strand_, [this, done = guarded(std::move(done), "hand_over_leadership")]() mutable {
    if (stopped_ || raft_->role() != consensus::Role::kLeader) return done(false);
    // The voter with the most of our log among those we reach: it needs the
    // fewest entries before it can take over (the core sends them first).
    const auto& voters = raft_->conf().voters;
    NodeId to;
    LogIndex best;
    for (const auto& f : raft_->status().followers) {
      if (f.id == options_.id || !voters.count(f.id) || !peers_.peer_healthy(f.id)) continue;
      if (to.empty() || f.match > best) to = f.id, best = f.match;
    }
    if (to.empty()) return done(false);
    auto r = raft_->transfer_leadership(to);
    if (!r.ok()) return done(false);
    log_info("raft", "event=handing_over_leadership node=" + options_.id.str() + " to=" + to.str() +
                         " match=" + std::to_string(best.value()));
    hand_over_ = HandOver{std::move(done), steady_ms() + uint64_t(options_.election_ticks) * options_.tick_ms};
    schedule_process();
  });
}

void RaftNode::check_hand_over() {
  if (!hand_over_) return;
  bool moved = raft_->role() != consensus::Role::kLeader;
  if (!moved && steady_ms() < hand_over_->deadline_ms) return;
  auto done = std::move(hand_over_->done);
  hand_over_.reset();
  log_info("raft", "event=hand_over_" + std::string(moved ? "done" : "timed_out") + " node=" + options_.id.str() +
                       " leader=" + raft_->leader().str() + " term=" + std::to_string(raft_->term().value()));
  done(moved);
}

void RaftNode::apply_conf_change(const consensus::Entry& e) {
  auto cc = consensus::decode_conf_change(e.data);
  TENURE_CHECK(cc.has_value(), "node " << options_.id << " cannot decode membership change at " << e.index);
  if (!cc->context.empty() && cc->type != ConfChangeType::kRemoveNode) {
    learned_addresses_[cc->node] = cc->context;
    if (!options_.configured_addresses.count(cc->node)) peers_.set_peer_address(cc->node, cc->context);
  }
  log_info("raft", "event=membership_applied node=" + options_.id.str() + " index=" +
                       std::to_string(e.index.value()) + " change=" +
                       (cc->type == ConfChangeType::kAddLearner  ? "add_learner"
                        : cc->type == ConfChangeType::kAddVoter ? "add_voter"
                                                                : "remove") +
                       " member=" + cc->node.str());
  complete(e.index, e.term, nullptr);
}

void RaftNode::maybe_promote_learners() {
  const auto& conf = raft_->conf();
  if (conf.learners.empty()) return;
  auto status = raft_->status();
  for (const auto& f : status.followers) {
    if (!f.learner || f.state != consensus::ProgressState::kReplicate) continue;
    // Caught up: within a heartbeat's worth of entries of the leader's log.
    if (f.match.value() + 100 < status.last_index.value()) continue;
    ConfChange cc{ConfChangeType::kAddVoter, f.id, ""};
    auto r = raft_->propose_conf_change(cc);
    if (r.ok()) log_info("raft", "event=promote_learner node=" + options_.id.str() + " member=" + f.id.str());
    return;  // one change at a time
  }
}

void RaftNode::maybe_mark_started() {
  // About once a second, and only once this term's first entry committed.
  if (marking_started_ || ticks_ % 100 != 0 || !raft_->committed_in_current_term()) return;
  std::vector<std::string> ids;
  for (const auto& f : raft_->status().followers) {
    // It acknowledged entries: it holds a log (and maybe a vote) it must never forget.
    bool took_part = f.id == options_.id || f.match > LogIndex(0);
    if (took_part && !state_.started_members().count(f.id.str())) ids.push_back(f.id.str());
  }
  if (ids.empty()) return;
  marking_started_ = true;
  controlplane::Command cmd{"", wall_clock_ms(), controlplane::MarkMembersStarted{std::move(ids)}};
  enqueue(QueuedProposal{controlplane::encode_command(cmd),
                                   [this](const NodeError*, const controlplane::ApplyResult*) { marking_started_ = false; },
                                   false});
  schedule_process();
}

std::string RaftNode::address_of(const NodeId& id) const {
  auto it = options_.configured_addresses.find(id);
  if (it != options_.configured_addresses.end()) return it->second;
  auto l = learned_addresses_.find(id);
  return l == learned_addresses_.end() ? std::string() : l->second;
}

void RaftNode::update_summary() {
  NodeSummary s;
  s.id = options_.id;
  s.leader = raft_->leader();
  s.term = raft_->term();
  s.commit = raft_->log().committed();
  s.applied = raft_->log().applied();
  s.revision = state_.revision();
  s.is_leader = raft_->role() == consensus::Role::kLeader;
  s.leader_address = address_of(s.leader);
  const auto& conf = raft_->conf();
  consensus::Status status;
  if (s.is_leader) status = raft_->status();
  auto add = [&](const NodeId& id, bool learner) {
    MemberInfo m{id, address_of(id), learner ? "learner" : (id == s.leader ? "leader" : "follower"), std::nullopt,
                 std::nullopt, state_.started_members().count(id.str()) > 0};
    if (id == options_.id) {
      m.healthy = true;
    } else if (s.is_leader || id == s.leader) {
      // The leader sends to every member all the time, and a follower
      // answers its leader: these sends are first-hand evidence.
      m.healthy = peers_.peer_healthy(id);
    }
    if (s.is_leader) {
      m.lag = 0;
      for (const auto& f : status.followers) {
        if (f.id == id && f.id != options_.id) m.lag = status.last_index.value() - std::min(f.match, status.last_index).value();
      }
    }
    s.members.push_back(std::move(m));
  };
  for (const auto& id : conf.voters) add(id, false);
  for (const auto& id : conf.learners) add(id, true);
  if (s.leader != last_leader_) {
    if (!s.leader.empty()) {
      metrics_.leader_changes.Increment();
      log_info("raft", "event=leader_changed node=" + options_.id.str() + " leader=" + s.leader.str() +
                           " term=" + std::to_string(s.term.value()));
    }
    last_leader_ = s.leader;
  }
  metrics_.term.Set(static_cast<double>(s.term.value()));
  metrics_.commit_index.Set(static_cast<double>(s.commit.value()));
  metrics_.applied_index.Set(static_cast<double>(s.applied.value()));
  metrics_.is_leader.Set(s.is_leader ? 1 : 0);
  metrics_.revision.Set(static_cast<double>(s.revision.value()));
  metrics_.members.Set(static_cast<double>(s.members.size()));
  if (s.revision != metrics_revision_) {
    // Worker counts cost a pass over the workers: only when something changed.
    metrics_revision_ = s.revision;
    for (auto st : {controlplane::ShardState::kUnassigned, controlplane::ShardState::kActive,
                    controlplane::ShardState::kHandoff}) {
      shards_by_state_[static_cast<size_t>(st)] = state_.count(st);
      metrics_.shards.Add({{"state", to_string(st)}}).Set(static_cast<double>(state_.count(st)));
    }
    for (auto st : {controlplane::WorkerState::kAlive, controlplane::WorkerState::kDraining,
                    controlplane::WorkerState::kDead}) {
      workers_by_state_[static_cast<size_t>(st)] = state_.count(st);
      metrics_.workers.Add({{"state", to_string(st)}}).Set(static_cast<double>(state_.count(st)));
    }
  }
  s.shards_by_state = shards_by_state_;
  s.workers_by_state = workers_by_state_;
  is_leader_.store(s.is_leader, std::memory_order_relaxed);
  std::lock_guard<std::mutex> lock(summary_mu_);
  summary_ = std::move(s);
}

NodeSummary RaftNode::summary() const {
  std::lock_guard<std::mutex> lock(summary_mu_);
  return summary_;
}

}  // namespace tenure::controller
