// The event loop, the members and the network; and the observation of every
// member after each step, which drives the checkers.
#include "sim/simulator.h"

#include <cmath>
#include <sstream>

#include "common/log.h"

namespace tenure::sim {

using consensus::ConfChangeType;
using consensus::MessageType;
using consensus::Role;

Simulator::Simulator(RunOptions o, std::ostream* trace)
    : o_(std::move(o)),
      trace_(trace),
      rng_(o_.seed ^ 0x73696D756C617465ULL),  // "simulate"
      net_(o_, rng_),
      clients_(o_, rng_, static_cast<ClientEnv&>(*this), history_, acked_writes_, reads_) {
  if (o_.fleet) fleet_ = std::make_unique<Fleet>(o_, static_cast<FleetEnv&>(*this));
  // The members run the controller's driver, whose log lines would be noise here.
  set_logging(false);
}

Simulator::~Simulator() = default;

SimResult Simulator::run() {
  std::vector<consensus::NodeId> ids;
  for (int i = 1; i <= o_.nodes; ++i) ids.emplace_back("n" + std::to_string(i));
  next_node_id_ = o_.nodes + 1;
  InitialState boot = consensus::bootstrap_state(ids);
  for (const auto& id : ids) {
    Node& n = add_node(id, boot);
    members_.insert(id);
    schedule_tick(n, rng_.range(1, n.tick_us()));
  }
  clients_.start();
  if (fleet_) fleet_->start();
  if (o_.crash_gap_ticks > 0) q_.at(draw_gap_us(o_.crash_gap_ticks), [this] { crash_fault(); });
  if (o_.partition_gap_ticks > 0) q_.at(draw_gap_us(o_.partition_gap_ticks), [this] { partition_fault(); });
  if (o_.churn_gap_ticks > 0) q_.at(draw_gap_us(o_.churn_gap_ticks), [this] { churn_fault(); });
  if (o_.transfer_gap_ticks > 0) q_.at(draw_gap_us(o_.transfer_gap_ticks), [this] { transfer_fault(); });
  if (o_.pause_gap_ticks > 0) q_.at(draw_gap_us(o_.pause_gap_ticks), [this] { pause_fault(); });
  q_.at(o_.ticks * kTickUs, [this] { start_liveness(); });
  while (phase_ != Phase::kDone && !violation_ && q_.run_next()) {
  }
  stats_.events = q_.executed();
  stats_.committed = history_.last().value();
  stats_.writes_acked = clients_.stats().writes_acked;
  stats_.reads_ok = clients_.stats().reads_ok;
  stats_.end_ticks = q_.now() / kTickUs;
  if (fleet_) stats_.fleet = fleet_->stats();
  return SimResult{violation_, stats_};
}

Node& Simulator::add_node(const NodeId& id, const InitialState& initial) {
  Node::Settings s;
  s.raft.election_ticks = o_.election_ticks;
  s.raft.heartbeat_ticks = o_.heartbeat_ticks;
  s.raft.max_inflight_msgs = o_.max_inflight;
  s.raft.max_bytes_per_msg = o_.max_bytes_per_msg;
  s.raft.max_committed_bytes_per_ready = o_.apply_bytes_per_ready;
  s.raft.max_resident_log_bytes = o_.resident_log_bytes;
  if (!o_.bug.empty() && !is_fleet_bug(o_.bug)) consensus::enable_planted_bug(s.raft.knobs, o_.bug);
  // Clock skew: this member's ticks come a little faster or slower.
  double rate = 1.0 + o_.skew * (2.0 * rng_.unit() - 1.0);
  s.tick_us = static_cast<int64_t>(static_cast<double>(kTickUs) * rate);
  // The fastest clock the skew allows (Fleet::max_node_rate_ counts on it).
  if (o_.fleet && o_.fleet_options.clocks_at_bound) {
    s.tick_us = static_cast<int64_t>(std::floor(static_cast<double>(kTickUs) * (1.0 - o_.skew)));
  }
  s.compact_every = o_.compact_every;
  s.keep_entries = o_.keep_entries;
  s.promote_learners = o_.promote_learners;
  s.probe_leader = o_.probe_leader;
  s.apply_entries_per_turn = o_.apply_entries_per_turn;
  s.read_lease_ms = o_.read_lease_ms;
  for (int i = 1; i <= o_.nodes; ++i) s.configured_addresses.emplace(NodeId("n" + std::to_string(i)), "sim://n" + std::to_string(i));
  NodeHooks& hooks = *this;
  StateMachineFactory sm = [] { return std::make_unique<KvRegister>(); };
  if (o_.fleet) sm = [this] { return Fleet::make_state_machine(o_.fleet_options); };
  auto n = std::make_unique<Node>(id, s, std::move(sm), hooks);
  n->store().set_initial(initial);
  Node& ref = *n;
  nodes_.emplace(id, std::move(n));
  ref.start(rng_.next());
  observe(ref);
  return ref;
}

void Simulator::schedule_tick(Node& n, int64_t delay_us) {
  NodeId id = n.id();
  uint64_t life = n.incarnation();
  q_.at(q_.now() + delay_us, [this, id, life] {
    Node* n = node(id);
    if (!n->up() || n->incarnation() != life) return;  // crashed since: its new life ticks on its own
    if (paused(id)) {
      // A paused process's timer fires once when it resumes, not once per
      // interval missed.
      return run_on(id, [this, id, life] {
        Node* x = node(id);
        if (x->up() && x->incarnation() == life) schedule_tick(*x, 0);
      });
    }
    n->tick();
    observe(*n);
    if (fleet_ && n->up() && n->incarnation() == life) fleet_->on_tick(*n);
    if (n->up() && n->incarnation() == life) schedule_tick(*n, n->tick_us());
  });
}

Node* Simulator::node(const NodeId& id) {
  auto it = nodes_.find(id);
  return it == nodes_.end() ? nullptr : it->second.get();
}

Node* Simulator::leader() {
  Node* best = nullptr;
  for (auto& [id, n] : nodes_) {
    if (!n->up() || n->raft().role() != Role::kLeader) continue;
    if (!best || n->raft().term() > best->raft().term()) best = n.get();
  }
  return best;
}

std::vector<NodeId> Simulator::up_nodes() const {
  std::vector<NodeId> out;
  for (const auto& [id, n] : nodes_) {
    if (n->up()) out.push_back(id);
  }
  return out;
}

std::vector<NodeId> Simulator::members() const { return {members_.begin(), members_.end()}; }

void Simulator::report(Check c) {
  if (c && !violation_) {
    violation_ = std::move(c);
    trace("VIOLATION " + violation_->describe());
    for (const auto& [id, n] : nodes_) trace("  " + status_line(*n));
  }
}

void Simulator::trace(const std::string& line) {
  if (trace_) *trace_ << "t=" << q_.now() << " " << line << "\n";
}

std::string Simulator::status_line(const Node& n) const {
  std::ostringstream os;
  os << n.id() << ":";
  if (n.decommissioned()) return os.str() + "removed";
  if (!n.up()) return os.str() + "down";
  auto s = n.raft().status();
  os << to_string(s.role) << "/t" << s.term << "/c" << s.commit << "/a" << n.applied() << "/l" << s.last_index
     << "/lead=" << s.leader << "/voters=";
  for (const auto& v : s.conf.voters) os << v << (v == *s.conf.voters.rbegin() ? "" : ",");
  os << "/durable_commit=" << n.store().hard_state().commit;
  return os.str();
}

// ---- Network ----

void Simulator::on_send(Node& from, Message m, bool early, std::optional<Term> acked_term) {
  ++stats_.messages;
  report(ack_persisted_.on_send(from.id(), m, from.store(), acked_term));
  report(durable_.on_send(from.id(), m, from.store().hard_state()));
  if (!node(m.to)) return;
  uint64_t life = from.incarnation();
  // A snapshot whose bytes its sender no longer holds (Node::send) fails
  // as a lost one does: the transport reports it.
  bool unreadable = m.type == MessageType::kSnapshot && !m.snapshot->data;
  if (unreadable) ++stats_.snapshots_unreadable;
  auto delays = unreadable ? std::vector<int64_t>() : net_.route(m.from, m.to);
  if (delays.empty()) {
    ++stats_.dropped;
    if (m.type == MessageType::kSnapshot) {
      // The transport tells the sender a snapshot did not get through.
      NodeId f = m.from, t = m.to;
      after(kTickUs, [this, f, life, t] { report_snapshot(f, life, t, false); });
    }
    return;
  }
  (void)early;
  for (size_t k = 0; k < delays.size(); ++k) {
    Message copy = k + 1 < delays.size() ? m : std::move(m);
    q_.at(q_.now() + delays[k], [this, msg = std::move(copy), life]() mutable { deliver(std::move(msg), life); });
  }
}

void Simulator::deliver(Message m, uint64_t sender_incarnation) {
  if (paused(m.to)) {
    // In its socket's buffer until it resumes.
    auto shared = std::make_shared<Message>(std::move(m));
    return run_on(shared->to, [this, shared, sender_incarnation] { deliver(std::move(*shared), sender_incarnation); });
  }
  Node* to = node(m.to);
  bool snapshot = m.type == MessageType::kSnapshot;
  NodeId from = m.from, dest = m.to;
  Node* sender = node(from);
  bool sender_crashed = sender->incarnation() != sender_incarnation;
  if (!to->up() || !net_.link_up(from, dest) || (sender_crashed && rng_.chance(o_.crash_loses_inflight))) {
    ++stats_.dropped;
    if (snapshot) report_snapshot(from, sender_incarnation, dest, false);
    return;
  }
  if (trace_) {
    std::ostringstream os;
    os << "deliver " << to_string(m.type) << " " << from << "->" << dest << " term=" << m.term
       << " index=" << m.index << " log_term=" << m.log_term << " entries=" << m.entries.size()
       << " commit=" << m.commit << (m.reject ? " reject" : "") << " ctx=" << m.context;
    trace(os.str());
  }
  MessageType type = m.type;
  auto dropped = to->step(std::move(m));
  // An answer or read from a sender this member does not know of (a removed
  // member still running) is refused by the driver by design; every other
  // refusal of an honest message is a bug, a stranger's vote request
  // included (a candidate added after this member's configuration).
  bool stranger_answer = dropped && *dropped == "unknown_sender" && type != MessageType::kVote &&
                         type != MessageType::kPreVote;
  if (dropped && !stranger_answer && o_.bug.empty()) {
    // Every member here is honest: the core's input checks (raft_check.cc)
    // must never refuse what a correct peer sends, however the network
    // delays, duplicates or reorders it.
    report(Violation{"honest-message-dropped", dest, to->raft().term(), LogIndex(0),
                     std::string(to_string(type)) + " from " + from.str() + " dropped: " + *dropped});
  }
  observe(*to);
  if (snapshot) report_snapshot(from, sender_incarnation, dest, true);
}

void Simulator::report_snapshot(const NodeId& from, uint64_t incarnation, const NodeId& to, bool delivered) {
  if (paused(from)) return run_on(from, [=, this] { report_snapshot(from, incarnation, to, delivered); });
  Node* n = node(from);
  if (!n || !n->up() || n->incarnation() != incarnation) return;
  n->report_snapshot(to, delivered);
  observe(*n);
}

void Simulator::submit(const NodeId& to, const ClientRequest& r) {
  after(rng_.range(0, o_.delay_max_us), [this, to, r] {
    run_on(to, [this, to, r] {
      Node* n = node(to);
      if (!n || !n->up()) return;  // lost; the client times out
      n->handle(r);
      observe(*n);
    });
  });
}

// ---- Hooks from the members ----

void Simulator::on_persisted(Node& n, const Ready& rd, const HardState& before, Term prev_term,
                             const std::optional<std::string>& contract_error) {
  if (contract_error) report(Violation{"ready-contract", n.id(), n.raft().term(), LogIndex(0), *contract_error});
  if (rd.hard_state) report(durable_.on_persist(n.id(), before, *rd.hard_state));
  if (!rd.entries.empty()) report(log_matching_.observe(n.id(), prev_term, rd.entries));
}

void Simulator::schedule(Node& n, int64_t delay_us, std::function<void()> fn) {
  NodeId id = n.id();
  uint64_t life = n.incarnation();
  auto work = std::make_shared<std::function<void()>>(std::move(fn));
  q_.at(q_.now() + delay_us, [this, id, life, work] {
    run_on(id, [this, id, life, work] {
      Node* x = node(id);
      if (!x->up() || x->incarnation() != life) return;  // the crash lost it
      (*work)();
      observe(*x);
    });
  });
}

int64_t Simulator::fsync_us(Node&) {
  if (!o_.async_fsync) return 0;
  // A stall is a fault: none once the liveness phase has begun.
  if (phase_ == Phase::kSafety && o_.fsync_stall > 0 && rng_.chance(o_.fsync_stall)) return rng_.range(kTickUs, 3 * o_.election_ticks * kTickUs);
  return rng_.range(o_.fsync_min_us, o_.fsync_max_us);
}

int64_t Simulator::handoff_us(Node&) { return o_.handoff_max_us > 0 ? rng_.range(0, o_.handoff_max_us) : 0; }

uint64_t Simulator::steady_ns(const Node& n) const {
  // A member's steady clock runs at its tick rate: a member whose ticks come
  // every tick_us counts kTickUs of time for each.
  double rate = static_cast<double>(kTickUs) / static_cast<double>(n.tick_us());
  return static_cast<uint64_t>(static_cast<double>(q_.now()) * rate * 1000.0);
}

bool Simulator::link_healthy(const Node& n, const NodeId& peer) const {
  auto it = nodes_.find(peer);
  return it != nodes_.end() && it->second->up() && net_.link_up(n.id(), peer);
}

void Simulator::probe(Node& n, const NodeId& peer, std::function<void(bool)> done) {
  ++stats_.probes;
  NodeId from = n.id();
  uint64_t life = n.incarnation();
  auto answer = [this, from, life, done](int64_t delay_us, bool refused) {
    after(delay_us, [this, from, life, done, refused] {
      run_on(from, [this, from, life, done, refused] {
        Node* m = node(from);
        if (!m || !m->up() || m->incarnation() != life) return;
        if (refused) ++stats_.probes_refused;
        done(refused);
        observe(*m);
      });
    });
  };
  // A TCP connect's fate: the SYN may be lost (or its link cut: no answer
  // until the prober gives up), and the answer comes back over the other
  // link. Refused only by a peer that is down when the SYN gets there.
  constexpr int64_t kProbeTimeoutUs = 250'000;
  auto there = node(peer) ? net_.route(from, peer) : std::vector<int64_t>{};
  if (there.empty()) return answer(kProbeTimeoutUs, false);
  int64_t out_us = std::min(there.front(), kProbeTimeoutUs);
  q_.at(q_.now() + out_us, [this, from, peer, answer, out_us] {
    Node* target = node(peer);
    bool refused = target && !target->up();
    auto back = net_.route(peer, from);
    if (back.empty() || out_us + back.front() > kProbeTimeoutUs) return answer(kProbeTimeoutUs - out_us, false);
    answer(back.front(), refused);
  });
}

void Simulator::on_applied(Node& n, const Entry& e) {
  bool fresh = history_.at(e.index) == nullptr;
  report(applied_prefix_.on_apply(history_, n.id(), n.raft().term(), e));
  if (fresh) note_committed(e.index);
  if (fleet_) fleet_->on_applied(n, e);
  if (e.type != consensus::EntryType::kConfChange) return;
  auto cc = consensus::decode_conf_change(e.data);
  if (!cc || cc->type != ConfChangeType::kRemoveNode || removed_.count(cc->node)) return;
  // Removed for good: clients forget it, and unless this run keeps removed
  // members running (an operator who never shuts them down), it is shut
  // down once the removal has committed.
  NodeId gone = cc->node;
  removed_.insert(gone);
  members_.erase(gone);
  trace("removed " + gone.str());
  if (o_.keep_removed) return;
  after(rng_.range(0, 20 * kTickUs), [this, gone] {
    Node* x = node(gone);
    if (!x || x->decommissioned()) return;
    trace("decommission " + gone.str());
    x->decommission();
  });
}

void Simulator::on_restored(Node& n, const Snapshot& s) {
  ++stats_.snapshots_installed;
  trace("restore " + n.id().str() + " snapshot index=" + std::to_string(s.index.value()));
  report(applied_prefix_.on_restore(history_, n.id(), s, n.state_machine()));
  if (fleet_) fleet_->on_restored(n);
}

void Simulator::on_read_back(Node& n, const std::vector<Entry>& entries) {
  stats_.read_back += entries.size();
  // Only committed payloads are released, so what comes back must be the
  // committed history itself (the core checks index and term; this checks
  // the command).
  for (const Entry& e : entries) {
    const CommittedEntry* c = history_.at(e.index);
    if (c == nullptr || !c->known) continue;  // committed before this checker saw it
    if (c->term != e.term || c->type != e.type || c->data != e.data) {
      report(Violation{"read-back", n.id(), e.term, e.index,
                       "read back " + describe_entry(e.term, e.type, e.data) + " where " +
                           describe_entry(c->term, c->type, c->data) + " is committed"});
    }
  }
}

void Simulator::on_started(Node& n, const InitialState& recovered) {
  report(durable_.on_restart(n.id(), recovered.hard_state, n.raft().term(), n.raft().status().vote));
  applied_prefix_.on_start(n.id(), recovered.snapshot.index);
  if (!recovered.snapshot.empty()) report(applied_prefix_.on_restore(history_, n.id(), recovered.snapshot, n.state_machine()));
  observed_commit_[n.id()] = n.raft().log().committed();
  if (fleet_) fleet_->on_started(n);
}

void Simulator::on_reply(Node& n, ClientReply r) {
  if (r.client == kFleetClient) {
    if (fleet_) fleet_->on_reply(n, r);
    return;
  }
  if (r.client >= 0) {
    clients_.on_reply(r);
    return;
  }
  // The liveness probe.
  if (r.attempt != probe_attempt_) return;
  probe_attempt_ = 0;
  if (r.kind != ReplyKind::kOk) return;
  std::string data = KvRegister::encode_put("probe", "p" + std::to_string(probe_count_));
  report(acked_writes_.on_ack(history_, AckedWrites::Ack{r.server, r.index, r.term, data}));
  reads_.on_write_ack(r.index);
  probe_index_ = r.index;
  stats_.liveness_ticks = (q_.now() - liveness_start_us_) / kTickUs;
  trace("probe committed at index " + std::to_string(r.index.value()));
}

void Simulator::on_crashed(Node& n) {
  auto led = leaders_.find(n.id());
  if (led != leaders_.end() && phase_ == Phase::kSafety) leader_crash_ = std::make_pair(q_.now(), led->second);
  leaders_.erase(n.id());
  if (fleet_) fleet_->on_crashed(n);
  if (n.decommissioned()) return;
  ++stats_.crashes;
  trace("crash " + n.id().str());
  NodeId id = n.id();
  if (phase_ == Phase::kLiveness) {
    // A torn crash whose Ready was cut before the faults stopped: back at once.
    after(kTickUs, [this, id] { restart(id); });
    return;
  }
  if (phase_ != Phase::kSafety) return;
  after(rng_.range(1, 2 * o_.down_ticks) * kTickUs, [this, id] { restart(id); });
}

// ---- Observation: the checkers that look at a member's state ----

void Simulator::observe(Node& n) {
  if (!n.up()) {
    leaders_.erase(n.id());
    return;
  }
  const consensus::Raft& r = n.raft();
  const consensus::RaftLog& log = r.log();
  LogIndex& seen = observed_commit_[n.id()];
  if (log.committed() > seen) {
    // Entries the member holds as committed (those it skipped through a
    // snapshot were recorded by the member that took it).
    for (LogIndex i = std::max(seen.next(), log.first_index()); i <= log.committed(); i = i.next()) {
      bool fresh = history_.at(i) == nullptr;
      report(applied_prefix_.on_commit(history_, n.id(), r.term(), log.entry(i)));
      if (fresh) note_committed(i);
    }
    // A leader's commit index lands on an earlier term's entry only under
    // the planted Figure-8 bug; counted to tune the fault mix that exposes it.
    if (r.role() == Role::kLeader && log.term(log.committed()) != r.term()) {
      ++stats_.old_term_commits;
      trace("old-term commit by " + n.id().str() + " term=" + std::to_string(r.term().value()) +
            " commit=" + std::to_string(log.committed().value()));
    }
    seen = log.committed();
    if (r.role() == Role::kLeader && rng_.chance(o_.react_commit)) react_to_leader(n.id(), /*crash_allowed=*/false);
  }
  if (r.role() != Role::kLeader) {
    leaders_.erase(n.id());
    return;
  }
  report(leader_per_term_.observe(n.id(), r.term()));
  auto it = leaders_.find(n.id());
  if (it != leaders_.end() && it->second == r.term()) return;
  leaders_[n.id()] = r.term();
  ++stats_.leaders;
  if (leader_crash_ && r.term() > leader_crash_->second) {
    ++stats_.crash_failovers;
    stats_.crash_failover_us += q_.now() - leader_crash_->first;
    leader_crash_.reset();
  }
  trace("leader " + n.id().str() + " term=" + std::to_string(r.term().value()) +
        " last=" + std::to_string(log.last_index().value()) + " commit=" + std::to_string(log.committed().value()));
  report(check_leader_completeness(n.id(), r.term(), log, history_, LogIndex(1), history_.last()));
  check_electors();
  if (rng_.chance(o_.react_leader)) react_to_leader(n.id(), /*crash_allowed=*/true);
  // A membership change the moment a leader takes office, while its log may
  // still hold an uncommitted change of an earlier term (the single-server
  // change hazard of the thesis errata).
  if (o_.churn_gap_ticks > 0 && phase_ == Phase::kSafety && rng_.chance(0.2)) {
    NodeId id = n.id();
    Term term = r.term();
    after(0, [this, id, term] {
      Node* l = node(id);
      if (phase_ == Phase::kSafety && l->up() && l->raft().role() == Role::kLeader && l->raft().term() == term) {
        churn_step(*l);
      }
    });
  }
}

void Simulator::note_committed(LogIndex i) {
  for (const auto& [id, term] : leaders_) {
    Node* l = node(id);
    if (l && l->up()) report(check_leader_completeness(id, term, l->raft().log(), history_, i, i));
  }
  if (i == history_.last()) check_electors();
}

void Simulator::check_electors() {
  LogIndex h = history_.last();
  const CommittedEntry* c = history_.at(h);
  if (!c) return;
  std::vector<ElectorView> views;
  for (const auto& [id, n] : nodes_) {
    if (n->decommissioned()) continue;
    ElectorView v;
    v.id = id;
    const DurableStore& st = n->store();
    v.durable_last_index = st.last_index();
    v.durable_last_term = st.term(v.durable_last_index).value_or(Term(0));
    if (n->up()) {
      const consensus::RaftLog& log = n->raft().log();
      v.voters = conf_for_votes(log, n->raft().conf()).voters;
      v.can_campaign = v.voters.count(id) > 0;
      v.last_term = log.last_term();
      v.last_index = log.last_index();
      v.holds_committed = h < log.first_index() || log.term(h) == c->term;
    }
    views.push_back(std::move(v));
  }
  report(check_commit_safety(views, h, c->term));
}

}  // namespace tenure::sim
