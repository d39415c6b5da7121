// Log replication (thesis §3.5), commitment (§3.6.2) and snapshot
// installation (§5.2), with etcd-io/raft's probe/replicate flow control.
#include <algorithm>

#include "consensus/assert.h"
#include "consensus/raft.h"

namespace tenure::consensus {

RaftResult<ProposalTicket> Raft::propose(std::string data) {
  std::vector<std::string> batch;
  batch.push_back(std::move(data));
  return propose_batch(std::move(batch));
}

RaftResult<ProposalTicket> Raft::propose_batch(std::vector<std::string> data) {
  std::vector<Entry> entries;
  entries.reserve(data.size());
  for (auto& d : data) {
    Entry e;
    e.data = std::move(d);
    entries.push_back(std::move(e));
  }
  return append_as_leader(std::move(entries));
}

RaftResult<ProposalTicket> Raft::append_as_leader(std::vector<Entry> entries) {
  if (role_ != Role::kLeader) {
    return Error<RaftError>{RaftError::kNotLeader, leader_.str()};
  }
  if (transferee_) {
    return Error<RaftError>{RaftError::kTransferInProgress, transferee_->str()};
  }
  size_t bytes = 0;
  for (const auto& e : entries) {
    // An entry larger than a follower accepts would be sent, refused and
    // sent again forever: the group would stop committing (issue 8).
    if (e.data.size() > config_.max_entry_bytes) {
      return Error<RaftError>{RaftError::kEntryTooLarge, "entry of " + std::to_string(e.data.size()) +
                                                             " bytes exceeds the max entry size of " +
                                                             std::to_string(config_.max_entry_bytes) + " bytes"};
    }
    bytes += e.data.size();
  }
  // Backpressure (house style 6): refuse rather than buffer without bound.
  // An empty log tail always accepts, so one huge proposal cannot wedge us.
  if (uncommitted_bytes_ > 0 && uncommitted_bytes_ + bytes > config_.max_uncommitted_bytes) {
    return Error<RaftError>{RaftError::kTooManyUncommitted, "too many uncommitted bytes"};
  }
  uncommitted_bytes_ += bytes;
  LogIndex first = log_.last_index().next();
  LogIndex index = first;
  for (auto& e : entries) {
    e.term = term_;
    e.index = index;
    index = index.next();
  }
  log_.append(std::move(entries));
  // The leader's own match moves only once its log is durable (advance()),
  // so nothing is counted toward commitment before it is persisted.
  for (const auto& [id, pr] : progress_) {
    if (id != config_.id) send_append(id, /*send_if_empty=*/false);
  }
  return ProposalTicket{term_, log_.last_index()};
}

void Raft::send_snapshot(const NodeId& to, Progress& pr) {
  if (!pr.recent_active) return;  // not worth sending to a peer we cannot hear from
  const Snapshot& snap = log_.snapshot();
  TENURE_CHECK(!snap.empty(), "need a snapshot for " << to << " but have none; first index " << log_.first_index());
  Message m;
  m.type = MessageType::kSnapshot;
  m.to = to;
  m.snapshot = snap;
  pr.become_snapshot(snap.index);
  send(std::move(m));
}

bool Raft::send_append(const NodeId& to, bool send_if_empty) {
  auto it = progress_.find(to);
  if (it == progress_.end()) return false;
  Progress& pr = it->second;
  if (pr.paused()) return false;
  LogIndex prev = pr.next.prev();
  auto prev_term = log_.term(prev);
  if (!prev_term || pr.next < log_.first_index()) {
    send_snapshot(to, pr);
    return pr.state == ProgressState::kSnapshot;
  }
  Message m;
  m.type = MessageType::kAppend;
  m.to = to;
  m.index = prev;
  m.log_term = *prev_term;
  m.entries = log_.entries_from(pr.next, config_.max_bytes_per_msg, config_.entry_overhead_bytes);
  m.commit = log_.committed();
  if (m.entries.empty() && !send_if_empty) return false;
  pr.sent_append(!m.entries.empty(), m.entries.empty() ? prev : m.entries.back().index);
  send(std::move(m));
  return true;
}

void Raft::broadcast_append() {
  for (const auto& [id, pr] : progress_) {
    if (id != config_.id) send_append(id, true);
  }
}

void Raft::send_heartbeat(const NodeId& to, uint64_t context) {
  // Never tell a follower to commit beyond what it is known to store.
  Message m;
  m.type = MessageType::kHeartbeat;
  m.to = to;
  m.commit = std::min(progress_.at(to).match, log_.committed());
  m.context = context;
  send(std::move(m));
}

void Raft::broadcast_heartbeat(uint64_t context) {
  for (const auto& [id, pr] : progress_) {
    if (id != config_.id) send_heartbeat(id, context);
  }
}

void Raft::handle_append(Message& m) {
  Message r;
  r.type = MessageType::kAppendResponse;
  r.to = m.from;
  if (m.index < log_.committed()) {
    // Everything up to our commit index is known to match (§3.5).
    r.index = log_.committed();
    send(std::move(r));
    return;
  }
  LogIndex old_last = log_.last_index();
  Term old_last_term = log_.last_term();
  auto last_new = log_.maybe_append(m.index, m.log_term, std::move(m.entries));
  if (last_new) {
    // Our old last entry is gone only if a conflict truncated the tail (log
    // matching): everything after m.index may have been replaced.
    if (!log_.matches(old_last, old_last_term)) drop_unsent_acks_after(m.index);
    log_.commit_to(std::min(m.commit, *last_new));
    r.index = *last_new;
    send(std::move(r));
    return;
  }
  // Fast backtracking: point the leader at the last index whose term is not
  // newer than the one it tried, skipping a whole conflicting term per round trip.
  LogIndex hint = log_.find_conflict_by_term(std::min(m.index, log_.last_index()), m.log_term);
  r.reject = true;
  r.index = m.index;
  r.reject_hint = hint;
  r.log_term = log_.term(hint).value_or(Term(0));
  send(std::move(r));
}

void Raft::handle_append_response(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  if (m.reject) {
    LogIndex next_probe = m.reject_hint;
    if (m.log_term > Term(0)) next_probe = log_.find_conflict_by_term(m.reject_hint, m.log_term);
    if (pr.maybe_decrease_to(m.index, next_probe)) {
      if (pr.state == ProgressState::kReplicate) pr.become_probe();
      send_append(m.from, true);
    }
    return;
  }
  bool was_paused = pr.paused();
  if (!pr.maybe_update(m.index)) return;
  if (pr.state == ProgressState::kProbe) {
    pr.become_replicate();
  } else if (pr.state == ProgressState::kSnapshot && pr.match >= pr.pending_snapshot) {
    pr.become_probe();
    pr.become_replicate();
  } else if (pr.state == ProgressState::kReplicate) {
    pr.inflights.free_le(m.index);
  }
  if (maybe_commit()) {
    broadcast_append();
  } else if (was_paused) {
    send_append(m.from, true);
  }
  // Keep the pipeline full.
  while (send_append(m.from, false)) {
  }
  if (transferee_ && *transferee_ == m.from && pr.match == log_.last_index()) {
    Message t;
    t.type = MessageType::kTimeoutNow;
    t.to = m.from;
    send(std::move(t));
  }
}

void Raft::drop_unsent_acks_after(LogIndex kept) {
  // An AppendResponse waits in msgs_ until the next Ready and leaves once
  // that Ready is persisted. When the driver keeps stepping messages while an
  // earlier Ready's fsync is in flight (sim async_fsync, the controller's
  // persist worker), a newer leader may replace the acknowledged entries
  // before that next Ready is cut: the ack would then go out, after a
  // persist that never wrote them, claiming entries we no longer hold
  // (tenure-sim seed 572 with an immediate probe of new members, checker
  // ack-persisted). Dropping them is as safe as losing them in the network;
  // acks for what we still hold, and rejections, stay.
  if (config_.knobs.keep_acks_of_replaced_entries) return;  // planted bug
  std::erase_if(msgs_, [&](const Message& r) {
    return r.type == MessageType::kAppendResponse && !r.reject && r.index > kept;
  });
}

void Raft::handle_heartbeat(const Message& m) {
  log_.commit_to(std::min(m.commit, log_.last_index()));
  Message r;
  r.type = MessageType::kHeartbeatResponse;
  r.to = m.from;
  r.context = m.context;
  send(std::move(r));
}

void Raft::handle_heartbeat_response(const Message& m) {
  auto it = progress_.find(m.from);
  if (it == progress_.end()) return;
  Progress& pr = it->second;
  pr.recent_active = true;
  pr.probe_sent = false;
  // Appends may have been lost: free one slot so replication can resume
  // (the follower will reject a gap and we fall back to probing).
  if (pr.state == ProgressState::kReplicate && pr.inflights.full()) pr.inflights.free_first();
  if (pr.match < log_.last_index()) send_append(m.from, true);
  auto& acked = read_round_acked_[m.from];
  if (m.context > acked) {
    acked = m.context;
    release_confirmed_reads();
  }
}

void Raft::handle_snapshot(const Message& m) {
  TENURE_CHECK(m.snapshot.has_value(), "snapshot message without snapshot");
  const Snapshot& snap = *m.snapshot;
  Message r;
  r.type = MessageType::kAppendResponse;
  r.to = m.from;
  if (snap.index <= log_.committed()) {
    r.index = log_.committed();
  } else if (log_.matches(snap.index, snap.term)) {
    // We already hold the entries the snapshot covers: just commit them.
    log_.commit_to(snap.index);
    r.index = snap.index;
  } else {
    // Entries up to our commit index are in the snapshot; later ones may not be.
    drop_unsent_acks_after(log_.committed());
    log_.restore(snap);
    conf_ = snap.conf;
    pending_snapshot_ = snap;
    r.index = snap.index;
  }
  send(std::move(r));
}

bool Raft::committed_in_current_term() const {
  auto t = log_.term(log_.committed());
  return t && *t == term_;
}

bool Raft::maybe_commit() {
  std::vector<LogIndex> matches;
  for (const auto& [id, pr] : progress_) {
    if (conf_.voters.count(id)) matches.push_back(pr.match);
  }
  if (matches.empty()) return false;
  std::sort(matches.begin(), matches.end(), std::greater<>());
  LogIndex candidate = matches[quorum() - 1];
  if (candidate <= log_.committed()) return false;
  // §3.6.2 (Figure 8): only an entry of the current term is committed by
  // counting replicas; earlier ones commit indirectly with it.
  if (!config_.knobs.commit_old_term_by_counting && log_.term(candidate) != term_) return false;
  LogIndex old = log_.committed();
  log_.commit_to(candidate);
  on_committed(old);
  return true;
}

void Raft::on_committed(LogIndex old_commit) {
  // Release backpressure for what just committed.
  for (LogIndex i = old_commit.next(); i <= log_.committed(); i = i.next()) {
    auto t = log_.term(i);
    if (!t || *t != term_) continue;
    // Only this term's entries were counted in uncommitted_bytes_.
    size_t b = log_.payload_size(i);
    uncommitted_bytes_ -= std::min(uncommitted_bytes_, b);
  }
  maybe_start_read_round();
}

}  // namespace tenure::consensus
