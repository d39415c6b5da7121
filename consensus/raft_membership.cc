// Membership changes one server at a time (thesis §4.1), learners (§4.2.1)
// and leadership transfer (§3.10). A change takes effect when it is applied,
// as in etcd-io/raft; a leader allows no new change until every earlier one
// is applied, and a new leader counts its whole log as possibly holding one,
// which closes the single-server leader-change hazard (thesis errata 2015).
#include <set>

#include "consensus/assert.h"
#include "consensus/raft.h"

namespace tenure::consensus {

RaftResult<ProposalTicket> Raft::propose_conf_change(const ConfChange& cc) {
  if (role_ != Role::kLeader) return Error<RaftError>{RaftError::kNotLeader, leader_.str()};
  if (pending_conf_index_ > log_.applied()) {
    return Error<RaftError>{RaftError::kConfChangePending, "a membership change is still being applied"};
  }
  if (cc.node.empty()) return Error<RaftError>{RaftError::kInvalidConfChange, "empty node id"};
  ConfState next = apply_conf_change(conf_, cc);
  if (next.voters.empty()) {
    return Error<RaftError>{RaftError::kInvalidConfChange, "cannot remove the last voter"};
  }
  if (next == conf_) return Error<RaftError>{RaftError::kInvalidConfChange, "change has no effect"};
  Entry e;
  e.type = EntryType::kConfChange;
  e.data = encode_conf_change(cc);
  std::vector<Entry> entries;
  entries.push_back(std::move(e));
  auto ticket = append_as_leader(std::move(entries));
  if (ticket.ok()) pending_conf_index_ = ticket.value().index;
  return ticket;
}

void Raft::apply_conf_entry(const Entry& e) {
  auto cc = decode_conf_change(e.data);
  TENURE_CHECK(cc.has_value(), "undecodable membership change at index " << e.index << " term " << e.term);
  conf_ = apply_conf_change(conf_, *cc);
  if (role_ != Role::kLeader) return;
  if (!conf_.voters.count(config_.id)) {
    // Removed or demoted: a leader outside the voters must not lead (§4.2.2).
    become_follower(term_, NodeId());
    return;
  }
  std::set<NodeId> known;
  for (const auto& [id, pr] : progress_) known.insert(id);
  sync_progress_with_conf();
  // A member new to us is probed at once rather than at the next heartbeat.
  for (const auto& [id, pr] : progress_) {
    if (id != config_.id && !known.count(id)) send_append(id, true);
  }
  if (transferee_ && !conf_.voters.count(*transferee_)) abort_transfer();
  // The quorum may have shrunk: commitment and reads may move on.
  if (maybe_commit()) broadcast_append();
  release_confirmed_reads();
}

void Raft::sync_progress_with_conf() {
  for (auto it = progress_.begin(); it != progress_.end();) {
    it = conf_.contains(it->first) ? std::next(it) : progress_.erase(it);
  }
  auto add = [&](const NodeId& id, bool learner) {
    auto [it, inserted] = progress_.try_emplace(id, config_.max_inflight_msgs);
    Progress& pr = it->second;
    pr.learner = learner;
    if (!inserted) return;
    pr.next = log_.last_index().next();
    // A new member counts as active so check-quorum does not depose us
    // before it had a chance to answer.
    pr.recent_active = true;
    if (id == config_.id) {
      pr.match = log_.stable();
      pr.become_replicate();
    }
  };
  for (const auto& id : conf_.voters) add(id, false);
  for (const auto& id : conf_.learners) add(id, true);
}

RaftResult<Ok> Raft::transfer_leadership(const NodeId& to) {
  if (role_ != Role::kLeader) return Error<RaftError>{RaftError::kNotLeader, leader_.str()};
  if (to == config_.id) return Ok{};
  if (!conf_.voters.count(to)) {
    return Error<RaftError>{RaftError::kUnknownMember, to.str() + " is not a voter"};
  }
  if (transferee_ && *transferee_ == to) return Ok{};
  transferee_ = to;
  lease_forfeited_ = true;
  // The transfer must finish within one election timeout or is abandoned.
  election_elapsed_ = 0;
  Progress& pr = progress_.at(to);
  if (pr.match == log_.last_index()) {
    Message m;
    m.type = MessageType::kTimeoutNow;
    m.to = to;
    send(std::move(m));
  } else {
    send_append(to, true);
  }
  return Ok{};
}

void Raft::report_snapshot(const NodeId& to, bool delivered) {
  if (role_ != Role::kLeader) return;
  auto it = progress_.find(to);
  if (it == progress_.end() || it->second.state != ProgressState::kSnapshot) return;
  Progress& pr = it->second;
  if (!delivered) pr.pending_snapshot = LogIndex(0);
  // Either way wait for the follower's answer (or a heartbeat) before probing.
  pr.become_probe();
  pr.probe_sent = true;
}

}  // namespace tenure::consensus
