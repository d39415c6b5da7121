// Roles, time and the term rules shared by every message (thesis §3.3-3.4).
#include "consensus/raft.h"

#include <algorithm>

#include "common/stable_hash.h"
#include "consensus/assert.h"

namespace tenure::consensus {

const char* to_string(Role r) {
  switch (r) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "?";
}

InitialState bootstrap_state(const std::vector<NodeId>& voters) {
  std::vector<NodeId> sorted = voters;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  InitialState s;
  for (const auto& id : sorted) {
    Entry e;
    e.term = Term(1);
    e.index = LogIndex(s.entries.size() + 1);
    e.type = EntryType::kConfChange;
    e.data = encode_conf_change(ConfChange{ConfChangeType::kAddVoter, id, ""});
    s.entries.push_back(std::move(e));
  }
  s.hard_state.term = Term(1);
  s.hard_state.commit = LogIndex(s.entries.size());
  return s;
}

Raft::Raft(RaftConfig config, InitialState state)
    : config_(std::move(config)),
      log_(state.snapshot, std::move(state.entries), state.hard_state.commit),
      term_(state.hard_state.term),
      vote_(state.hard_state.vote),
      conf_(state.snapshot.conf),
      persisted_hard_state_(state.hard_state) {
  TENURE_CHECK(!config_.id.empty(), "raft node needs an id");
  TENURE_CHECK(config_.heartbeat_ticks > 0 && config_.heartbeat_ticks < config_.election_ticks,
               "need 0 < heartbeat_ticks < election_ticks");
  // The seed mixes in the id so members of one simulated group differ.
  rng_state_ = config_.random_seed ^ 0x9E3779B97F4A7C15ULL ^ stable_hash64(config_.id.str());
  if (rng_state_ == 0) rng_state_ = 1;
  persisted_hard_state_.commit = log_.committed();
  durable_commit_ = log_.committed();
  become_follower(term_, NodeId());
  // A member that acknowledged a leader's heartbeat promised to refuse votes
  // for an election timeout; a restart must not break that promise.
  start_lease_ = config_.leader_lease && config_.check_quorum;
}

void Raft::reset_randomized_election_timeout() {
  // xorshift64*: deterministic for a given seed, good enough for jitter.
  rng_state_ ^= rng_state_ >> 12;
  rng_state_ ^= rng_state_ << 25;
  rng_state_ ^= rng_state_ >> 27;
  uint64_t r = rng_state_ * 0x2545F4914F6CDD1DULL;
  int jitter = config_.election_jitter_ticks > 0 ? config_.election_jitter_ticks : config_.election_ticks;
  randomized_election_timeout_ = config_.election_ticks + static_cast<int>(r % static_cast<uint64_t>(jitter));
}

void Raft::reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = NodeId();
  }
  leader_ = NodeId();
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_randomized_election_timeout();
  abort_transfer();
  votes_.clear();
  progress_.clear();
  uncommitted_bytes_ = 0;
  drop_pending_reads();
}

void Raft::become_follower(Term term, NodeId leader) {
  reset(term);
  role_ = Role::kFollower;
  leader_ = std::move(leader);
}

void Raft::become_pre_candidate() {
  TENURE_CHECK(role_ != Role::kLeader, "leader cannot pre-campaign");
  // Pre-vote changes neither term nor vote (§9.6), so a partitioned node
  // that keeps timing out does not inflate its term.
  votes_.clear();
  leader_ = NodeId();
  start_lease_ = false;
  role_ = Role::kPreCandidate;
}

void Raft::become_candidate() {
  TENURE_CHECK(role_ != Role::kLeader, "leader cannot campaign");
  reset(term_.next());
  start_lease_ = false;
  vote_ = config_.id;
  role_ = Role::kCandidate;
}

void Raft::become_leader() {
  TENURE_CHECK(role_ == Role::kCandidate, "only a candidate becomes leader, was " << to_string(role_));
  reset(term_);
  lease_forfeited_ = false;
  role_ = Role::kLeader;
  leader_ = config_.id;
  sync_progress_with_conf();
  // A membership change proposed by an earlier leader may still be in the
  // uncommitted tail; allow no new one until everything we have is applied.
  pending_conf_index_ = log_.last_index();
  // The no-op of §6.4/§3.6.2: commits everything before it once it commits.
  Entry noop;
  noop.term = term_;
  noop.index = log_.last_index().next();
  std::vector<Entry> entries;
  entries.push_back(std::move(noop));
  append_as_leader(std::move(entries));
  broadcast_append();
}

bool Raft::promotable() const { return conf_.voters.count(config_.id) > 0; }

void Raft::campaign() {
  if (role_ == Role::kLeader || !promotable()) return;
  start_election(config_.pre_vote, /*transfer=*/false);
}

void Raft::leader_unreachable(const NodeId& leader) {
  if (role_ != Role::kFollower || leader.empty() || leader_ != leader) return;
  leader_ = NodeId();
  // Campaign in [heartbeat, 2 heartbeat) ticks. The other members that lost
  // the same leader dial it too (every half heartbeat while it is silent),
  // so they have dropped their lease by the time this pre-vote reaches them;
  // the random part spreads the candidates apart.
  int heartbeat = std::max(1, config_.heartbeat_ticks);
  reset_randomized_election_timeout();
  int wait = heartbeat + (randomized_election_timeout_ - config_.election_ticks) % heartbeat;
  election_elapsed_ = std::max(election_elapsed_, randomized_election_timeout_ - wait);
}

void Raft::tick() {
  if (role_ == Role::kLeader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void Raft::tick_election() {
  ++election_elapsed_;
  if (election_elapsed_ >= config_.election_ticks) start_lease_ = false;
  if (promotable() && past_election_timeout()) {
    election_elapsed_ = 0;
    start_election(config_.pre_vote, false);
  }
}

void Raft::tick_heartbeat() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  for (auto& [id, pr] : progress_) {
    if (pr.state == ProgressState::kSnapshot && ++pr.snapshot_ticks >= 2 * config_.election_ticks) {
      // The snapshot or its answer was lost: probe again, which resends it if still needed.
      pr.become_probe();
    }
  }
  if (election_elapsed_ >= config_.election_ticks) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      // §6.2: step down unless a majority was heard from in the last timeout.
      size_t active = 0;
      for (auto& [id, pr] : progress_) {
        if (id == config_.id || pr.recent_active) {
          if (conf_.voters.count(id)) ++active;
        }
        if (id != config_.id) pr.recent_active = false;
      }
      if (active < quorum()) {
        become_follower(term_, NodeId());
        return;
      }
    }
    // A transfer that did not finish within an election timeout is abandoned (§3.10).
    abort_transfer();
  }
  if (heartbeat_elapsed_ >= config_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    broadcast_heartbeat(read_round_started_);
  }
}

void Raft::send(Message m) {
  m.from = config_.id;
  if (m.term == Term(0)) m.term = term_;
  bool early = false;
  if (role_ == Role::kLeader) {
    // A leader's replication traffic does not depend on its own fsync
    // (§10.2.1), provided its term is already durable.
    early = persisted_hard_state_.term == term_ &&
            (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
             m.type == MessageType::kSnapshot || m.type == MessageType::kTimeoutNow);
  } else if (config_.knobs.ack_append_before_persist && m.type == MessageType::kAppendResponse) {
    early = true;  // planted bug: acknowledges entries it has not stored yet
  }
  (early ? early_msgs_ : msgs_).push_back(std::move(m));
}

// Returns false when the message must not be processed further.
bool Raft::step_term(const Message& m) {
  if (m.term > term_) {
    if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
      bool force = m.context == 1;  // a leadership transfer (§3.10)
      bool in_lease = config_.check_quorum && (!leader_.empty() || start_lease_) &&
                      election_elapsed_ < config_.election_ticks;
      // §4.2.3 / §6.2: a member that hears from a leader ignores disruptive votes.
      if (!force && in_lease) return false;
    }
    if (m.type == MessageType::kPreVote) {
      // Never change term for a pre-vote.
    } else if (m.type == MessageType::kPreVoteResponse && !m.reject) {
      // A granted pre-vote carries the term we would campaign in.
    } else if (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
               m.type == MessageType::kSnapshot) {
      become_follower(m.term, m.from);
    } else {
      become_follower(m.term, NodeId());
    }
    return true;
  }
  if (m.term < term_) {
    if ((config_.check_quorum || config_.pre_vote) &&
        (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat)) {
      // Tell a stale leader about the newer term, so a node isolated and
      // stuck at a high term after pre-vote cannot stall it forever.
      Message r;
      r.type = MessageType::kAppendResponse;
      r.to = m.from;
      send(std::move(r));
    } else if (m.type == MessageType::kPreVote) {
      Message r;
      r.type = MessageType::kPreVoteResponse;
      r.to = m.from;
      r.reject = true;
      send(std::move(r));
    }
    return false;
  }
  return true;
}

std::optional<DropReason> Raft::step(Message m) {
  if (auto why = check_message(m)) return why;
  if (!step_term(m)) return std::nullopt;
  switch (m.type) {
    case MessageType::kVote:
    case MessageType::kPreVote:
      handle_vote_request(m);
      return std::nullopt;
    case MessageType::kVoteResponse:
    case MessageType::kPreVoteResponse:
      handle_vote_response(m);
      return std::nullopt;
    case MessageType::kAppend:
      if (role_ != Role::kFollower || leader_ != m.from) become_follower(term_, m.from);
      election_elapsed_ = 0;
      handle_append(m);
      return std::nullopt;
    case MessageType::kHeartbeat:
      if (role_ != Role::kFollower || leader_ != m.from) become_follower(term_, m.from);
      election_elapsed_ = 0;
      handle_heartbeat(m);
      return std::nullopt;
    case MessageType::kSnapshot:
      if (role_ != Role::kFollower || leader_ != m.from) become_follower(term_, m.from);
      election_elapsed_ = 0;
      handle_snapshot(m);
      return std::nullopt;
    case MessageType::kAppendResponse:
      if (role_ == Role::kLeader) handle_append_response(m);
      return std::nullopt;
    case MessageType::kHeartbeatResponse:
      if (role_ == Role::kLeader) handle_heartbeat_response(m);
      return std::nullopt;
    case MessageType::kTimeoutNow:
      handle_timeout_now(m);
      return std::nullopt;
    case MessageType::kReadIndex:
      if (role_ == Role::kLeader) enqueue_read(m.context, m.from);
      return std::nullopt;
    case MessageType::kReadIndexResponse:
      handle_read_index_response(m);
      return std::nullopt;
  }
  return std::nullopt;
}

Status Raft::status() const {
  Status s;
  s.id = config_.id;
  s.role = role_;
  s.term = term_;
  s.vote = vote_;
  s.leader = leader_;
  s.commit = log_.committed();
  s.applied = log_.applied();
  s.last_index = log_.last_index();
  s.first_index = log_.first_index();
  s.conf = conf_;
  if (transferee_) s.transferee = *transferee_;
  for (const auto& [id, pr] : progress_) {
    s.followers.push_back({id, pr.match, pr.next, pr.state, pr.learner, pr.recent_active});
  }
  return s;
}

}  // namespace tenure::consensus
