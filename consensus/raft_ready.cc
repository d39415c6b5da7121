// The Ready/advance handshake with the driver: what to persist, send and
// apply, and what the driver acknowledged (etcd-io/raft rawnode.go).
#include "consensus/assert.h"
#include "consensus/raft.h"

namespace tenure::consensus {

bool Raft::has_ready() const {
  HardState hs{term_, vote_, log_.committed()};
  return hs != persisted_hard_state_ || pending_snapshot_ || log_.has_unstable() || !msgs_.empty() ||
         !early_msgs_.empty() || log_.has_next_committed() || !read_states_.empty() || !dropped_reads_.empty() ||
         read_round_due();
}

Ready Raft::ready() {
  TENURE_CHECK(!ready_outstanding_, "ready() before advance() of the previous Ready, node " << config_.id);
  // Every read requested since the last Ready joins one heartbeat round (§6.4).
  maybe_start_read_round();
  Ready rd;
  HardState hs{term_, vote_, log_.committed()};
  if (hs != persisted_hard_state_) {
    rd.hard_state = hs;
    rd.hard_state_changes_vote = hs.term != persisted_hard_state_.term || hs.vote != persisted_hard_state_.vote;
  }
  rd.snapshot = std::move(pending_snapshot_);
  pending_snapshot_.reset();
  rd.entries = log_.unstable_entries();
  // Committed entries may include ones persisted by this very Ready: the
  // driver applies those only after persisting (the ones durable before
  // it may go beside its fsync, Ready::committed_entries).
  rd.committed_entries = log_.next_committed_entries(config_.max_committed_bytes_per_ready);
  for (const auto& e : rd.committed_entries) {
    if (e.type == EntryType::kConfChange) conf_handed_out_ = e.index;
  }
  // A Ready that only moved the commit index may have gone unpersisted, so
  // the durable commit index can lag a membership change this member has
  // applied. No entry or snapshot may be persisted after it until a durable
  // commit index covers it (the (Append) invariant that makes apply-time
  // membership changes safe, etcd-io/etcd#7625): else a member restarted
  // from disk may count votes in a configuration two changes old, whose
  // majorities need not overlap the current ones (tenure-sim seed 1186,
  // checker commit-safety). So such a Ready carries the hard state again.
  if (!rd.hard_state && (rd.snapshot || !rd.entries.empty()) && durable_commit_ < conf_handed_out_) rd.hard_state = hs;
  if (rd.hard_state && config_.knobs.forget_vote_on_persist) rd.hard_state->vote = NodeId();  // planted bug
  rd.early_messages = std::move(early_msgs_);
  rd.messages = std::move(msgs_);
  rd.read_states = std::move(read_states_);
  rd.dropped_reads = std::move(dropped_reads_);
  early_msgs_.clear();
  msgs_.clear();
  read_states_.clear();
  dropped_reads_.clear();

  ready_outstanding_ = true;
  ready_hard_state_ = hs;
  ready_durable_commit_ = rd.hard_state && rd.must_sync() ? hs.commit : durable_commit_;
  ready_stable_to_ = log_.last_index();
  ready_stable_term_ = log_.last_term();
  ready_applied_to_ = rd.committed_entries.empty() ? log_.applied() : rd.committed_entries.back().index;
  ready_conf_entries_.clear();
  for (const auto& e : rd.committed_entries) {
    if (e.type == EntryType::kConfChange) ready_conf_entries_.push_back(e);
  }
  return rd;
}

std::vector<Message> Raft::take_early_messages() {
  if (role_ != Role::kLeader) return {};
  maybe_start_read_round();
  std::vector<Message> out = std::move(early_msgs_);
  early_msgs_.clear();
  return out;
}

void Raft::advance() {
  TENURE_CHECK(ready_outstanding_, "advance() without ready(), node " << config_.id);
  ready_outstanding_ = false;
  persisted_hard_state_ = ready_hard_state_;
  durable_commit_ = ready_durable_commit_;
  // A message stepped in between ready() and advance() may have replaced the
  // entries this Ready persisted (a new leader truncating our tail). Their
  // replacements were never handed out, so they are not stable; by log
  // matching, an unchanged (index, term) at the end means nothing was
  // replaced (etcd-io/raft's stableTo checks the term the same way).
  if (log_.matches(ready_stable_to_, ready_stable_term_)) log_.stable_to(ready_stable_to_);
  for (const auto& e : ready_conf_entries_) {
    if (e.index <= log_.applied()) continue;  // superseded by a snapshot
    log_.applied_to(e.index);
    apply_conf_entry(e);
  }
  ready_conf_entries_.clear();
  if (ready_applied_to_ > log_.applied()) log_.applied_to(ready_applied_to_);
  if (config_.max_resident_log_bytes != 0) log_.release_payloads(config_.max_resident_log_bytes);
  if (role_ == Role::kLeader) {
    // Our own log is now durable up to stable(): count ourselves (§10.2.1).
    auto it = progress_.find(config_.id);
    if (it != progress_.end() && it->second.maybe_update(log_.stable())) {
      if (maybe_commit()) broadcast_append();
    }
  }
}

LogIndex Raft::compaction_point(LogIndex snapshot, uint64_t keep_entries, LogIndex pinned) const {
  LogIndex to(snapshot.value() > keep_entries ? snapshot.value() - keep_entries : 0);
  to = std::min(to, pinned);
  return std::max(to, log_.first_index().prev());  // never behind what is already compacted
}

std::pair<Snapshot, LogIndex> Raft::compact(std::string data, uint64_t keep_entries) {
  TENURE_CHECK(!ready_outstanding_, "compact() between ready() and advance()");
  Snapshot snap = snapshot_point();
  snap.data = std::make_shared<const std::string>(std::move(data));
  LogIndex compact_to = compaction_point(snap.index, keep_entries, LogIndex(~uint64_t(0)));
  log_.compact(snap, compact_to);
  return {log_.snapshot(), compact_to};
}

Snapshot Raft::snapshot_point() const {
  Snapshot snap;
  snap.index = log_.applied();
  snap.term = log_.term(snap.index).value_or(Term(0));
  snap.conf = conf_;
  return snap;
}

std::optional<std::pair<Snapshot, LogIndex>> Raft::compact_at(Snapshot snap, uint64_t keep_entries) {
  TENURE_CHECK(!ready_outstanding_, "compact_at() between ready() and advance()");
  if (snap.index <= log_.snapshot().index) return std::nullopt;
  TENURE_CHECK(log_.term(snap.index) == snap.term,
               "snapshot point " << snap.index << " term " << snap.term << " is not in the log");
  // A follower being sent the current snapshot, or that has just installed
  // it, continues from the entries right after it: keep them, or it would
  // need the next snapshot (seen: two snapshots for one catch-up of
  // 1,000,000 shards), and at a high write rate or on a slow link it would
  // never catch up. Followers further behind need a snapshot anyway and
  // pin nothing; so the log holds at most one threshold more.
  const LogIndex current = log_.snapshot().index;
  LogIndex pinned(~uint64_t(0));
  for (const auto& [id, pr] : progress_) {
    if (id == config_.id) continue;
    LogIndex needs = pr.state == ProgressState::kSnapshot ? pr.pending_snapshot : std::max(pr.match, pr.next.prev());
    if (needs >= current) pinned = std::min(pinned, needs);
  }
  LogIndex compact_to = compaction_point(snap.index, keep_entries, pinned);
  log_.compact(std::move(snap), compact_to);
  return std::make_pair(log_.snapshot(), compact_to);
}

}  // namespace tenure::consensus
