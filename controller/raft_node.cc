// The driver loop: ticks, Ready processing and apply (DESIGN.md "One pure core").
#include "controller/raft_node.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include <boost/asio/post.hpp>

#include "consensus/assert.h"
#include "common/log.h"
#include "common/steady_clock.h"
#include "controller/wire_limits.h"
#include "storage/raft_storage.h"

namespace tenure::controller {

namespace asio = boost::asio;
using consensus::Entry;
using consensus::EntryType;
using consensus::Ready;

uint64_t wall_clock_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

namespace {
}  // namespace

RaftNode::RaftNode(asio::io_context& io, NodeOptions options, storage::RaftStorage& storage, PeerSender& peers,
                   RaftMetrics& metrics)
    : io_(io),
      strand_(asio::make_strand(io)),
      ticker_(strand_),
      options_(std::move(options)),
      storage_(storage),
      peers_(peers),
      metrics_(metrics),
      drops_(metrics.messages_dropped),
      state_(options_.limits) {}

RaftNode::~RaftNode() = default;

void RaftNode::start() {
  // Everything on the strand: requests that arrived before (answered "not
  // serving") and the state restored here never race.
  asio::post(strand_, [this] { start_on_strand(); });
}

void RaftNode::start_on_strand() {
  consensus::InitialState init;
  if (storage_.empty()) {
    if (!options_.bootstrap_voters.empty()) {
      init = consensus::bootstrap_state(options_.bootstrap_voters);
      // The bootstrap entries are persisted by the first Ready like any other.
    }
    log_info("raft", "event=first_start node=" + options_.id.str() + " bootstrap_voters=" +
                         std::to_string(options_.bootstrap_voters.size()));
  } else {
    init = storage_.load();
    if (!init.snapshot.empty() && !state_.restore(*init.snapshot.data)) {
      // Its checksum matched, so this build cannot read what an earlier one
      // wrote: one clear line, no assertion (issue 8).
      storage::storage_fatal("op=load path=" + storage_.path() + " error=\"the snapshot at index " +
                             std::to_string(init.snapshot.index.value()) + " does not decode\"");
    }
    log_info("raft", "event=recovered node=" + options_.id.str() + " term=" +
                         std::to_string(init.hard_state.term.value()) + " snapshot_index=" +
                         std::to_string(init.snapshot.index.value()) + " entries=" +
                         std::to_string(init.entries.size()));
  }
  consensus::RaftConfig cfg;
  cfg.id = options_.id;
  cfg.election_ticks = options_.election_ticks;
  cfg.heartbeat_ticks = options_.heartbeat_ticks;
  cfg.election_jitter_ticks = options_.election_jitter_ticks;
  cfg.random_seed = steady_ns();
  // Bounded entries and messages (wire_limits.h).
  cfg.max_entry_bytes = kMaxEntryBytes;
  cfg.max_bytes_per_msg = kMaxAppendBytes;
  cfg.entry_overhead_bytes = kEntryWireOverheadBytes;
  // The bootstrap log is durable before the core may act on it.
  if (storage_.empty() && !init.entries.empty()) storage_.bootstrap(init);
  raft_ = std::make_unique<consensus::Raft>(cfg, std::move(init));
  for (const auto& [id, addr] : options_.configured_addresses) peers_.set_peer_address(id, addr);
  stopped_ = false;
  process();
  ticker_.expires_at(std::chrono::steady_clock::now());
  schedule_tick();
}

void RaftNode::stop() {
  asio::post(strand_, [this] {
    stopped_ = true;
    ticker_.cancel();
    fail_all(NodeErrc::kStopped, "controller is shutting down");
    if (!raft_) return;
  });
}

void RaftNode::schedule_tick() {
  // A fixed cadence, not "tick_ms after the last tick ended": time in the
  // core must not stretch under load.
  auto now = std::chrono::steady_clock::now();
  auto next = ticker_.expiry() + std::chrono::milliseconds(options_.tick_ms);
  ticker_.expires_at(next < now ? now : next);
  ticker_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopped_) return;
    on_tick();
    schedule_tick();
  });
}

void RaftNode::on_tick() {
  raft_->tick();
  expire_requests();
  ++ticks_;
  if (raft_->role() == consensus::Role::kLeader) {
    maybe_promote_learners();
    maybe_mark_started();
    if (tick_hook_) tick_hook_();
  }
  if (every_tick_hook_) every_tick_hook_();
  process();
  check_hand_over();
}

void RaftNode::schedule_process() {
  if (process_scheduled_) return;
  process_scheduled_ = true;
  // Posting (not running now) lets every request already queued on the
  // strand join this batch: one Ready, one fsync (group commit).
  asio::post(strand_, [this] {
    process_scheduled_ = false;
    process();
  });
}

void RaftNode::post(std::function<void()> fn) { asio::post(strand_, guarded(std::move(fn), "post")); }

void RaftNode::post_off_strand(std::function<void()> fn) { asio::post(io_, std::move(fn)); }

void RaftNode::process() {
  if (stopped_ || persisting_) return;  // on_persisted() calls us again
  flush_proposals();
  while (raft_->has_ready()) {
    Ready rd = raft_->ready();
    // §10.2.1: the leader's appends go out while its own fsync runs.
    if (!rd.early_messages.empty()) peers_.send(std::move(rd.early_messages));
    if (rd.must_sync()) {
      start_persist(std::move(rd));
      break;
    }
    handle_ready(rd);
  }
  update_summary();
}

void RaftNode::start_persist(Ready rd) {
  persisting_ = true;
  auto ready = std::make_shared<Ready>(std::move(rd));
  persister_.submit([this, ready] {
    uint64_t t0 = steady_ns();
    storage_.persist(*ready);  // fatal inside on failure: nothing unpersisted is ever acknowledged
    metrics_.append_seconds.Observe(static_cast<double>(steady_ns() - t0) / 1e9);
    if (!ready->entries.empty()) metrics_.append_batch_entries.Observe(static_cast<double>(ready->entries.size()));
    asio::post(strand_, [this, ready] { on_persisted(*ready); });
  });
}

void RaftNode::on_persisted(Ready& rd) {
  persisting_ = false;
  // Stopped meanwhile: what was persisted stays durable; nothing is sent or
  // answered any more (every request already failed with kStopped).
  if (stopped_) return;
  handle_ready(rd);
  process();
}

/// The rest of a Ready once it is durable: send, apply, advance.
void RaftNode::handle_ready(Ready& rd) {
  if (rd.snapshot) install_snapshot(*rd.snapshot);
  if (!rd.messages.empty()) peers_.send(std::move(rd.messages));
  apply_entries(rd.committed_entries);
  for (const auto& rs : rd.read_states) {
    auto it = reads_.find(rs.request_id);
    if (it != reads_.end()) it->second.index = rs.index;
  }
  for (uint64_t id : rd.dropped_reads) {
    auto it = reads_.find(id);
    if (it == reads_.end()) continue;
    NodeError err{NodeErrc::kNotLeader, "leadership changed during the read; retry", raft_->leader()};
    it->second.done(&err, nullptr);
    reads_.erase(it);
  }
  release_reads();
  raft_->advance();
  maybe_snapshot();
  flush_proposals();
}

void RaftNode::install_snapshot(const consensus::Snapshot& snap) {
  auto it = staged_snapshots_.find(snap.index);
  // Only a snapshot that decoded in step() reaches the core (step_one), so
  // the staged state is there; restoring again would cost a second decode.
  TENURE_CHECK(it != staged_snapshots_.end() && it->second,
               "node " << options_.id << " installs snapshot " << snap.index << " that was never decoded");
  state_ = std::move(*it->second);
  staged_snapshots_.erase(staged_snapshots_.begin(), std::next(it));
  metrics_.snapshots_installed.Increment();
  log_info("raft", "event=snapshot_installed node=" + options_.id.str() + " index=" + std::to_string(snap.index.value()));
}

void RaftNode::apply_entries(std::vector<Entry>& entries) {
  if (entries.empty()) return;
  for (auto& e : entries) {
    if (e.type == EntryType::kConfChange) {
      apply_conf_change(e);
      continue;
    }
    if (e.data.empty()) {  // a leader's no-op
      complete(e.index, e.term, nullptr);
      continue;
    }
    auto cmd = controlplane::decode_command(e.data);
    if (!cmd) {
      // Committed: it cannot be skipped (the state would diverge from the
      // group's) nor applied. One line and exit 1, as for a corrupt durable
      // record, never an assertion's core dump. Entries carry a CRC32C on
      // the wire and on disk, so this is a command of a newer build: run
      // this member with the build the leader runs.
      std::fprintf(stderr,
                   "FATAL apply node=%s index=%llu term=%llu error=\"a committed entry does not decode (a command "
                   "of a newer build? upgrade this member)\"\n",
                   options_.id.str().c_str(), static_cast<unsigned long long>(e.index.value()),
                   static_cast<unsigned long long>(e.term.value()));
      std::fflush(stderr);
      std::_Exit(1);
    }
    controlplane::ApplyResult r = state_.apply(*cmd);
    complete(e.index, e.term, &r);
  }
  if (apply_hook_) apply_hook_();
}

void RaftNode::complete(LogIndex index, Term term, const controlplane::ApplyResult* result) {
  auto it = pending_.find(index);
  if (it == pending_.end()) return;
  PendingProposal p = std::move(it->second);
  pending_.erase(it);
  if (p.term != term) {
    // Another leader's entry took this index: ours was lost with its term.
    metrics_.proposals.Add({{"result", "dropped"}}).Increment();
    NodeError err{NodeErrc::kDropped, "proposal lost in a leader change; retry", raft_->leader()};
    p.done(&err, nullptr);
    return;
  }
  metrics_.proposals.Add({{"result", "applied"}}).Increment();
  metrics_.commit_seconds.Observe(static_cast<double>(steady_ns() - p.proposed_ns) / 1e9);
  controlplane::ApplyResult empty;
  p.done(nullptr, result ? result : &empty);
}

void RaftNode::release_reads() {
  LogIndex applied = raft_->log().applied();
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.index != LogIndex(0) && it->second.index <= applied) {
      it->second.done(nullptr, &state_);
      it = reads_.erase(it);
    } else {
      ++it;
    }
  }
}

void RaftNode::maybe_snapshot() {
  if (made_snapshot_) record_snapshot();
  if (snapshot_in_flight_ || steady_ms() < snapshot_retry_ms_) return;
  const auto& log = raft_->log();
  if (log.applied().value() < log.snapshot().index.value() + options_.snapshot_threshold_entries) return;
  snapshot_in_flight_ = true;
  snapshots_.start(state_, raft_->snapshot_point(), [this](MadeSnapshot made) {
    asio::post(strand_, [this, made = std::move(made)]() mutable {
      made_snapshot_ = std::move(made);
      // The core takes it between Readies; during a persist, handle_ready
      // calls maybe_snapshot once that Ready is advanced.
      if (!stopped_ && !persisting_) maybe_snapshot();
    });
  });
}

void RaftNode::record_snapshot() {
  MadeSnapshot made = std::move(*made_snapshot_);
  made_snapshot_.reset();
  snapshot_in_flight_ = false;
  if (!made.snapshot.data) {
    snapshot_retry_ms_ = steady_ms() + 10000;  // out of memory or killed: not again at once
    return;
  }
  metrics_.snapshot_pause_seconds.Observe(static_cast<double>(made.pause_us) / 1e6);
  metrics_.snapshot_seconds.Observe(static_cast<double>(made.total_ms) / 1e3);
  LogIndex index = made.snapshot.index;
  auto compacted = raft_->compact_at(std::move(made.snapshot), options_.snapshot_keep_entries);
  if (!compacted) {
    // A snapshot from the leader got there first: this one is older.
    log_info("raft", "event=snapshot_superseded node=" + options_.id.str() + " index=" + std::to_string(index.value()));
    return;
  }
  // On the persist worker, after the Ready persisted before it and before
  // any later one (its queue is in order). The file is durable already, so
  // this is a small transaction: the row naming it and the compacted
  // entries' deletion. A crash before it lands leaves the older snapshot
  // and the full log on disk, which is as good.
  persister_.submit([this, snap = compacted->first, compact_to = compacted->second, made = std::move(made)] {
    uint64_t t1 = steady_ns();
    storage_.save_snapshot(snap, compact_to);
    log_info("raft", "event=snapshot_taken node=" + options_.id.str() + " index=" +
                         std::to_string(snap.index.value()) + " bytes=" + std::to_string(snap.data->size()) +
                         " forked=" + (made.forked ? "true" : "false") + " pause_us=" + std::to_string(made.pause_us) +
                         " total_ms=" + std::to_string(made.total_ms) +
                         " save_ms=" + std::to_string((steady_ns() - t1) / 1000000));
  });
  metrics_.snapshots_taken.Increment();
}

void RaftNode::expire_requests() {
  uint64_t now = steady_ms();
  // Deadlines grow with the index and the read id: stop at the first live one.
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->second.deadline_ms > now) break;
    {
      metrics_.proposals.Add({{"result", "timeout"}}).Increment();
      NodeError err{NodeErrc::kTimeout, "proposal not committed in time", raft_->leader()};
      auto done = std::move(it->second.done);
      it = pending_.erase(it);
      done(&err, nullptr);
    }
  }
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.deadline_ms > now) break;
    {
      NodeError err{NodeErrc::kTimeout, "read index not confirmed in time", raft_->leader()};
      auto done = std::move(it->second.done);
      it = reads_.erase(it);
      done(&err, nullptr);
    }
  }
}

void RaftNode::fail_all(NodeErrc code, const std::string& message) {
  NodeError err{code, message, raft_ ? raft_->leader() : NodeId()};
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& [i, p] : pending) p.done(&err, nullptr);
  auto queued = std::move(queued_);
  queued_.clear();
  queued_bound_.reset();
  for (auto& q : queued) q.done(&err, nullptr);
  auto reads = std::move(reads_);
  reads_.clear();
  for (auto& [id, r] : reads) r.done(&err, nullptr);
}

}  // namespace tenure::controller
