#include "tests/support/cluster.h"

namespace tenure::testing {

Cluster::Cluster(const std::vector<std::string>& ids, RaftConfig base) : base_(std::move(base)) {
  std::vector<NodeId> voters;
  for (const auto& id : ids) voters.emplace_back(id);
  InitialState boot = bootstrap_state(voters);
  for (const auto& id : ids) {
    Node& n = nodes_[id];
    n.storage.set_initial(boot);
    n.raft = std::make_unique<Raft>(config_for(id), n.storage.initial_state());
  }
  for (const auto& id : ids) process_ready(id);
}

RaftConfig Cluster::config_for(const std::string& id) const {
  RaftConfig c = base_;
  c.id = NodeId(id);
  return c;
}

std::vector<std::string> Cluster::ids() const {
  std::vector<std::string> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

bool Cluster::process_ready(const std::string& id) {
  Node& n = nodes_.at(id);
  if (!n.raft || !n.raft->has_ready()) return false;
  Ready rd = n.raft->ready();
  for (auto& m : rd.early_messages) queue_.push_back(std::move(m));
  n.storage.persist(rd);
  for (auto& m : rd.messages) queue_.push_back(std::move(m));
  if (rd.snapshot) n.applied.clear();  // the state machine was replaced
  for (auto& e : rd.committed_entries) n.applied.push_back(std::move(e));
  for (auto& r : rd.read_states) n.reads.push_back(r);
  n.raft->advance();
  return true;
}

bool Cluster::link_up(const Message& m) const {
  if (cut_.count({m.from.str(), m.to.str()})) return false;
  if (filter_ && filter_(m)) return false;
  return true;
}

size_t Cluster::deliver_all() {
  std::deque<Message> batch;
  batch.swap(queue_);
  size_t delivered = 0;
  for (auto& m : batch) {
    auto it = nodes_.find(m.to.str());
    if (it == nodes_.end() || !it->second.raft || !link_up(m)) continue;
    it->second.raft->step(std::move(m));
    ++delivered;
  }
  return delivered;
}

void Cluster::stabilize(int max_rounds) {
  for (int round = 0; round < max_rounds; ++round) {
    bool moved = false;
    for (auto& [id, n] : nodes_) {
      while (process_ready(id)) moved = true;
    }
    if (deliver_all() > 0) moved = true;
    if (!moved) return;
  }
}

void Cluster::tick(const std::string& id, int n) {
  for (int i = 0; i < n; ++i) {
    if (nodes_.at(id).raft) nodes_.at(id).raft->tick();
  }
}

bool Cluster::elect(const std::string& id) {
  for (int i = 0; i < 10; ++i) {
    node(id).campaign();
    stabilize();
    if (node(id).role() == Role::kLeader) return true;
  }
  return false;
}

std::string Cluster::leader() const {
  std::string best;
  Term best_term;
  for (const auto& [id, n] : nodes_) {
    if (n.raft && n.raft->role() == Role::kLeader && n.raft->term() >= best_term) {
      best = id;
      best_term = n.raft->term();
    }
  }
  return best;
}

void Cluster::cut(const std::string& a, const std::string& b) {
  cut_.insert({a, b});
  cut_.insert({b, a});
}

void Cluster::isolate(const std::string& id) {
  for (const auto& [other, n] : nodes_) {
    if (other != id) cut(id, other);
  }
}

void Cluster::heal() {
  cut_.clear();
  filter_ = nullptr;
}

void Cluster::crash(const std::string& id) { nodes_.at(id).raft.reset(); }

void Cluster::restart(const std::string& id) {
  Node& n = nodes_.at(id);
  n.raft = std::make_unique<Raft>(config_for(id), n.storage.initial_state());
  // The state machine is rebuilt from the snapshot and the replayed log.
  n.applied.clear();
  process_ready(id);
}

void Cluster::add_empty_node(const std::string& id) {
  Node& n = nodes_[id];
  n.raft = std::make_unique<Raft>(config_for(id), n.storage.initial_state());
}

}  // namespace tenure::testing
