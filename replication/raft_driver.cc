// The driver loop: start, ticks, Ready processing, apply and snapshots
// (DESIGN.md "One pure core").
#include "replication/raft_driver.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "common/log.h"

namespace tenure::replication {

using consensus::Entry;
using consensus::EntryType;
using consensus::Ready;

RaftDriver::RaftDriver(DriverOptions options, Executor& executor, LogStore& store, PeerSender& peers,
                       Machine& machine, DriverEvents& events)
    : options_(std::move(options)),
      executor_(executor),
      store_(store),
      peers_(peers),
      machine_(machine),
      events_(events) {
  // The lease stands on the members' refusal to vote, which check-quorum
  // brings; without it no read may rest on a lease.
  if (!options_.raft.check_quorum) options_.read_lease_ms = 0;
  options_.raft.leader_lease = options_.read_lease_ms > 0;
}

RaftDriver::~RaftDriver() = default;

void RaftDriver::start() {
  consensus::InitialState init;
  bool first_start = store_.empty();
  if (first_start) {
    // The bootstrap entries are durable before the core may act on them.
    if (!options_.bootstrap_voters.empty()) init = consensus::bootstrap_state(options_.bootstrap_voters);
    if (!init.entries.empty()) store_.bootstrap(init);
    log_info("raft", "event=first_start node=" + id().str() + " bootstrap_voters=" +
                         std::to_string(options_.bootstrap_voters.size()));
  } else {
    init = store_.load();
    if (!init.snapshot.empty() && init.snapshot.data && !machine_.restore(*init.snapshot.data)) {
      // Its checksum matched, so this build cannot read what an earlier one
      // wrote: one clear line, no assertion (issue 8).
      store_.fatal("op=load error=\"the snapshot at index " + std::to_string(init.snapshot.index.value()) +
                   " does not decode\"");
    }
    log_info("raft", "event=recovered node=" + id().str() + " term=" + std::to_string(init.hard_state.term.value()) +
                         " snapshot_index=" + std::to_string(init.snapshot.index.value()) +
                         " entries=" + std::to_string(init.entries.size()));
  }
  applied_ = init.snapshot.index;
  last_snapshot_bytes_ = init.snapshot.data ? init.snapshot.data->size() : 0;
  // Read ids name ReadIndex requests on the wire, and an answer to an
  // earlier life's request may still arrive after a restart: ids of
  // different lives must never collide, or that answer releases a new read
  // at an older index (tenure-sim seed 100051: a read at index 28 after a
  // write at 29 was acknowledged). The steady clock only grows.
  next_read_id_ = std::max<uint64_t>(1, executor_.now_ns());
  const LogIndex snapshot_index = init.snapshot.index;
  raft_ = std::make_unique<consensus::Raft>(options_.raft, std::move(init));
  raft_->set_entry_reader(&store_);
  raft_->release_snapshot_data(snapshot_index);  // restored; the store keeps the bytes
  for (const auto& [member, addr] : options_.configured_addresses) peers_.set_peer_address(member, addr);
  stopped_ = false;
  // Not now: whoever started the driver sees it started before any Ready.
  schedule_process();
}

void RaftDriver::stop() {
  stopped_ = true;
  fail_all(NodeErrc::kStopped, "controller is shutting down");
}

void RaftDriver::tick() {
  if (stopped_) return;
  const consensus::Role before = raft_->role();
  const int silent_ticks = raft_->ticks_since_leader_heard();
  const NodeId leader = raft_->leader();
  raft_->tick();
  log_timeout(before, silent_ticks, leader);
  expire_requests();
  if (raft_->role() == consensus::Role::kLeader) {
    if (options_.promote_learners) maybe_promote_learners();
    if (leader_tick_hook_) leader_tick_hook_();
  } else if (options_.probe_silent_leader) {
    maybe_probe_leader();
  }
  renew_lease();
  if (every_tick_hook_) every_tick_hook_();
  if (persisting_ || applying_) {
    // The Ready being persisted or applied holds back the next one; a leader's
    // heartbeats and appends need not wait for that fsync (§10.2.1), and a
    // sync slower than the election timeout would otherwise depose it.
    // Only from the tick: appends answering each response are still batched
    // with the next Ready.
    auto early = raft_->take_early_messages();
    if (!early.empty()) peers_.send(std::move(early));
  }
  process();
  check_hand_over();
}

void RaftDriver::log_timeout(consensus::Role before, int silent_ticks, const NodeId& leader) {
  // A tick changes the role only on a timeout: the election timeout of a
  // follower (or of a candidate whose election failed), or a leader's check
  // quorum. Said once per change, as etcd's "is starting a new election":
  // why leadership moved is the first question after it did.
  const consensus::Role after = raft_->role();
  if (after == before) return;
  const std::string term = std::to_string(raft_->term().value());
  if (before == consensus::Role::kLeader) {
    log_warn("raft", "event=stepped_down node=" + id().str() + " term=" + term +
                         " detail=\"heard from no majority within an election timeout (check quorum)\"");
  } else if (after == consensus::Role::kPreCandidate || after == consensus::Role::kCandidate) {
    log_info("raft", "event=election_timeout node=" + id().str() + " term=" + term + " role=" +
                         consensus::to_string(after) + " silent_ticks=" + std::to_string(silent_ticks) +
                         " leader=" + (leader.empty() ? std::string("none") : leader.str()));
  }
}

void RaftDriver::schedule_process() {
  if (process_scheduled_) return;
  process_scheduled_ = true;
  // Posting (not running now) lets every request already queued on the
  // serial context join this batch: one Ready, one fsync (group commit).
  executor_.post([this] {
    process_scheduled_ = false;
    process();
  });
}

void RaftDriver::process() {
  if (stopped_ || persisting_ || applying_) return;  // on_persisted() or continue_apply() calls us again
  flush_proposals();
  while (raft_->has_ready()) {
    Ready rd = raft_->ready();
    events_.ready(rd, *raft_);
    // §10.2.1: the leader's appends go out while its own fsync runs.
    if (!rd.early_messages.empty()) peers_.send(std::move(rd.early_messages));
    if (rd.must_sync()) {
      start_persist(std::move(rd));
      break;
    }
    if (!handle_ready(rd)) break;  // its entries are applied over later turns
    if (raft_->has_committed_to_apply()) {
      // A backlog to apply (a Ready hands out a bounded share of it): the
      // rest in a later turn of the serial context, so that ticks and peer
      // messages queued meanwhile run in between. A follower applying a
      // million grants in one go missed heartbeats for over an election
      // timeout, and so did its leader's (integration.scale_failover).
      schedule_process();
      break;
    }
  }
  events_.processed();
}

void RaftDriver::start_persist(Ready rd) {
  persisting_ = true;
  auto ready = std::make_shared<Ready>(std::move(rd));
  const size_t durable = durable_commits(*ready);
  executor_.persist([this, ready] {
    uint64_t t0 = executor_.now_ns();
    store_.persist(*ready);  // fatal inside on failure: nothing unpersisted is ever acknowledged
    events_.persisted(*ready, executor_.now_ns() - t0);
    executor_.post([this, ready] { on_persisted(*ready); });
  });
  // Entries committed and already on this member's disk need not wait for
  // the fsync of the entries behind them: apply them beside it, as etcd's
  // server hands them to its apply loop before it saves the next ones. Under
  // load every write used to wait for the fsync of the batch after its own
  // before it was applied and answered. The persist thread reads only what
  // the Ready persists (its hard state, snapshot and entries), never
  // committed_entries.
  applied_early_ = apply_entries(ready->committed_entries, 0, durable);
  if (applied_early_ > 0) release_reads();
}

size_t RaftDriver::durable_commits(const Ready& rd) const {
  if (rd.snapshot) return 0;  // installed first, after its persist
  const LogIndex stable = raft_->log().stable();
  size_t n = 0;
  while (n < rd.committed_entries.size() && rd.committed_entries[n].index <= stable &&
         rd.committed_entries[n].type != EntryType::kConfChange) {
    ++n;
  }
  return n;
}

void RaftDriver::on_persisted(Ready& rd) {
  persisting_ = false;
  // Stopped meanwhile: what was persisted stays durable; nothing is sent or
  // answered any more (every request already failed with kStopped).
  if (stopped_) return;
  if (!handle_ready(rd)) return;  // continue_apply() finishes it
  next_turn();
}

void RaftDriver::next_turn() {
  // Entries that committed as the Ready advanced are applied in a turn of
  // their own (DriverOptions::max_apply_ms_per_turn is a turn's budget).
  if (raft_->has_committed_to_apply()) {
    schedule_process();
  } else {
    process();
  }
}

/// The rest of a Ready once it is durable: send, apply, advance. False when
/// its entries did not all fit in this turn (DriverOptions::max_apply_ms_per_turn):
/// continue_apply() applies the rest in later turns, then finishes it.
bool RaftDriver::handle_ready(Ready& rd) {
  if (rd.snapshot) install_snapshot(*rd.snapshot);
  if (!rd.messages.empty()) peers_.send(std::move(rd.messages));
  size_t next = apply_entries(rd.committed_entries, std::exchange(applied_early_, 0));
  if (next < rd.committed_entries.size()) {
    applying_ = std::make_shared<Ready>(std::move(rd));
    apply_next_ = next;
    executor_.post([this] { continue_apply(); });
    return false;
  }
  finish_ready(rd);
  return true;
}

void RaftDriver::continue_apply() {
  // Stopped meanwhile: the Ready is never advanced, as after a persist.
  if (stopped_ || !applying_) return;
  apply_next_ = apply_entries(applying_->committed_entries, apply_next_);
  if (apply_next_ < applying_->committed_entries.size()) {
    executor_.post([this] { continue_apply(); });
    return;
  }
  std::shared_ptr<Ready> rd = std::move(applying_);
  applying_.reset();
  finish_ready(*rd);
  next_turn();
}

/// Once a Ready's entries are applied: its reads, advance, a snapshot.
void RaftDriver::finish_ready(Ready& rd) {
  for (const auto& rs : rd.read_states) {
    auto it = reads_.find(rs.request_id);
    if (it == reads_.end()) continue;
    it->second.index = rs.index;
    extend_lease(it->second);
  }
  for (uint64_t read_id : rd.dropped_reads) {
    auto it = reads_.find(read_id);
    if (it == reads_.end()) continue;
    NodeError err{NodeErrc::kNotLeader, "leadership changed during the read; retry", raft_->leader()};
    auto done = std::move(it->second.done);
    reads_.erase(it);
    done(&err, LogIndex(0));
  }
  release_reads();
  raft_->advance();
  maybe_snapshot();
  flush_proposals();
}

void RaftDriver::install_snapshot(const consensus::Snapshot& snap) {
  auto it = staged_snapshots_.find(snap.index);
  // Only a snapshot that decoded in step() reaches the core (step_one), so
  // the staged state is there; restoring again would cost a second decode.
  if (it == staged_snapshots_.end() || !it->second) {
    store_.fatal("op=install error=\"snapshot " + std::to_string(snap.index.value()) + " was never decoded\"");
  }
  machine_.install(std::move(it->second));
  applied_ = snap.index;
  staged_snapshots_.erase(staged_snapshots_.begin(), std::next(it));
  // Proposals the snapshot jumped over: whether they committed is not
  // known here (the log they were in is gone).
  while (!pending_.empty() && pending_.begin()->first <= snap.index) {
    auto done = std::move(pending_.begin()->second.done);
    pending_.erase(pending_.begin());
    events_.proposals("timeout", 1);
    NodeError err{NodeErrc::kTimeout, "outcome unknown: a snapshot replaced the log past this proposal", raft_->leader()};
    done(&err);
  }
  applied_bytes_ = 0;
  last_snapshot_bytes_ = snap.data ? snap.data->size() : 0;
  raft_->release_snapshot_data(snap.index);  // durable in the store since this Ready persisted
  events_.snapshot_installed(snap);
  log_info("raft", "event=snapshot_installed node=" + id().str() + " index=" + std::to_string(snap.index.value()));
}

size_t RaftDriver::apply_entries(std::vector<Entry>& entries, size_t from, size_t end) {
  end = std::min(end, entries.size());
  if (from >= end) return from;
  // At least one entry a turn; past the turn's budget the rest waits for a
  // later turn, after the ticks and peer messages queued meanwhile. A
  // leader's Ready of failover pieces (each up to 256 KiB, thousands of
  // grants) held its strand past an election timeout on a loaded machine
  // (CI, integration.scale_failover), and its heartbeats with it.
  const uint64_t started_ns = executor_.now_ns();
  const uint64_t budget_ns = uint64_t{options_.max_apply_ms_per_turn} * 1000000;
  size_t i = from;
  for (; i < end; ++i) {
    if (i > from) {
      if (options_.max_apply_entries_per_turn != 0 && i - from >= options_.max_apply_entries_per_turn) break;
      if (budget_ns != 0 && executor_.now_ns() - started_ns >= budget_ns) break;
    }
    Entry& e = entries[i];
    if (e.type == EntryType::kConfChange) {
      apply_conf_change(e);
    } else if (!e.data.empty()) {  // empty: a leader's no-op
      machine_.apply(e);
      applied_bytes_ += e.data.size();
    }
    applied_ = e.index;
    events_.applied(e);
    complete(e.index, e.term);
  }
  if (apply_hook_) apply_hook_();
  return i;
}

void RaftDriver::complete(LogIndex index, Term term) {
  auto it = pending_.find(index);
  if (it == pending_.end()) return;
  PendingProposal p = std::move(it->second);
  pending_.erase(it);
  if (p.term != term) {
    // Another leader's entry took this index: ours was lost with its term.
    events_.proposals("dropped", 1);
    NodeError err{NodeErrc::kDropped, "proposal lost in a leader change; retry", raft_->leader()};
    p.done(&err);
    return;
  }
  events_.proposals("applied", 1);
  events_.committed(executor_.now_ns() - p.proposed_ns);
  p.done(nullptr);
}

void RaftDriver::release_reads() {
  LogIndex applied = applied_;
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.index != LogIndex(0) && it->second.index <= applied) {
      auto done = std::move(it->second.done);
      LogIndex index = it->second.index;
      it = reads_.erase(it);
      done(nullptr, index);
    } else {
      ++it;
    }
  }
}

void RaftDriver::maybe_snapshot() {
  if (made_snapshot_) record_snapshot();
  if (snapshot_in_flight_ || executor_.now_ms() < snapshot_retry_ms_) return;
  const auto& log = raft_->log();
  bool by_entries = log.applied() >= next_snapshot_by_entries();
  bool by_bytes = options_.snapshot_threshold_bytes > 0 && applied_bytes_ >= options_.snapshot_threshold_bytes &&
                  applied_bytes_ >= 2 * std::max(last_snapshot_bytes_, machine_.approximate_snapshot_bytes());
  if (!by_entries && !by_bytes && !snapshot_forced_) return;
  snapshot_forced_ = false;
  snapshot_in_flight_ = true;
  snapshot_start_bytes_ = applied_bytes_;
  snapshot_keep_ = by_entries ? options_.snapshot_keep_entries
                              : std::min(options_.snapshot_keep_entries, options_.snapshot_keep_entries_by_bytes);
  machine_.make_snapshot(raft_->snapshot_point(), [this](MadeSnapshot made) {
    executor_.post([this, made = std::move(made)]() mutable {
      made_snapshot_ = std::move(made);
      // The core takes it between Readies; during a persist or an apply
      // over several turns, finish_ready calls maybe_snapshot once that
      // Ready is advanced.
      if (!stopped_ && !persisting_ && !applying_) maybe_snapshot();
    });
  });
}

void RaftDriver::snapshot_now() {
  if (stopped_) return;
  snapshot_forced_ = true;
  snapshot_retry_ms_ = 0;
  // Between Readies now; else finish_ready() calls maybe_snapshot().
  if (!persisting_ && !applying_) maybe_snapshot();
}

uint64_t staggered_snapshot_index(uint64_t last, uint64_t every, size_t rank, size_t voters) {
  if (voters < 2 || every < 2) return last + every;
  // This member's points are phase + k * every; the next one at least half
  // an interval past the last snapshot (intervals stay within 0.5-1.5x).
  const uint64_t phase = every * rank / voters;
  const uint64_t earliest = last + every / 2;
  if (earliest <= phase) return phase;
  return phase + (earliest - phase + every - 1) / every * every;
}

LogIndex RaftDriver::next_snapshot_by_entries() const {
  const uint64_t last = raft_->log().snapshot().index.value();
  const auto& voters = raft_->conf().voters;
  auto self = voters.find(id());
  if (!options_.stagger_snapshots || self == voters.end()) return LogIndex(last + options_.snapshot_threshold_entries);
  size_t rank = static_cast<size_t>(std::distance(voters.begin(), self));
  return LogIndex(staggered_snapshot_index(last, options_.snapshot_threshold_entries, rank, voters.size()));
}

void RaftDriver::record_snapshot() {
  MadeSnapshot made = std::move(*made_snapshot_);
  made_snapshot_.reset();
  snapshot_in_flight_ = false;
  if (!made.snapshot.data) {
    snapshot_retry_ms_ = executor_.now_ms() + 10000;  // out of memory or killed: not again at once
    return;
  }
  LogIndex index = made.snapshot.index;
  // The core keeps the snapshot's index, term and configuration only: its
  // file is durable already, and the data goes to the store's row (for its
  // checksum) and is then let go.
  consensus::Snapshot meta = made.snapshot;
  meta.data.reset();
  auto compacted = raft_->compact_at(std::move(meta), snapshot_keep_);
  if (!compacted) {
    // A snapshot from the leader got there first: this one is older.
    log_info("raft", "event=snapshot_superseded node=" + id().str() + " index=" + std::to_string(index.value()));
    return;
  }
  applied_bytes_ -= std::min(applied_bytes_, snapshot_start_bytes_);
  last_snapshot_bytes_ = made.snapshot.data->size();
  events_.snapshot_taken(made, compacted->second);
  consensus::Snapshot snap = std::move(compacted->first);
  snap.data = std::move(made.snapshot.data);
  // On the persist context, after the Ready persisted before it and before
  // any later one (its jobs run in order). The data is durable already, so
  // this is a small transaction: the row naming it and the compacted
  // entries' deletion. A crash before it lands leaves the older snapshot
  // and the full log, which is as good.
  executor_.persist([this, snap = std::move(snap), compact_to = compacted->second, made = std::move(made)] {
    uint64_t t1 = executor_.now_ns();
    store_.save_snapshot(snap, compact_to);
    log_info("raft", "event=snapshot_taken node=" + id().str() + " index=" + std::to_string(snap.index.value()) +
                         " bytes=" + std::to_string(snap.data->size()) + " forked=" + (made.forked ? "true" : "false") +
                         " pause_us=" + std::to_string(made.pause_us) + " total_ms=" + std::to_string(made.total_ms) +
                         " save_ms=" + std::to_string((executor_.now_ns() - t1) / 1000000));
  });
}

void RaftDriver::expire_requests() {
  uint64_t now = executor_.now_ms();
  // Deadlines grow with the index and the read id: stop at the first live one.
  while (!pending_.empty() && pending_.begin()->second.deadline_ms <= now) {
    events_.proposals("timeout", 1);
    NodeError err{NodeErrc::kTimeout, "proposal not committed in time", raft_->leader()};
    auto done = std::move(pending_.begin()->second.done);
    pending_.erase(pending_.begin());
    done(&err);
  }
  while (!reads_.empty() && reads_.begin()->second.deadline_ms <= now) {
    NodeError err{NodeErrc::kTimeout, "read index not confirmed in time", raft_->leader()};
    auto done = std::move(reads_.begin()->second.done);
    reads_.erase(reads_.begin());
    done(&err, LogIndex(0));
  }
}

void RaftDriver::fail_all(NodeErrc code, const std::string& message) {
  NodeError err{code, message, raft_ ? raft_->leader() : NodeId()};
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [i, p] : pending) p.done(&err);
  auto queued = std::move(queued_);
  queued_.clear();
  queued_bound_.reset();
  for (auto& q : queued) q.done(&err);
  auto reads = std::move(reads_);
  reads_.clear();
  for (auto& [read_id, r] : reads) r.done(&err, LogIndex(0));
}

}  // namespace tenure::replication
