// The fleet: agents and controllers wired to the simulator, the network
// between them, clocks, and the checkers.
#include "sim/fleet.h"

#include <cmath>
#include <sstream>

#include "dataplane_agent/lease.h"
#include "sim/fleet_state_machine.h"

namespace tenure::sim {

Fleet::Fleet(const RunOptions& o, FleetEnv& env)
    : o_(o), f_(o.fleet_options), env_(env), rng_(o.seed ^ 0x666C65657472756EULL) {  // "fleetrun"
  // The fastest a member's clock can run: its tick interval is
  // kTickUs * rate (truncated) for a rate down to 1 - skew.
  max_node_rate_ = static_cast<double>(kTickUs) / std::floor(static_cast<double>(kTickUs) * (1.0 - o.skew));
  // Agents' clocks run no slower than (1 - kMaxClockDrift) times that: the
  // drift bound the lease is computed for. Some run exactly at it.
  double lo = (1.0 - agent::kMaxClockDrift) * max_node_rate_;
  if (env.tracing()) epochs_.set_trace([this](const std::string& line) { trace(line); });
  for (int k = 1; k <= f_.agents; ++k) {
    WorkerId id("w" + std::to_string(k));
    std::string zone = "z" + std::to_string((k - 1) % f_.zones + 1);
    double capacity = rng_.pick(std::vector<double>{1, 1, 2, 0.5});
    double rate = rng_.chance(f_.rate_at_bound) ? lo : lo + rng_.unit() * (max_node_rate_ * (1 + f_.agent_rate_spread) - lo);
    if (f_.clocks_at_bound) rate = lo;  // after the draws, so that the ones below stay as they were
    int64_t base = rng_.range(1'000'000'000'000, 1'000'000'000'000'000);
    agents_.push_back(std::make_unique<SimAgent>(id, zone, capacity, rate, base, f_, static_cast<AgentEnv&>(*this)));
    agent_index_[NodeId(id.str())] = agents_.size() - 1;
  }
}

Fleet::~Fleet() = default;

std::unique_ptr<StateMachine> Fleet::make_state_machine(const FleetOptions& o) {
  controlplane::Limits limits;
  limits.events_kept = o.events_kept;
  return std::make_unique<FleetStateMachine>(limits);
}

void Fleet::start() {
  for (size_t k = 0; k < agents_.size(); ++k) {
    after(rng_.range(0, 200'000), [this, k] { agents_[k]->start(); });
  }
  create_initial_shards();
  schedule(f_.create_gap_ms, &Fleet::create_fault);
  schedule(f_.delete_gap_ms, &Fleet::delete_fault);
  schedule(f_.drain_gap_ms, &Fleet::drain_fault);
  schedule(f_.move_gap_ms, &Fleet::move_fault);
  schedule(f_.pause_gap_ms, &Fleet::pause_fault);
  schedule(f_.crash_gap_ms, &Fleet::crash_fault);
  schedule(f_.leave_gap_ms, &Fleet::leave_fault);
  schedule(f_.cut_gap_ms, &Fleet::cut_fault);
  schedule(f_.mute_gap_ms, &Fleet::mute_fault);
  schedule(f_.isolate_gap_ms, &Fleet::isolate_fault);
}

// ---- Clocks ----

int64_t Fleet::clock_offset_ms(const NodeId& id) {
  auto [it, fresh] = clock_offsets_.try_emplace(id, 0);
  if (fresh) it->second = rng_.range(1'000'000, 1'000'000'000);
  return it->second;
}

uint64_t Fleet::clock_ms(const Node& n) {
  // A member's steady clock runs at its tick rate: a member whose ticks come
  // every tick_us counts kTickUs of time for each.
  double rate = static_cast<double>(kTickUs) / static_cast<double>(n.tick_us());
  auto ms = static_cast<int64_t>(std::floor(static_cast<double>(now()) * rate / 1000.0));
  return static_cast<uint64_t>(clock_offset_ms(n.id()) + ms);
}

uint64_t Fleet::wall_ms(const Node& n) {
  // Wall clocks roughly agree (NTP), each off by up to 50 ms.
  int64_t error = clock_offset_ms(n.id()) % 101 - 50;
  return static_cast<uint64_t>(1'700'000'000'000 + now() / 1000 + error);
}

// ---- Members ----

NodeController* Fleet::controller_of(const NodeId& id, uint64_t life) {
  Node* n = env_.fleet_node(id);
  return n && n->incarnation() == life ? controller(*n) : nullptr;
}

NodeController* Fleet::controller(Node& n) {
  if (!n.up()) return nullptr;
  auto it = controllers_.find(n.id());
  if (it != controllers_.end() && it->second->alive()) return it->second;
  all_controllers_.push_back(std::make_unique<NodeController>(n, f_, static_cast<ControllerEnv&>(*this)));
  controllers_[n.id()] = all_controllers_.back().get();
  return all_controllers_.back().get();
}

void Fleet::on_tick(Node& n) {
  if (auto* c = controller(n)) c->on_tick();
}

void Fleet::on_applied(Node& n, const Entry& e) {
  if (e.type != consensus::EntryType::kNormal || e.data.empty() || KvRegister::decode_put(e.data)) return;
  if (auto* c = controller(n)) c->on_applied();
  check_state(n, false);
  if (liveness_) check_settled();
}

void Fleet::on_restored(Node& n) { check_state(n, true); }

void Fleet::on_started(Node& n) {
  controller(n);
  check_state(n, true);
}

void Fleet::on_crashed(Node& n) { controllers_.erase(n.id()); }

void Fleet::on_reply(Node& n, const ClientReply& r) {
  if (auto* c = controller(n)) c->on_reply(r);
}

void Fleet::check_state(Node& n, bool fresh) {
  if (!n.up()) return;
  const auto& sm = static_cast<const FleetStateMachine&>(n.state_machine()).fleet();
  stats_.max_shards = std::max<uint64_t>(stats_.max_shards, sm.shards().size());
  env_.report(epochs_.on_state(n.id(), n.applied(), sm, fresh));
}

// ---- The network between agents and members ----

SimAgent* Fleet::agent(const NodeId& address) {
  auto it = agent_index_.find(address);
  return it == agent_index_.end() ? nullptr : agents_[it->second].get();
}

std::vector<int64_t> Fleet::route(const NodeId& from, const NodeId& to) {
  if (cut(from, to)) return {};
  return env_.fleet_route(from, to);
}

void Fleet::send(const NodeId& from, const NodeId& to, FleetRequest r) {
  if (tracing()) {
    trace("fleet: " + from.str() + " -> " + to.str() + " " + to_string(r.call) + (r.forwarded ? " forwarded" : "") +
          " #" + std::to_string(r.id));
  }
  for (int64_t d : route(from, to)) {
    after(d, [this, from, to, r] { deliver_request(from, to, r); });
  }
}

void Fleet::deliver_request(const NodeId& from, const NodeId& to, const FleetRequest& r) {
  Node* n = env_.fleet_node(to);
  if (!n || cut(from, to)) return;
  // A stopped process's kernel still accepts the connection: the call
  // waits, unanswered, until the member resumes; if it dies meanwhile, the
  // connection dies with it (a restarted member never sees the call).
  if (n->up()) {
    return env_.fleet_run_on(to, [this, from, to, r, life = n->incarnation()] {
      if (NodeController* c = controller_of(to, life)) c->on_request(from, r);
    });
  }
  // Nobody listens there: the connection is refused at once.
  if (n->decommissioned()) return;
  FleetAnswer a;
  a.id = r.id;
  a.status = FleetStatus::kUnavailable;
  for (int64_t back : route(to, from)) {
    after(back, [this, from, a] { deliver(from, a); });
  }
}

void Fleet::forward(const Node& from, const NodeId& to, FleetRequest r) { send(from.id(), to, std::move(r)); }

void Fleet::answer(const Node& from, const NodeId& to, FleetAnswer a) {
  NodeId node = from.id();
  if (tracing()) trace("fleet: " + node.str() + " -> " + to.str() + " " + to_string(a.status) + " #" + std::to_string(a.id));
  for (int64_t d : route(node, to)) {
    after(d, [this, node, to, a] {
      if (cut(node, to)) return;
      deliver(to, a);
    });
  }
}

void Fleet::deliver(const NodeId& to, const FleetAnswer& a) {
  if (SimAgent* ag = agent(to)) return ag->on_answer(a);
  // A member that forwarded the call relays the leader's answer (once it runs).
  if (Node* n = env_.fleet_node(to)) {
    env_.fleet_run_on(to, [this, to, a, life = n->incarnation()] {
      if (NodeController* c = controller_of(to, life)) c->on_forwarded_answer(a);
    });
  }
}

// ---- Checkers ----

void Fleet::changed(const WorkerId& id) {
  SimAgent* a = agent(NodeId(id.str()));
  if (!a) return;
  // An agent starts accepting a shard only in a step of its own (a grant,
  // a lease, a re-list), and time only ends acceptance: a new second writer
  // always involves the agent that just stepped. So its shards are checked
  // against every other agent as of now (one_writer_conflicts, the same
  // rule over every agent, is the checkers' unit-tested form).
  for (const auto& s : a->accepting()) {
    for (const auto& other : agents_) {
      if (other.get() == a) continue;
      if (auto e = other->accepts(s.shard)) {
        env_.report(one_writer_violation({s.shard, other->id(), *e, id, s.epoch}));
        break;
      }
    }
  }
  // What that checker reads moves only with the agent's tables.
  uint64_t& checked = table_checked_[id];
  if (checked != a->table_version()) {
    checked = a->table_version();
    env_.report(epochs_.on_agent(id, a->table(), a->durable()));
  }
  if (liveness_) check_settled();
}

void Fleet::check_settled() {
  if (settled_us_ >= 0) return;
  Node* l = env_.fleet_leader();
  if (!l || !l->raft().committed_in_current_term() || l->applied() < l->raft().log().committed()) return;
  const auto& sm = static_cast<const FleetStateMachine&>(l->state_machine()).fleet();
  std::map<WorkerId, std::vector<agent::ShardEpoch>> serving;
  for (const auto& a : agents_) {
    if (a->up() && !a->paused()) serving[a->id()] = a->accepting();
  }
  for (const auto& [id, s] : sm.shards()) {
    if (s.state != controlplane::ShardState::kActive) return;
    auto it = serving.find(s.worker);
    if (it == serving.end()) return;
    bool held = false;
    for (const auto& h : it->second) held = held || (h.shard == id && h.epoch == s.epoch);
    if (!held) return;
  }
  settled_us_ = now();
  stats_.settled_ms = (settled_us_ - liveness_start_us_) / 1000;
  trace("fleet: settled, every shard served (" + std::to_string(sm.shards().size()) + ")");
}

std::string Fleet::unsettled() {
  std::ostringstream os;
  Node* l = env_.fleet_leader();
  os << "fleet not settled:";
  if (!l) {
    os << " no leader;";
  } else {
    const auto& sm = static_cast<const FleetStateMachine&>(l->state_machine()).fleet();
    os << " leader " << l->id() << " shards";
    for (const auto& [id, s] : sm.shards()) {
      os << " " << id.str() << "=" << controlplane::to_string(s.state) << "@" << s.epoch << ":"
         << (s.worker.empty() ? "-" : s.worker.str());
    }
    os << "; workers";
    for (const auto& [id, w] : sm.workers()) os << " " << id.str() << "=" << controlplane::to_string(w.state);
    os << ";";
  }
  os << " agents";
  for (const auto& a : agents_) os << " " << a->status();
  return os.str();
}

int64_t Fleet::liveness_bound_us() const {
  // Dead workers declared, re-registered, placed, handed off (waiting a
  // lease out at worst), joined after the join delay, watches moved.
  uint64_t ms = 10 * f_.lease_ms + f_.join_delay_ms + 2 * f_.placement_interval_ms + f_.scaled_ms(15000) +
                f_.scaled_ms(10000) + 2000;
  // Placement grants at most max_assignments_per_pass unassigned shards a
  // pass, a pass at most every placement_min_interval_ms once the last one
  // committed: every shard ever created may be unassigned at once.
  uint64_t passes = static_cast<uint64_t>(next_shard_) / std::max<size_t>(1, f_.max_assignments_per_pass) + 1;
  ms += passes * (f_.placement_min_interval_ms + 4 * f_.min_call_ms);
  // Likewise a failover moves at most max_failovers_per_pass shards of dead
  // workers a pass, the next slice once the last one applied: every shard
  // may be on workers that died together.
  uint64_t slices = static_cast<uint64_t>(next_shard_) / std::max<size_t>(1, f_.max_failovers_per_pass) + 1;
  ms += slices * (f_.placement_min_interval_ms + 4 * f_.min_call_ms);
  // With programs, each planned move may first wait for its target to
  // prepare (up to the agent's or the leader's timeout, whichever is
  // shorter), and at most max_concurrent_moves are in flight: a drain of a
  // worker holding most shards is that many rounds of prepares.
  if (f_.program) {
    uint64_t rounds = static_cast<uint64_t>(next_shard_) / std::max<uint32_t>(1, f_.max_concurrent_moves) + 1;
    ms += rounds * (std::min(f_.prepare_timeout_ms, f_.controller_prepare_timeout_ms) + 4 * f_.min_call_ms);
  }
  return static_cast<int64_t>(ms) * 1000;
}

FleetStats Fleet::stats() const {
  FleetStats s = stats_;
  for (const auto& c : all_controllers_) s.decisions += c->decisions();
  for (const auto& a : agents_) {
    const AgentStats& as = a->stats();
    s.heartbeats_ok += as.heartbeats_ok;
    s.declared_dead += as.declared_dead;
    s.relists += as.relists;
    s.drains += as.drains;
    s.prepares += as.prepares;
    s.releases += as.releases;
    s.grants += as.grants;
  }
  return s;
}

void add(FleetStats& t, const FleetStats& s) {
  t.decisions += s.decisions;
  t.operator_ops += s.operator_ops;
  t.heartbeats_ok += s.heartbeats_ok;
  t.declared_dead += s.declared_dead;
  t.relists += s.relists;
  t.drains += s.drains;
  t.prepares += s.prepares;
  t.releases += s.releases;
  t.grants += s.grants;
  t.pauses += s.pauses;
  t.long_pauses += s.long_pauses;
  t.agent_crashes += s.agent_crashes;
  t.leaves += s.leaves;
  t.cuts += s.cuts;
  t.max_shards = std::max(t.max_shards, s.max_shards);
  t.settled_ms = std::max(t.settled_ms, s.settled_ms);
}

std::string describe(const FleetStats& s) {
  std::ostringstream os;
  os << "decisions=" << s.decisions << " operator_ops=" << s.operator_ops << " heartbeats=" << s.heartbeats_ok
     << " declared_dead=" << s.declared_dead << " relists=" << s.relists << " releases=" << s.releases
     << " grants=" << s.grants << " drains=" << s.drains << " prepares=" << s.prepares << " pauses=" << s.pauses << " long_pauses=" << s.long_pauses
     << " agent_crashes=" << s.agent_crashes << " leaves=" << s.leaves << " cuts=" << s.cuts
     << " max_shards=" << s.max_shards
     << " settled_ms=" << s.settled_ms;
  return os.str();
}

const char* to_string(FleetCall c) {
  switch (c) {
    case FleetCall::kRegister: return "register";
    case FleetCall::kHeartbeat: return "heartbeat";
    case FleetCall::kRelease: return "release";
    case FleetCall::kList: return "list";
    case FleetCall::kWatch: return "watch";
    case FleetCall::kLeave: return "leave";
    case FleetCall::kPrepared: return "prepared";
  }
  return "?";
}

const char* to_string(FleetStatus s) {
  switch (s) {
    case FleetStatus::kOk: return "ok";
    case FleetStatus::kUnavailable: return "unavailable";
    case FleetStatus::kNotFound: return "not_found";
    case FleetStatus::kDead: return "worker_dead";
    case FleetStatus::kGone: return "gone";
    case FleetStatus::kRefused: return "refused";
  }
  return "?";
}

}  // namespace tenure::sim
