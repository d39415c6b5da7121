// Faults and operator actions of the safety phase (crashes, partitions,
// membership churn, leadership transfer), and the liveness phase.
#include <algorithm>
#include <sstream>

#include "sim/simulator.h"

namespace tenure::sim {

using consensus::ConfChangeType;
using consensus::Role;

namespace {
/// The most members (voters and learners) the group grows to.
constexpr size_t kMaxMembers = 7;
/// The liveness bound, in election timeouts: after healing, a leader must
/// commit a new write within it.
constexpr int64_t kLivenessElections = 30;
/// Then every member must catch up to that write, and one still behind must
/// apply something new at least this often (catching up one entry per round
/// trip is slow, not stuck).
constexpr int64_t kStallElections = 10;
}  // namespace

int64_t Simulator::draw_gap_us(int64_t mean_ticks) {
  return q_.now() + rng_.range(std::max<int64_t>(1, mean_ticks / 2), mean_ticks * 3 / 2 + 1) * kTickUs;
}

void Simulator::crash_fault() {
  if (phase_ != Phase::kSafety) return;
  q_.at(draw_gap_us(o_.crash_gap_ticks), [this] { crash_fault(); });
  std::vector<NodeId> up = up_nodes();
  size_t down = 0;
  for (const auto& [id, n] : nodes_) down += !n->up() && !n->decommissioned();
  // Mostly keep a majority up so the group makes progress between faults;
  // now and then take it below, which safety must survive too.
  if (up.empty() || (down + 1 > (nodes_.size() - 1) / 2 && rng_.chance(0.8))) return;
  Node* victim = node(rng_.pick(up));
  Node* l = leader();
  if (l && rng_.chance(o_.crash_leader)) victim = l;
  if (rng_.chance(o_.torn)) {
    // Strike inside the next Ready that must be persisted: after its early
    // messages left, before or after the fsync.
    ++stats_.torn_crashes;
    victim->arm_torn_crash(rng_.chance(0.7) ? CrashPoint::kBeforePersist : CrashPoint::kAfterPersist);
    trace("arm torn crash " + victim->id().str());
    return;
  }
  victim->crash();
}

void Simulator::pause_fault() {
  if (phase_ != Phase::kSafety) return;
  q_.at(draw_gap_us(o_.pause_gap_ticks), [this] { pause_fault(); });
  std::vector<NodeId> up;
  for (const auto& id : up_nodes()) {
    if (!paused(id)) up.push_back(id);
  }
  if (up.empty()) return;
  NodeId victim = rng_.pick(up);
  if (Node* l = leader(); l && !paused(l->id()) && rng_.chance(o_.pause_leader)) victim = l->id();
  int64_t until = q_.now() + rng_.range(1, 3 * o_.election_ticks) * kTickUs;
  paused_until_us_[victim] = until;
  ++stats_.pauses;
  trace("pause " + victim.str() + " for " + std::to_string((until - q_.now()) / kTickUs) + " ticks");
}

bool Simulator::paused(const NodeId& id) const {
  auto it = paused_until_us_.find(id);
  return it != paused_until_us_.end() && q_.now() < it->second;
}

void Simulator::run_on(const NodeId& id, std::function<void()> fn) {
  if (!paused(id)) return fn();
  // What waited is taken in any order within a tick of resuming: a process
  // reads its sockets (a client's, each peer's) and fires its timer in no
  // order between them, so a stale leader may serve a read before it reads
  // the newer leader's heartbeat.
  int64_t at = paused_until_us_.at(id) + rng_.range(0, kTickUs);
  q_.at(at, [this, id, fn = std::move(fn)]() mutable { run_on(id, std::move(fn)); });
}

void Simulator::restart(const NodeId& id) {
  Node* n = node(id);
  if (!n || n->up() || n->decommissioned()) return;
  paused_until_us_.erase(id);  // a new process
  trace("restart " + id.str());
  n->start(rng_.next());
  observe(*n);
  if (n->up()) schedule_tick(*n, rng_.range(1, n->tick_us()));
}

void Simulator::partition_fault() {
  if (phase_ != Phase::kSafety) return;
  std::vector<NodeId> all = up_nodes();
  for (const auto& [id, n] : nodes_) {
    if (!n->up() && !n->decommissioned()) all.push_back(id);
  }
  std::sort(all.begin(), all.end());
  if (all.size() < 2) {
    q_.at(draw_gap_us(o_.partition_gap_ticks), [this] { partition_fault(); });
    return;
  }
  ++stats_.partitions;
  Node* l = leader();
  NodeId lonely = (l && rng_.chance(o_.partition_leader)) ? l->id() : rng_.pick(all);
  switch (rng_.below(4)) {
    case 0:  // one member cut off both ways
      net_.split({lonely}, all);
      break;
    case 1: {  // a symmetric split into two random sides
      std::set<NodeId> side{lonely};
      for (const auto& id : all) {
        if (rng_.chance(0.4)) side.insert(id);
      }
      net_.split(side, all);
      break;
    }
    case 2:  // one member hears nobody (it can still talk) or nobody hears it
      for (const auto& other : all) {
        if (other != lonely) rng_.chance(0.5) ? net_.block(other, lonely) : net_.block(lonely, other);
      }
      break;
    default:  // random one-way links
      for (const auto& a : all) {
        for (const auto& b : all) {
          if (a != b && rng_.chance(0.3)) net_.block(a, b);
        }
      }
      break;
  }
  trace("partition " + net_.describe());
  int64_t heal_at = q_.now() + rng_.range(1, 2 * o_.partition_len_ticks) * kTickUs;
  q_.at(heal_at, [this] {
    if (phase_ != Phase::kSafety) return;
    net_.heal();
    trace("heal");
    q_.at(draw_gap_us(o_.partition_gap_ticks), [this] { partition_fault(); });
  });
}

void Simulator::react_to_leader(const NodeId& id, bool crash_allowed) {
  if (phase_ != Phase::kSafety) return;
  // Within a tick or so: before what the leader just did has spread.
  int64_t delay = rng_.range(0, kTickUs);
  if (crash_allowed && rng_.chance(0.3)) {
    uint64_t life = node(id)->incarnation();
    after(delay, [this, id, life] {
      Node* n = node(id);
      if (phase_ != Phase::kSafety || !n->up() || n->incarnation() != life) return;
      trace("react: crash new leader " + id.str());
      n->crash();
    });
    return;
  }
  after(delay, [this, id] { isolate_for_a_while(id); });
}

void Simulator::isolate_for_a_while(const NodeId& id) {
  if (phase_ != Phase::kSafety) return;
  std::vector<NodeId> all;
  for (const auto& [other, n] : nodes_) {
    if (!n->decommissioned()) all.push_back(other);
  }
  net_.split({id}, all);
  ++stats_.partitions;
  trace("react: isolate " + id.str());
  after(rng_.range(1, 2 * std::max<int64_t>(o_.partition_len_ticks, 5)) * kTickUs, [this] {
    if (phase_ != Phase::kSafety) return;
    net_.heal();
    trace("heal");
  });
}

void Simulator::propose_conf_change(Node& l, ConfChangeType type, const NodeId& target) {
  consensus::ConfChange cc{type, target, "sim://" + target.str()};
  auto res = l.with_raft([&](consensus::Raft& r) { return r.propose_conf_change(cc); });
  std::ostringstream os;
  os << "conf change " << static_cast<int>(type) << " " << target << " at " << l.id() << ": "
     << (res.ok() ? "proposed" : "refused");
  trace(os.str());
  if (res.ok()) ++stats_.conf_changes;
  observe(l);
}

void Simulator::churn_fault() {
  if (phase_ != Phase::kSafety) return;
  q_.at(draw_gap_us(o_.churn_gap_ticks), [this] { churn_fault(); });
  Node* l = leader();
  if (!l || paused(l->id())) return;
  churn_step(*l);
  // Now and then a second change right behind the first: the core must
  // refuse it until the first is applied (one change at a time, §4.1).
  if (l->up() && rng_.chance(0.3)) churn_step(*l);
}

void Simulator::churn_step(Node& l) {
  const consensus::ConfState conf = l.raft().conf();
  auto status = l.raft().status();
  // Promote a learner once it has caught up with the leader's commit index
  // (now and then earlier: an operator may, and safety must not depend on it).
  bool eager = rng_.chance(0.2);
  for (const auto& f : status.followers) {
    if (f.learner && (eager || f.match >= status.commit)) {
      propose_conf_change(l, ConfChangeType::kAddVoter, f.id);
      return;
    }
  }
  size_t members = conf.voters.size() + conf.learners.size();
  bool can_add = members < kMaxMembers && conf.learners.empty();
  bool can_remove = conf.voters.size() > 3 || !conf.learners.empty();
  if (can_add && (!can_remove || rng_.chance(0.5))) {
    // A brand-new member with an empty store: it learns everything from the leader.
    NodeId id("n" + std::to_string(next_node_id_++));
    Node& n = add_node(id, InitialState{});
    schedule_tick(n, rng_.range(1, n.tick_us()));
    members_.insert(id);
    trace("add node " + id.str());
    propose_conf_change(l, ConfChangeType::kAddLearner, id);
  } else if (can_remove) {
    std::vector<NodeId> candidates(conf.learners.begin(), conf.learners.end());
    if (conf.voters.size() > 3) candidates.insert(candidates.end(), conf.voters.begin(), conf.voters.end());
    propose_conf_change(l, ConfChangeType::kRemoveNode, rng_.pick(candidates));
  }
}

void Simulator::transfer_fault() {
  if (phase_ != Phase::kSafety) return;
  q_.at(draw_gap_us(o_.transfer_gap_ticks), [this] { transfer_fault(); });
  Node* l = leader();
  if (!l || paused(l->id())) return;  // an operator's call waits for it; none is queued here
  std::vector<NodeId> voters;
  for (const auto& v : l->raft().conf().voters) {
    if (v != l->id()) voters.push_back(v);
  }
  if (voters.empty()) return;
  NodeId to = rng_.pick(voters);
  auto res = l->with_raft([&](consensus::Raft& r) { return r.transfer_leadership(to); });
  trace("transfer " + l->id().str() + " -> " + to.str() + (res.ok() ? "" : " refused"));
  observe(*l);
}

// ---- Liveness ----

void Simulator::start_liveness() {
  phase_ = Phase::kLiveness;
  liveness_start_us_ = q_.now();
  net_.heal();
  net_.set_lossless();
  trace("liveness phase: heal, restart, no more faults");
  for (auto& [id, n] : nodes_) {
    if (n->up()) n->arm_torn_crash(CrashPoint::kNone);
  }
  std::vector<NodeId> ids;
  for (const auto& [id, n] : nodes_) ids.push_back(id);
  for (const auto& id : ids) restart(id);
  q_.at(q_.now() + kLivenessElections * o_.election_ticks * kTickUs, [this] { liveness_deadline(); });
  if (fleet_) {
    fleet_->start_liveness();
    q_.at(q_.now() + kLivenessElections * o_.election_ticks * kTickUs + fleet_->liveness_bound_us(),
          [this] { fleet_deadline(); });
  }
  probe();
}

void Simulator::probe() {
  if (phase_ != Phase::kLiveness) return;
  q_.at(q_.now() + kTickUs, [this] { probe(); });
  if (probe_index_) {
    if (caught_up(nullptr)) {
      if (!fleet_ || fleet_->settled()) finish();
    } else {
      check_catch_up_progress();
    }
    return;
  }
  // One attempt at a time; an attempt that got no answer within two
  // election timeouts is abandoned (its leader may have lost office).
  if (probe_attempt_ != 0 && q_.now() - probe_sent_us_ < 2 * o_.election_ticks * kTickUs) return;
  Node* l = leader();
  if (!l) return;
  ClientRequest r;
  r.client = -1;
  r.attempt = probe_attempt_ = clients_.next_attempt_id();
  r.write = true;
  r.key = "probe";
  r.value = "p" + std::to_string(++probe_count_);
  probe_sent_us_ = q_.now();
  l->handle(r);
  observe(*l);
}

bool Simulator::caught_up(std::string* lagging) {
  Node* l = leader();
  if (!l || !probe_index_) return false;
  const auto& conf = l->raft().conf();
  bool ok = true;
  for (const auto& id : conf.voters) {
    Node* n = node(id);
    if (n->decommissioned() || (n->up() && n->applied() >= *probe_index_)) continue;
    ok = false;
    if (lagging) *lagging += " " + status_line(*n);
  }
  for (const auto& id : conf.learners) {
    Node* n = node(id);
    if (n->decommissioned() || (n->up() && n->applied() >= *probe_index_)) continue;
    ok = false;
    if (lagging) *lagging += " " + status_line(*n);
  }
  return ok;
}

void Simulator::check_catch_up_progress() {
  int64_t stall_us = kStallElections * o_.election_ticks * kTickUs;
  for (const auto& [id, n] : nodes_) {
    auto [it, inserted] = catch_up_.try_emplace(id, n->applied(), q_.now());
    if (n->applied() != it->second.first) it->second = {n->applied(), q_.now()};
    if (inserted || q_.now() - it->second.second < stall_us) continue;
    std::string lagging;
    if (caught_up(&lagging) || lagging.find(" " + id.str() + ":") == std::string::npos) continue;
    std::ostringstream os;
    os << id << " made no progress toward index " << *probe_index_ << " for " << kStallElections
       << " election timeouts after healing; lagging:" << lagging << "; all:";
    for (const auto& [other, m] : nodes_) os << " " << status_line(*m);
    report(Violation{"liveness", id, n->up() ? n->raft().term() : Term(0), n->applied(), os.str()});
    return;
  }
}

void Simulator::liveness_deadline() {
  if (phase_ != Phase::kLiveness || probe_index_) return;
  std::ostringstream os;
  os << "no leader committed a new write within " << kLivenessElections << " election timeouts of healing;";
  for (const auto& [id, n] : nodes_) os << " " << status_line(*n);
  Node* l = leader();
  report(Violation{"liveness", l ? l->id() : NodeId(), l ? l->raft().term() : Term(0), LogIndex(0), os.str()});
}

void Simulator::finish() {
  phase_ = Phase::kDone;
  Node* l = leader();
  report(acked_writes_.final(history_, l ? l->id() : NodeId(), l ? &l->raft().log() : nullptr));
  // The full pairwise log comparison, as a last word on log matching.
  std::vector<Node*> up;
  for (auto& [id, n] : nodes_) {
    if (n->up()) up.push_back(n.get());
  }
  for (size_t a = 0; a < up.size(); ++a) {
    for (size_t b = a + 1; b < up.size(); ++b) {
      report(LogMatching::compare(up[a]->id(), up[a]->raft().log(), up[b]->id(), up[b]->raft().log()));
    }
  }
  trace("done");
}

}  // namespace tenure::sim
