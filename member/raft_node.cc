// The controller's Raft member: the driver on an Asio strand, a persist
// thread, SQLite, the control plane's state machine and Prometheus.
#include "member/raft_node.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>

#include <boost/asio/post.hpp>

#include "common/log.h"
#include "common/steady_clock.h"
#include "peers/wire_limits.h"
#include "storage/raft_storage.h"

namespace tenure::member {

namespace asio = boost::asio;

uint64_t wall_clock_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

namespace {

// What the strand applies in one turn at most: about 2,000 grants with long
// ids, 50-150 ms on a busy 2-core machine, so that ticks, heartbeats and
// peer messages get in between the turns of a large backlog.
constexpr size_t kMaxAppliedBytesPerReady = size_t{512} << 10;

// Payloads of applied entries kept in memory for followers a little behind
// (a few seconds of writes at full rate); older ones are read back from
// raft.db. Without it the log between two snapshots held up to 64 MiB on
// every member (twice the snapshot's size at 1,000,000 shards).
constexpr size_t kResidentLogBytes = size_t{8} << 20;

replication::DriverOptions driver_options(const NodeOptions& o) {
  replication::DriverOptions d = o;
  d.raft.id = o.id;
  d.raft.election_ticks = o.election_ticks;
  d.raft.heartbeat_ticks = o.heartbeat_ticks;
  d.raft.election_jitter_ticks = o.election_jitter_ticks;
  d.raft.random_seed = steady_ns();
  // Bounded entries and messages (wire_limits.h).
  d.raft.max_entry_bytes = peers::kMaxEntryBytes;
  d.raft.max_bytes_per_msg = peers::kMaxAppendBytes;
  d.raft.entry_overhead_bytes = peers::kEntryWireOverheadBytes;
  d.raft.max_committed_bytes_per_ready = kMaxAppliedBytesPerReady;
  d.raft.max_resident_log_bytes = kResidentLogBytes;
  // Two ticks: a Ready of failover pieces is applied over several turns,
  // with heartbeats and peer messages in between.
  d.max_apply_ms_per_turn = 2 * o.tick_ms;
  return d;
}

/// A leader's snapshot decoded aside until the Ready that installs it.
struct StagedMachine final : replication::StagedState {
  explicit StagedMachine(const controlplane::Limits& limits) : state(limits) {}
  controlplane::StateMachine state;
};

/// RaftNode::StrandWork's labels, in its order.
const char* const kStrandWorkNames[] = {"tick", "leader_tasks", "peer_messages", "posted", "apply", "request",
                                        "stale_read"};

}  // namespace

RaftNode::RaftNode(asio::io_context& io, NodeOptions options, storage::RaftStorage& storage, PeerSender& peers,
                   RaftMetrics& metrics, HistoryStore* history)
    : io_(io),
      strand_(asio::make_strand(io)),
      ticker_(strand_),
      options_(std::move(options)),
      storage_(storage),
      peers_(peers),
      metrics_(metrics),
      drops_(metrics.messages_dropped),
      history_(history),
      state_(options_.limits),
      driver_(driver_options(options_), *this, storage, peers, *this, *this) {
  state_.set_history(history_);
  static_assert(std::size(kStrandWorkNames) == static_cast<size_t>(StrandWork::kCount));
  const prometheus::Histogram::BucketBoundaries buckets{0.001, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                        0.25,  0.5,   1,    2.5,   5,    10};
  for (size_t i = 0; i < strand_busy_.size(); ++i) {
    strand_busy_[i] = &metrics_.strand_busy_seconds.Add({{"work", kStrandWorkNames[i]}}, buckets);
  }
  driver_.set_leader_tick_hook([this] {
    timed(StrandWork::kLeaderTasks, [this] {
      maybe_mark_started();
      if (tick_hook_) tick_hook_();
    });
  });
}

RaftNode::~RaftNode() = default;

uint64_t RaftNode::now_ms() const { return steady_ms(); }
uint64_t RaftNode::now_ns() const { return steady_ns(); }

void RaftNode::start() {
  // Everything on the strand: requests that arrived before (answered "not
  // serving") and the state restored here never race.
  asio::post(strand_, [this] {
    driver_.start();
    ticking_ = true;
    ticker_.expires_at(std::chrono::steady_clock::now());
    schedule_tick();
  });
}

void RaftNode::stop() {
  asio::post(strand_, [this] {
    ticking_ = false;
    ticker_.cancel();
    driver_.stop();
  });
}

void RaftNode::schedule_tick() {
  // A fixed cadence, not "tick_ms after the last tick ended": time in the
  // core must not stretch under load.
  // Late is measured from when the tick was due, not from the clamped
  // timer: a tick that ran for a second (a leader planning a mass failover
  // on the strand) delays the next by that second, and went uncounted.
  auto now = std::chrono::steady_clock::now();
  tick_due_ = ticker_.expiry() + std::chrono::milliseconds(options_.tick_ms);
  ticker_.expires_at(tick_due_ < now ? now : tick_due_);
  ticker_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || !ticking_) return;
    note_tick_delay(std::chrono::steady_clock::now() - tick_due_);
    ++ticks_;
    timed(StrandWork::kTick, [this] {
      driver_.tick();
      maybe_catch_up();
      // The writer's lock, not taken per Ready: ten times a second is enough for a scrape.
      if (history_ && ticks_ % 10 == 0) update_history_metrics(*history_);
    });
    schedule_tick();
  });
}

void RaftNode::maybe_catch_up() {
  if (caught_up_.load(std::memory_order_relaxed) || catch_up_in_flight_ || ticks_ < next_catch_up_tick_) return;
  catch_up_in_flight_ = true;
  // A linearizable read started now completes once this member has applied
  // everything committed before it started, so everything it applied in an
  // earlier life. (A commit index in the current term is not enough: the
  // durable one may be in that term and still behind what was applied.)
  driver_.read([this](const NodeError* err, LogIndex index) {
    catch_up_in_flight_ = false;
    if (err) {
      next_catch_up_tick_ = ticks_ + options_.heartbeat_ticks;  // no leader yet, or it did not confirm: again soon
      return;
    }
    caught_up_.store(true, std::memory_order_release);
    log_info("raft", "event=caught_up node=" + options_.id.str() + " read_index=" + std::to_string(index.value()) +
                         " applied_index=" + std::to_string(driver_.applied_index().value()) +
                         " revision=" + std::to_string(state_.revision().value()));
    update_summary();
  });
}

void RaftNode::note_tick_delay(std::chrono::steady_clock::duration late) {
  double late_s = std::chrono::duration<double>(late).count();
  metrics_.tick_delay_seconds.Observe(late_s);
  // As etcd's "leader failed to send out heartbeat on time": late by more
  // than two heartbeat intervals, a follower waited for a heartbeat. Once a
  // second at most, so that an overloaded member does not also drown its log.
  auto late_ms = std::chrono::duration_cast<std::chrono::milliseconds>(late).count();
  if (late_ms >= static_cast<int64_t>(kStallMinMs)) {
    stalled_ms_ += static_cast<uint64_t>(late_ms);
    metrics_.stalled_seconds.Increment(static_cast<double>(late_ms) / 1000.0);
  }
  if (late_ms < 2 * static_cast<int64_t>(options_.heartbeat_ticks) * static_cast<int64_t>(options_.tick_ms)) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_late_tick_log_ < std::chrono::seconds(1)) return;
  last_late_tick_log_ = now;
  log_warn("raft", "event=tick_late node=" + options_.id.str() + " late_ms=" + std::to_string(late_ms) +
                       " leader=" + std::string(driver_.raft().role() == consensus::Role::kLeader ? "true" : "false") +
                       " hint=\"the Raft strand was busy: heartbeats went out late (CPU starved, or a long apply)\"");
}

int64_t RaftNode::thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

void RaftNode::note_strand_busy(StrandWork work, std::chrono::steady_clock::time_point started, const char* detail,
                                size_t bytes, int64_t cpu_started_ns) {
  auto now = std::chrono::steady_clock::now();
  auto held = now - started;
  strand_busy_[static_cast<size_t>(work)]->Observe(std::chrono::duration<double>(held).count());
  // Two heartbeat intervals, as event=tick_late: a follower noticed. Once a
  // second at most, unless it held the strand for half an election timeout.
  auto held_ms = std::chrono::duration_cast<std::chrono::milliseconds>(held).count();
  const int64_t tick_ms = static_cast<int64_t>(options_.tick_ms);
  if (held_ms < 2 * options_.heartbeat_ticks * tick_ms) return;
  if (held_ms < options_.election_ticks * tick_ms / 2 && now - last_busy_log_ < std::chrono::seconds(1)) return;
  last_busy_log_ = now;
  std::string line = "event=strand_busy node=" + options_.id.str() + " work=" + kStrandWorkNames[static_cast<size_t>(work)] +
                     " held_ms=" + std::to_string(held_ms);
  if (cpu_started_ns >= 0) line += " cpu_ms=" + std::to_string((thread_cpu_ns() - cpu_started_ns) / 1000000);
  if (detail) line += std::string(" command=") + detail + " bytes=" + std::to_string(bytes);
  log_warn("raft", line + " hint=\"one piece of work held the Raft strand: heartbeats and peer messages waited\"");
}

void RaftNode::post(std::function<void()> fn) {
  asio::post(strand_, [this, fn = guarded(std::move(fn), "post")] { timed(StrandWork::kPosted, fn); });
}

void RaftNode::post_off_strand(std::function<void()> fn) { asio::post(io_, std::move(fn)); }

// ---- Requests: posted to the strand, where the driver takes them ----

void RaftNode::propose(controlplane::Command cmd, ProposeDone done) {
  asio::post(strand_, [this, cmd = std::move(cmd), done = guarded(std::move(done), "propose")]() mutable {
    timed(StrandWork::kRequest, [&] {
      // The leader stamps its time; apply never reads a clock.
      cmd.at_ms = wall_clock_ms();
      driver_.propose(controlplane::encode_command(cmd), [this, done = std::move(done)](const NodeError* err) {
        if (err) return done(err, nullptr);
        done(nullptr, &last_result_);
      });
    });
  });
}

void RaftNode::read(ReadDone done) {
  asio::post(strand_, [this, done = guarded(std::move(done), "read")]() mutable {
    timed(StrandWork::kRequest, [&] {
      driver_.read(
          [this, done = std::move(done)](const NodeError* err, LogIndex) { done(err, err ? nullptr : &state_); });
    });
  });
}

void RaftNode::read_stale(StateFn fn) {
  asio::post(strand_, [this, fn = guarded(std::move(fn), "read_stale")] {
    timed(StrandWork::kStaleRead, [&] { fn(state_); });
  });
}

void RaftNode::step(std::vector<consensus::Message> msgs) {
  asio::post(strand_, [this, msgs = std::move(msgs)]() mutable {
    timed(StrandWork::kPeerMessages, [&] { driver_.step(std::move(msgs)); });
  });
}

void RaftNode::report_snapshot(const NodeId& to, bool delivered) {
  asio::post(strand_, [this, to, delivered] { driver_.report_snapshot(to, delivered); });
}

void RaftNode::snapshot_now() {
  asio::post(strand_, [this] { driver_.snapshot_now(); });
}

void RaftNode::add_member(const NodeId& id, const std::string& address, SimpleDone done) {
  asio::post(strand_, [this, id, address, done = guarded(std::move(done), "add_member")]() mutable {
    driver_.add_member(id, address, std::move(done));
  });
}

void RaftNode::remove_member(const NodeId& id, SimpleDone done) {
  asio::post(strand_, [this, id, done = guarded(std::move(done), "remove_member")]() mutable {
    driver_.remove_member(id, std::move(done));
  });
}

void RaftNode::transfer_leadership(const NodeId& to, SimpleDone done) {
  asio::post(strand_, [this, to, done = guarded(std::move(done), "transfer_leadership")]() mutable {
    driver_.transfer_leadership(to, std::move(done));
  });
}

void RaftNode::hand_over_leadership(std::function<void(bool)> done) {
  asio::post(strand_, [this, done = guarded(std::move(done), "hand_over_leadership")]() mutable {
    driver_.hand_over_leadership(std::move(done));
  });
}

// ---- The machine: the control plane's state ----

std::unique_ptr<replication::StagedState> RaftNode::stage(const std::string& data) {
  auto staged = std::make_unique<StagedMachine>(options_.limits);
  if (!staged->state.restore(data)) return nullptr;
  return staged;
}

void RaftNode::install(std::unique_ptr<replication::StagedState> staged) {
  auto& next = static_cast<StagedMachine&>(*staged).state;
  // The leader's snapshot carries no history: what this member had may
  // name shards that are gone, and what happened up to it is missing here.
  if (history_) history_->reset(next.revision());
  state_ = std::move(next);
  state_.set_history(history_);
}

bool RaftNode::restore(const std::string& data) {
  if (!state_.restore(data)) return false;
  if (history_) history_->opened_at(state_.revision());
  return true;
}

void RaftNode::make_snapshot(consensus::Snapshot point, std::function<void(replication::MadeSnapshot)> done) {
  // The log up to the snapshot is dropped once it is recorded: the history
  // it produced must be on disk first (member/history_store.h).
  controlplane::Revision at = state_.revision();
  snapshots_.start(state_, std::move(point), [this, at, done = std::move(done)](replication::MadeSnapshot made) {
    if (history_ && made.snapshot.data) history_->sync_through(at);
    done(std::move(made));
  });
}

void RaftNode::apply(const consensus::Entry& e) {
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
  auto started = std::chrono::steady_clock::now();
  last_result_ = state_.apply(*cmd);
  if (history_) history_->submit(state_.revision());
  note_strand_busy(StrandWork::kApply, started, controlplane::command_name(cmd->body), e.data.size());
}

void RaftNode::maybe_mark_started() {
  // About once a second, and only once this term's first entry committed.
  auto& raft = driver_.raft();
  if (marking_started_ || ticks_ % 100 != 0 || !raft.committed_in_current_term()) return;
  std::vector<std::string> ids;
  for (const auto& f : raft.status().followers) {
    // It acknowledged entries: it holds a log (and maybe a vote) it must never forget.
    bool took_part = f.id == options_.id || f.match > LogIndex(0);
    if (took_part && !state_.started_members().count(f.id.str())) ids.push_back(f.id.str());
  }
  if (ids.empty()) return;
  marking_started_ = true;
  controlplane::Command cmd{"", wall_clock_ms(), controlplane::MarkMembersStarted{std::move(ids)}};
  driver_.propose(controlplane::encode_command(cmd), [this](const NodeError*) { marking_started_ = false; });
}

// ---- Events: metrics and the summary ----

void RaftNode::proposals(const char* result, size_t count) {
  metrics_.proposals.Add({{"result", result}}).Increment(static_cast<double>(count));
}

void RaftNode::committed(uint64_t latency_ns) { metrics_.commit_seconds.Observe(static_cast<double>(latency_ns) / 1e9); }

void RaftNode::read_started(const char* path) {
  (std::string_view(path) == "lease" ? metrics_.reads_on_lease : metrics_.reads_by_round).Increment();
}

void RaftNode::queue_length(size_t proposals) { metrics_.proposal_queue.Set(static_cast<double>(proposals)); }

void RaftNode::persisted(const consensus::Ready& rd, uint64_t ns) {
  metrics_.append_seconds.Observe(static_cast<double>(ns) / 1e9);
  if (!rd.entries.empty()) metrics_.append_batch_entries.Observe(static_cast<double>(rd.entries.size()));
  // On the persist thread (the only one that touches last_slow_persist_log_).
  // Two heartbeat intervals, as event=tick_late; once a second at most.
  uint64_t ms = ns / 1000000;
  if (ms < 2 * static_cast<uint64_t>(options_.heartbeat_ticks) * options_.tick_ms) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_slow_persist_log_ < std::chrono::seconds(1)) return;
  last_slow_persist_log_ = now;
  size_t bytes = 0;
  for (const auto& e : rd.entries) bytes += e.data.size();
  log_warn("raft", "event=slow_persist node=" + options_.id.str() + " ms=" + std::to_string(ms) +
                       " entries=" + std::to_string(rd.entries.size()) + " bytes=" + std::to_string(bytes) +
                       " hint=\"writing and fsyncing raft.db was slow (disk, or CPU starved)\"");
}

void RaftNode::dropped(const char* reason, const NodeId& from, const char* type, const std::string& detail) {
  drops_.count(reason, from.str(), type, detail);
}

void RaftNode::snapshot_installed(const consensus::Snapshot&) { metrics_.snapshots_installed.Increment(); }

void RaftNode::snapshot_taken(const replication::MadeSnapshot& made, LogIndex) {
  metrics_.snapshot_pause_seconds.Observe(static_cast<double>(made.pause_us) / 1e6);
  metrics_.snapshot_seconds.Observe(static_cast<double>(made.total_ms) / 1e3);
  metrics_.snapshots_taken.Increment();
}

void RaftNode::update_history_metrics(const HistoryStore& history) {
  auto n = history.counts();
  metrics_.history_queued_records.Set(static_cast<double>(n.queued));
  metrics_.history_queued_bytes.Set(static_cast<double>(n.queued_bytes));
  metrics_.history_gap_through_revision.Set(static_cast<double>(history.gap_through().value()));
  // The store counts; the counters follow by the difference.
  metrics_.history_records_written.Increment(static_cast<double>(n.written - std::min(n.written, history_written_seen_)));
  metrics_.history_records_dropped.Increment(static_cast<double>(n.dropped - std::min(n.dropped, history_dropped_seen_)));
  history_written_seen_ = n.written;
  history_dropped_seen_ = n.dropped;
}

void RaftNode::update_summary() {
  const auto& raft = driver_.raft();
  NodeSummary s;
  s.id = options_.id;
  s.leader = raft.leader();
  s.term = raft.term();
  s.commit = raft.log().committed();
  s.applied = raft.log().applied();
  s.revision = state_.revision();
  s.is_leader = raft.role() == consensus::Role::kLeader;
  s.caught_up = caught_up_.load(std::memory_order_relaxed);
  s.leader_address = driver_.address_of(s.leader);
  const auto& conf = raft.conf();
  consensus::Status status;
  if (s.is_leader) status = raft.status();
  auto add = [&](const NodeId& id, bool learner) {
    MemberInfo m{id, driver_.address_of(id), learner ? "learner" : (id == s.leader ? "leader" : "follower"),
                 std::nullopt, std::nullopt, state_.started_members().count(id.str()) > 0};
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
  // A change is a leader or a term we had not followed: a follower whose
  // election timeout passed (its leader stalled) and that hears the same
  // leader again in the same term, its pre-vote lost, saw no change.
  if (!s.leader.empty() && (s.leader != last_leader_ || s.term != last_leader_term_)) {
    metrics_.leader_changes.Increment();
    log_info("raft", "event=leader_changed node=" + options_.id.str() + " leader=" + s.leader.str() +
                         " term=" + std::to_string(s.term.value()));
    last_leader_ = s.leader;
    last_leader_term_ = s.term;
  }
  metrics_.term.Set(static_cast<double>(s.term.value()));
  metrics_.commit_index.Set(static_cast<double>(s.commit.value()));
  metrics_.applied_index.Set(static_cast<double>(s.applied.value()));
  metrics_.log_payload_bytes.Set(static_cast<double>(driver_.raft().log().resident_bytes()));
  // The core counts (and restarts from 0 with a new core); the counter follows by the difference.
  uint64_t read_back = driver_.raft().log().read_back_entries();
  metrics_.log_entries_read_back.Increment(static_cast<double>(read_back - std::min(read_back, read_back_seen_)));
  read_back_seen_ = read_back;
  metrics_.is_leader.Set(s.is_leader ? 1 : 0);
  metrics_.revision.Set(static_cast<double>(s.revision.value()));
  metrics_.members.Set(static_cast<double>(s.members.size()));
  if (s.revision != metrics_revision_) {
    // The gauges only when something changed (the counts themselves are
    // kept by the state machine as workers and shards change).
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

}  // namespace tenure::member
