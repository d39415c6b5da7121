// Leader election (thesis §3.4), pre-vote (§9.6) and the vote rule (§3.6.1).
#include <algorithm>

#include "consensus/assert.h"
#include "consensus/raft.h"

namespace tenure::consensus {

void Raft::start_election(bool pre_vote, bool transfer) {
  if (pre_vote) {
    become_pre_candidate();
  } else {
    become_candidate();
  }
  Term campaign_term = pre_vote ? term_.next() : term_;
  votes_[config_.id] = true;
  if (votes_.size() >= quorum()) {
    // A single-voter group wins at once.
    if (pre_vote) {
      start_election(false, transfer);
    } else {
      become_leader();
    }
    return;
  }
  for (const auto& id : conf_.voters) {
    if (id == config_.id) continue;
    Message m;
    m.type = pre_vote ? MessageType::kPreVote : MessageType::kVote;
    m.to = id;
    m.term = campaign_term;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    m.context = transfer ? 1 : 0;
    send(std::move(m));
  }
}

void Raft::handle_vote_request(const Message& m) {
  bool pre = m.type == MessageType::kPreVote;
  // We may vote for the same candidate again (a retransmission), for anyone
  // if we have not voted and know no leader, and pre-vote for a future term.
  bool can_vote = vote_ == m.from || (vote_.empty() && leader_.empty()) || (pre && m.term > term_);
  bool up_to_date = config_.knobs.vote_without_log_check || log_.is_up_to_date(m.index, m.log_term);
  Message r;
  r.type = pre ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  r.to = m.from;
  if (can_vote && up_to_date) {
    // Answer with the candidate's term: for a pre-vote ours is still lower.
    r.term = m.term;
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    r.reject = true;
  }
  send(std::move(r));
}

void Raft::handle_vote_response(const Message& m) {
  bool pre = m.type == MessageType::kPreVoteResponse;
  if ((pre && role_ != Role::kPreCandidate) || (!pre && role_ != Role::kCandidate)) return;
  votes_.emplace(m.from, !m.reject);
  size_t granted = 0, rejected = 0;
  for (const auto& [id, g] : votes_) {
    if (!conf_.voters.count(id)) continue;
    (g ? granted : rejected) += 1;
  }
  if (granted >= quorum()) {
    if (pre) {
      start_election(false, false);
    } else {
      become_leader();
    }
  } else if (rejected >= quorum()) {
    // Lost: wait for a leader or the next timeout, in the current term.
    become_follower(term_, NodeId());
  }
}

void Raft::handle_timeout_now(const Message& m) {
  // §3.10: the leader asks us to start an election at once, skipping
  // pre-vote and the leader lease of the other voters.
  if (!promotable() || role_ == Role::kLeader) return;
  (void)m;
  start_election(false, /*transfer=*/true);
}

}  // namespace tenure::consensus
