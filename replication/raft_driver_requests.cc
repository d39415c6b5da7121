// Requests into the driver: proposals, reads, membership, peer traffic.
#include "common/log.h"
#include "replication/raft_driver.h"

namespace tenure::replication {

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

const char* result_label(RaftError e) {
  return e == RaftError::kTooManyUncommitted ? "busy" : e == RaftError::kEntryTooLarge ? "too_large" : "not_leader";
}

// Before start() (or after stop()) the core does not run: nothing is served.
NodeError not_serving() { return NodeError{NodeErrc::kStopped, "this member is not serving yet (or any more)", NodeId()}; }

}  // namespace

NodeError RaftDriver::not_leader() const {
  return NodeError{NodeErrc::kNotLeader, "this member is not the leader", raft_ ? raft_->leader() : NodeId()};
}

bool RaftDriver::refuse_if_not_leader(EntryDone& done) {
  if (stopped_) {
    NodeError err = not_serving();
    done(&err);
    return true;
  }
  if (raft_->role() != consensus::Role::kLeader) {
    NodeError err = not_leader();
    done(&err);
    return true;
  }
  return false;
}

void RaftDriver::propose(std::string data, EntryDone done) {
  if (!stopped_ && raft_->role() != consensus::Role::kLeader) events_.proposals("not_leader", 1);
  if (refuse_if_not_leader(done)) return;
  if (data.size() > options_.raft.max_entry_bytes) {
    // Refused here, alone, rather than failing the batch it would join.
    events_.proposals("too_large", 1);
    NodeError err{NodeErrc::kTooLarge,
                  "command of " + std::to_string(data.size()) + " bytes exceeds the max entry size of " +
                      std::to_string(options_.raft.max_entry_bytes) + " bytes; split it",
                  NodeId()};
    return done(&err);
  }
  enqueue(QueuedProposal{std::move(data), std::move(done), false});
  schedule_process();
}

void RaftDriver::enqueue(QueuedProposal q) {
  if (!queued_bound_.admit(q.data.size())) {
    events_.proposals("busy", 1);
    NodeError err{NodeErrc::kBusy,
                  "too many proposals wait for the log's fsync (" + std::to_string(queued_bound_.count()) + ", " +
                      std::to_string(queued_bound_.bytes()) + " bytes); retry",
                  raft_ ? raft_->leader() : NodeId()};
    return q.done(&err);
  }
  queued_.push_back(std::move(q));
  events_.queue_length(queued_.size());
}

void RaftDriver::flush_proposals() {
  if (queued_.empty()) return;
  auto queued = std::move(queued_);
  queued_.clear();
  queued_bound_.reset();
  events_.queue_length(0);
  uint64_t deadline = executor_.now_ms() + options_.request_timeout_ms;
  auto track = [&](LogIndex index, Term term, EntryDone done) {
    auto [it, fresh] = pending_.try_emplace(index);
    if (!fresh) {
      // An earlier proposal at this index, from a term whose entry our log
      // no longer holds (a snapshot or a newer leader replaced it): it can
      // no longer commit, since this member leads with another entry there.
      auto old = std::move(it->second.done);
      events_.proposals("dropped", 1);
      NodeError err{NodeErrc::kDropped, "proposal lost in a leader change; retry", raft_->leader()};
      old(&err);
    }
    it->second = PendingProposal{term, std::move(done), deadline, executor_.now_ns()};
  };
  // Normal commands go in one batch: one append, one message per follower.
  std::vector<std::string> batch;
  std::vector<EntryDone> dones;
  auto submit = [&] {
    if (batch.empty()) return;
    size_t n = batch.size();
    auto r = raft_->propose_batch(std::move(batch));
    batch.clear();
    if (!r.ok()) {
      events_.proposals(result_label(r.code()), n);
      NodeError err{map_error(r.code()), r.error().message, raft_->leader()};
      for (auto& d : dones) d(&err);
    } else {
      LogIndex first(r.value().index.value() - n + 1);
      for (size_t k = 0; k < n; ++k) track(first.plus(k), r.value().term, std::move(dones[k]));
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
      q.done(&err);
      continue;
    }
    track(r.value().index, r.value().term, std::move(q.done));
  }
  submit();
}

void RaftDriver::read(ReadIndexDone done) {
  if (stopped_) {
    NodeError err = not_serving();
    return done(&err, LogIndex(0));
  }
  if (!lease_holds()) {
    events_.read_started("read_index");
    return ask_read_index(std::move(done));
  }
  // No other leader can have been elected since the lease's round began, so
  // every write acknowledged before this read is within our commit index.
  LogIndex index = raft_->log().committed();
  events_.read_started("lease");
  if (index <= applied_) return done(nullptr, index);
  // Answered once the machine applied up to it (release_reads).
  reads_.emplace(next_read_id_++, PendingRead{std::move(done), executor_.now_ms() + options_.request_timeout_ms,
                                              index, executor_.now_ns(), raft_->term()});
}

void RaftDriver::ask_read_index(ReadIndexDone done) {
  uint64_t read_id = next_read_id_++;
  auto r = raft_->read_index(read_id);
  if (!r.ok()) {
    NodeError err = not_leader();
    return done(&err, LogIndex(0));
  }
  reads_.emplace(read_id, PendingRead{std::move(done), executor_.now_ms() + options_.request_timeout_ms, LogIndex(0),
                                      executor_.now_ns(), raft_->term()});
  schedule_process();
}

bool RaftDriver::lease_holds() const {
  return options_.read_lease_ms > 0 && raft_->role() == consensus::Role::kLeader && raft_->term() == lease_term_ &&
         !raft_->lease_forfeited() && executor_.now_ns() < lease_until_ns_ && raft_->committed_in_current_term();
}

void RaftDriver::extend_lease(const PendingRead& confirmed) {
  // The core confirmed the read's round with a quorum: each member of it
  // heard us after the round began, which was after the read was asked. A
  // read asked in this term by the leader it still is was asked as leader
  // (a member leads a term only after its candidacy in that term).
  if (options_.read_lease_ms == 0 || raft_->role() != consensus::Role::kLeader ||
      confirmed.asked_term != raft_->term() || raft_->lease_forfeited()) {
    return;
  }
  if (lease_term_ != confirmed.asked_term) lease_until_ns_ = 0;
  lease_term_ = confirmed.asked_term;
  uint64_t lease_ns = uint64_t(options_.read_lease_ms) * 1000000;
  if (options_.raft.knobs.lease_outlives_votes) lease_ns *= 10;  // planted bug (simulator only)
  lease_until_ns_ = std::max(lease_until_ns_, confirmed.asked_ns + lease_ns);
}

void RaftDriver::renew_lease() {
  // Ask before half the lease is gone, so that a steady stream of reads
  // never waits for a round; an idle leader keeps its lease warm too.
  if (options_.read_lease_ms == 0 || lease_renewal_asked_ || raft_->role() != consensus::Role::kLeader ||
      raft_->lease_forfeited() || !raft_->committed_in_current_term()) {
    return;
  }
  const uint64_t half_ns = uint64_t(options_.read_lease_ms) * 500000;
  if (lease_term_ == raft_->term() && lease_until_ns_ > executor_.now_ns() + half_ns) return;
  lease_renewal_asked_ = true;
  ask_read_index([this](const NodeError*, LogIndex) { lease_renewal_asked_ = false; });
}

void RaftDriver::step(std::vector<consensus::Message> msgs) {
  if (stopped_) return;
  for (auto& m : msgs) step_one(m);
  schedule_process();
}

bool RaftDriver::known_sender(const consensus::Message& m) const {
  if (raft_->conf().contains(m.from) || options_.configured_addresses.count(m.from) ||
      learned_addresses_.count(m.from)) {
    return true;
  }
  // A member added after the last membership change we applied is not known
  // yet. A leader's log is the only way we learn of it: its appends,
  // heartbeats and snapshots go to the core's own checks (as etcd's
  // pipeline handler accepts them). So do its vote requests: a server
  // grants its vote to a candidate not in its latest configuration (thesis
  // §4.1), or a group whose only electable member (the longest log) was
  // added after a lagging voter's configuration never elects anyone
  // (tenure-sim --fleet --seed 40018: three members pre-voting for 30
  // election timeouts). Check-quorum and pre-vote keep such requests from
  // deposing a leader, as they do for known members. Answers and reads
  // from strangers are not let through: we sent them nothing.
  using consensus::MessageType;
  switch (m.type) {
    case MessageType::kAppend:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
    case MessageType::kVote:
    case MessageType::kPreVote: return true;
    default: return false;
  }
}

void RaftDriver::step_one(consensus::Message& m) {
  const char* type = consensus::to_string(m.type);
  if (m.to != id()) {
    return events_.dropped(consensus::to_string(consensus::DropReason::kWrongRecipient), m.from, type,
                           "to=" + m.to.str().substr(0, 64));
  }
  if (!known_sender(m)) return events_.dropped("unknown_sender", m.from, type, "not a member this node knows");
  // A follower's linearizable read, on this leader's lease: answered now,
  // as a read at this member is (read()), not in the next heartbeat round.
  if (m.type == consensus::MessageType::kReadIndex && lease_holds() && raft_->answer_read_on_lease(m)) {
    return events_.stepped(m, 0, *raft_);
  }
  std::unique_ptr<StagedState> staged;
  LogIndex snap_index;
  if (m.type == consensus::MessageType::kSnapshot) {
    // A sender reads a snapshot's bytes from its store (PeerSender); one
    // that arrives without them cannot be installed.
    if (!m.snapshot || !m.snapshot->data) return events_.dropped("bad_snapshot_data", m.from, type, "no data");
    // Decoded and checked before the core may make it durable: a snapshot
    // that cannot be restored used to be persisted, then stop the member
    // at every start.
    snap_index = m.snapshot->index;
    staged = machine_.stage(*m.snapshot->data);
    if (!staged) {
      return events_.dropped("bad_snapshot_data", m.from, type,
                             "index=" + std::to_string(snap_index.value()) +
                                 " bytes=" + std::to_string(m.snapshot->data->size()));
    }
  }
  // The message moves into the core; what the log line and the events
  // need is kept.
  std::vector<consensus::Entry> entries = std::move(m.entries);
  std::optional<consensus::Snapshot> snapshot = std::move(m.snapshot);
  size_t entry_count = entries.size();
  consensus::Message head = m;
  head.snapshot.reset();
  m.entries = std::move(entries);
  m.snapshot = std::move(snapshot);
  if (auto why = raft_->step(std::move(m))) {
    return events_.dropped(consensus::to_string(*why), head.from, type,
                           "term=" + std::to_string(head.term.value()) + " index=" + std::to_string(head.index.value()) +
                               " entries=" + std::to_string(entry_count));
  }
  events_.stepped(head, entry_count, *raft_);
  if (staged && raft_->pending_snapshot_index() == snap_index) staged_snapshots_[snap_index] = std::move(staged);
}

void RaftDriver::report_snapshot(const NodeId& to, bool delivered) {
  if (stopped_) return;
  raft_->report_snapshot(to, delivered);
  schedule_process();
}

void RaftDriver::add_member(const NodeId& member, const std::string& address, EntryDone done) {
  if (refuse_if_not_leader(done)) return;
  if (raft_->conf().contains(member)) {
    NodeError err{NodeErrc::kInvalid, "member " + member.str() + " already exists", NodeId()};
    return done(&err);
  }
  // §4.2.1: it joins as a learner and is promoted once caught up (maybe_promote_learners).
  ConfChange cc{ConfChangeType::kAddLearner, member, address};
  enqueue(QueuedProposal{consensus::encode_conf_change(cc), std::move(done), true});
  schedule_process();
}

void RaftDriver::remove_member(const NodeId& member, EntryDone done) {
  if (refuse_if_not_leader(done)) return;
  if (!raft_->conf().contains(member)) {
    NodeError err{NodeErrc::kInvalid, "member " + member.str() + " not found", NodeId()};
    return done(&err);
  }
  ConfChange cc{ConfChangeType::kRemoveNode, member, ""};
  enqueue(QueuedProposal{consensus::encode_conf_change(cc), std::move(done), true});
  schedule_process();
}

void RaftDriver::transfer_leadership(const NodeId& to, EntryDone done) {
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
}

void RaftDriver::hand_over_leadership(std::function<void(bool)> done) {
  if (stopped_ || raft_->role() != consensus::Role::kLeader) return done(false);
  // The voter with the most of our log among those we reach: it needs the
  // fewest entries before it can take over (the core sends them first).
  const auto& voters = raft_->conf().voters;
  NodeId to;
  LogIndex best;
  for (const auto& f : raft_->status().followers) {
    if (f.id == id() || !voters.count(f.id) || !peers_.peer_healthy(f.id)) continue;
    if (to.empty() || f.match > best) to = f.id, best = f.match;
  }
  if (to.empty()) return done(false);
  auto r = raft_->transfer_leadership(to);
  if (!r.ok()) return done(false);
  log_info("raft", "event=handing_over_leadership node=" + id().str() + " to=" + to.str() +
                       " match=" + std::to_string(best.value()));
  hand_over_ = HandOver{std::move(done), executor_.now_ms() + uint64_t(options_.raft.election_ticks) * options_.tick_ms};
  schedule_process();
}

void RaftDriver::check_hand_over() {
  if (!hand_over_) return;
  bool moved = raft_->role() != consensus::Role::kLeader;
  if (!moved && executor_.now_ms() < hand_over_->deadline_ms) return;
  auto done = std::move(hand_over_->done);
  hand_over_.reset();
  log_info("raft", "event=hand_over_" + std::string(moved ? "done" : "timed_out") + " node=" + id().str() +
                       " leader=" + raft_->leader().str() + " term=" + std::to_string(raft_->term().value()));
  done(moved);
}

void RaftDriver::apply_conf_change(const consensus::Entry& e) {
  auto cc = consensus::decode_conf_change(e.data);
  if (!cc) {
    store_.fatal("op=apply error=\"the membership change at index " + std::to_string(e.index.value()) +
                 " does not decode\"");
  }
  if (!cc->context.empty() && cc->type != ConfChangeType::kRemoveNode) {
    learned_addresses_[cc->node] = cc->context;
    if (!options_.configured_addresses.count(cc->node)) peers_.set_peer_address(cc->node, cc->context);
  }
  log_info("raft", "event=membership_applied node=" + id().str() + " index=" + std::to_string(e.index.value()) +
                       " change=" +
                       (cc->type == ConfChangeType::kAddLearner  ? "add_learner"
                        : cc->type == ConfChangeType::kAddVoter ? "add_voter"
                                                                : "remove") +
                       " member=" + cc->node.str());
}

void RaftDriver::maybe_probe_leader() {
  // A crashed leader's kernel refuses connections to its port at once; a
  // leader that is alive but stopped, slow or cut off is never refused
  // (its kernel accepts, or nothing answers). So a refusal lets the
  // followers skip most of the election timeout after a crash (issue 11:
  // failover), and nothing else changes when a leader is merely slow. The
  // silence threshold is short because a probe of a live leader costs one
  // accepted connection and changes nothing.
  ++ticks_since_probe_;
  NodeId leader = raft_->leader();
  int heartbeat = std::max(1, options_.raft.heartbeat_ticks);
  if (leader.empty() || leader == id() || probe_in_flight_) return;
  if (raft_->ticks_since_leader_heard() <= heartbeat + heartbeat / 2) return;
  if (ticks_since_probe_ < std::max(1, heartbeat / 2)) return;
  probe_in_flight_ = true;
  ticks_since_probe_ = 0;
  peers_.probe(leader, [this, leader](bool refused) {
    executor_.post([this, leader, refused] {
      probe_in_flight_ = false;
      if (stopped_ || !refused || raft_->leader() != leader) return;
      log_info("raft", "event=leader_unreachable node=" + id().str() + " leader=" + leader.str() +
                           " term=" + std::to_string(raft_->term().value()) +
                           " detail=\"its address refused a connection: campaigning without waiting out the "
                           "election timeout\"");
      raft_->leader_unreachable(leader);
    });
  });
}

void RaftDriver::maybe_promote_learners() {
  const auto& conf = raft_->conf();
  if (conf.learners.empty()) return;
  auto status = raft_->status();
  for (const auto& f : status.followers) {
    if (!f.learner || f.state != consensus::ProgressState::kReplicate) continue;
    // Caught up: within a heartbeat's worth of entries of the leader's log,
    // and holding everything committed. A voter promoted while far behind
    // is one the quorum may have to wait for: with a member down, commits
    // stalled while it caught up (tenure-sim seed 206378: a learner 80
    // entries behind, one entry per round trip, promoted at once).
    if (f.match.value() + 100 < status.last_index.value() || f.match < status.commit) continue;
    ConfChange cc{ConfChangeType::kAddVoter, f.id, ""};
    auto r = raft_->propose_conf_change(cc);
    if (r.ok()) log_info("raft", "event=promote_learner node=" + id().str() + " member=" + f.id.str());
    return;  // one change at a time
  }
}

std::string RaftDriver::address_of(const NodeId& member) const {
  auto it = options_.configured_addresses.find(member);
  if (it != options_.configured_addresses.end()) return it->second;
  auto l = learned_addresses_.find(member);
  return l == learned_addresses_.end() ? std::string() : l->second;
}

}  // namespace tenure::replication
