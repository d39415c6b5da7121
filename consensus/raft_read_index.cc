// Linearizable reads by ReadIndex (thesis §6.4), batched: a new request does
// not start a round of heartbeats by itself; the round starts when the driver
// pulls the next Ready, so every request that arrived since the previous
// Ready (or while a round was in flight) shares one round, and a burst of
// reads costs one round of heartbeats, not one each. A round also starts as
// soon as one becomes possible for reads already waiting (the first commit of
// the term, or the confirmation of the previous round).
#include <algorithm>

#include "consensus/assert.h"
#include "consensus/raft.h"

namespace tenure::consensus {

RaftResult<Ok> Raft::read_index(uint64_t request_id) {
  if (role_ == Role::kLeader) {
    enqueue_read(request_id, NodeId());
    return Ok{};
  }
  if (leader_.empty()) return Error<RaftError>{RaftError::kNotLeader, ""};
  // §6.4.1: a follower asks the leader for its read index.
  Message m;
  m.type = MessageType::kReadIndex;
  m.to = leader_;
  m.context = request_id;
  send(std::move(m));
  return Ok{};
}

void Raft::enqueue_read(uint64_t request_id, const NodeId& from) {
  if (config_.knobs.read_index_without_quorum) {
    // Planted bug: trusts its own leadership without asking a quorum.
    answer_read(PendingRead{request_id, from, 0, log_.committed()}, log_.committed());
    return;
  }
  // The round starts at the next ready() (see maybe_start_read_round), so
  // the requests that arrive before it share it.
  pending_reads_.push_back(PendingRead{request_id, from, 0, LogIndex(0)});
}

bool Raft::answer_read_on_lease(const Message& m) {
  if (!config_.leader_lease || m.type != MessageType::kReadIndex || role_ != Role::kLeader || m.term != term_ ||
      m.to != config_.id || lease_forfeited_ || !committed_in_current_term() || !progress_.count(m.from)) {
    return false;
  }
  // No other leader can have been elected since the lease's round began,
  // so every write acknowledged before the member's read began is within
  // the commit index (the member then waits until it has applied it).
  answer_read(PendingRead{m.context, m.from, 0, log_.committed()}, log_.committed());
  return true;
}

bool Raft::read_round_due() const {
  if (role_ != Role::kLeader || pending_reads_.empty()) return false;
  // §6.4 step 1: until an entry of this term commits, the leader's commit
  // index may lag what earlier leaders committed.
  if (!committed_in_current_term()) return false;
  if (read_round_started_ > read_round_confirmed_) return false;  // one round in flight
  return pending_reads_.back().round == 0;                        // somebody waits for a new round
}

void Raft::maybe_start_read_round() {
  if (!read_round_due()) return;
  ++read_round_started_;
  for (auto it = pending_reads_.rbegin(); it != pending_reads_.rend() && it->round == 0; ++it) {
    it->round = read_round_started_;
    it->index = log_.committed();
  }
  if (quorum() == 1) {
    read_round_confirmed_ = read_round_started_;
    release_confirmed_reads();
    return;
  }
  broadcast_heartbeat(read_round_started_);
}

void Raft::release_confirmed_reads() {
  if (role_ != Role::kLeader) return;
  // A round is confirmed when a quorum of voters answered it or a later one:
  // they still recognised us as leader after the round began (§6.4 step 3).
  std::vector<uint64_t> acked;
  for (const auto& id : conf_.voters) {
    if (id == config_.id) {
      acked.push_back(read_round_started_);
    } else {
      auto it = read_round_acked_.find(id);
      acked.push_back(it == read_round_acked_.end() ? 0 : it->second);
    }
  }
  if (acked.empty()) return;
  std::sort(acked.begin(), acked.end(), std::greater<>());
  read_round_confirmed_ = std::max(read_round_confirmed_, acked[quorum() - 1]);
  while (!pending_reads_.empty() && pending_reads_.front().round != 0 &&
         pending_reads_.front().round <= read_round_confirmed_) {
    answer_read(pending_reads_.front(), pending_reads_.front().index);
    pending_reads_.pop_front();
  }
  maybe_start_read_round();
}

void Raft::answer_read(const PendingRead& r, LogIndex index) {
  if (r.from.empty() || r.from == config_.id) {
    read_states_.push_back(ReadState{r.request_id, index});
    return;
  }
  Message m;
  m.type = MessageType::kReadIndexResponse;
  m.to = r.from;
  m.index = index;
  m.context = r.request_id;
  send(std::move(m));
}

void Raft::drop_pending_reads() {
  for (const auto& r : pending_reads_) {
    // Followers' requests simply go unanswered; they time out and retry.
    if (r.from.empty()) dropped_reads_.push_back(r.request_id);
  }
  pending_reads_.clear();
  read_round_started_ = 0;
  read_round_confirmed_ = 0;
  read_round_acked_.clear();
}

void Raft::handle_read_index_response(const Message& m) {
  read_states_.push_back(ReadState{m.context, m.index});
}

}  // namespace tenure::consensus
