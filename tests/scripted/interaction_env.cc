// The mechanics of the interaction environment: printing, observing state
// changes, processing Ready batches, delivering messages and stabilizing.
#include "tests/scripted/interaction_env.h"

namespace tenure::testing::scripted {

/// Indents everything printed while it lives (nested blocks of stabilize).
class InteractionEnv::Indent {
 public:
  explicit Indent(InteractionEnv& env) : env_(env) { env_.indent_ += 2; }
  ~Indent() { env_.indent_ -= 2; }
  Indent(const Indent&) = delete;
  Indent& operator=(const Indent&) = delete;

 private:
  InteractionEnv& env_;
};

InteractionEnv::InteractionEnv() {
  handlers_ = {
      {"add-nodes", &InteractionEnv::cmd_add_nodes},
      {"partition", &InteractionEnv::cmd_partition},
      {"heal", &InteractionEnv::cmd_heal},
      {"crash", &InteractionEnv::cmd_crash},
      {"restart", &InteractionEnv::cmd_restart},
      {"tick", &InteractionEnv::cmd_tick},
      {"tick-election", &InteractionEnv::cmd_tick_election},
      {"tick-heartbeat", &InteractionEnv::cmd_tick_heartbeat},
      {"process-ready", &InteractionEnv::cmd_process_ready},
      {"begin-ready", &InteractionEnv::cmd_begin_ready},
      {"finish-ready", &InteractionEnv::cmd_finish_ready},
      {"deliver-msgs", &InteractionEnv::cmd_deliver_msgs},
      {"stabilize", &InteractionEnv::cmd_stabilize},
      {"campaign", &InteractionEnv::cmd_campaign},
      {"propose", &InteractionEnv::cmd_propose},
      {"propose-conf-change", &InteractionEnv::cmd_propose_conf_change},
      {"transfer-leadership", &InteractionEnv::cmd_transfer_leadership},
      {"read-index", &InteractionEnv::cmd_read_index},
      {"compact", &InteractionEnv::cmd_compact},
      {"report-snapshot", &InteractionEnv::cmd_report_snapshot},
      {"status", &InteractionEnv::cmd_status},
      {"raft-log", &InteractionEnv::cmd_raft_log},
      {"raft-state", &InteractionEnv::cmd_raft_state},
      {"queued-msgs", &InteractionEnv::cmd_queued_msgs},
  };
}

std::vector<std::string> InteractionEnv::run(const Command& cmd) {
  auto it = handlers_.find(cmd.name());
  if (it == handlers_.end()) throw ScriptError("unknown command: " + cmd.name());
  out_.clear();
  indent_ = 0;
  quiet_ = false;
  (this->*(it->second))(cmd);
  cmd.check_no_unused_keys();
  if (out_.empty()) out_.push_back("ok");
  return std::move(out_);
}

void InteractionEnv::print(const std::string& line) {
  if (!quiet_) out_.push_back(std::string(indent_, ' ') + line);
}

void InteractionEnv::print_event(const std::string& line) {
  out_.push_back(std::string(quiet_ ? 0 : indent_, ' ') + line);
}

InteractionEnv::Node& InteractionEnv::node(int id) {
  auto it = nodes_.find(id);
  if (it == nodes_.end()) throw ScriptError("no node " + std::to_string(id));
  return it->second;
}

Raft& InteractionEnv::up(int id) {
  Node& n = node(id);
  if (!n.raft) throw ScriptError("node " + std::to_string(id) + " is down");
  return *n.raft;
}

int InteractionEnv::num(const NodeId& id) {
  return static_cast<int>(parse_uint(id.str(), "node id"));
}

std::vector<int> InteractionEnv::all_ids() const {
  std::vector<int> ids;
  for (const auto& [id, n] : nodes_) ids.push_back(id);
  return ids;
}

std::vector<int> InteractionEnv::ids_or_all(const std::vector<int>& ids) const {
  return ids.empty() ? all_ids() : ids;
}

void InteractionEnv::mark_seen(int id) {
  Node& n = node(id);
  const Raft& r = *n.raft;
  n.seen = Observed{true, r.role(), r.term(), r.leader(), r.conf()};
}

// Prints what changed in a node's role, term, known leader and membership
// since it was last observed. Called after every single input to a node.
void InteractionEnv::observe(int id) {
  Node& n = node(id);
  if (!n.raft) return;
  const Raft& r = *n.raft;
  Observed before = n.seen;
  mark_seen(id);
  const std::string who = std::to_string(id);
  if (!before.valid || before.role != r.role() || before.term != r.term() || before.leader != r.leader()) {
    std::string line = who + " became " + to_string(r.role());
    if (r.role() == Role::kFollower && !r.leader().empty()) line += " of " + r.leader().str();
    print_event(line + " at term " + std::to_string(r.term().value()));
  }
  if (before.valid && before.conf != r.conf()) print_event(who + " applied conf: " + describe_conf(r.conf()));
}

void InteractionEnv::restore_state(Node& n, const Snapshot& s) {
  n.state.clear();
  if (!s.data || s.data->empty()) return;
  // The toy state machine's snapshot is its commands joined by commas.
  std::string cur;
  for (char c : *s.data) {
    if (c == ',') {
      n.state.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  n.state.push_back(cur);
}

// One Ready, processed in the order raft.h requires: early messages may go
// out first; then persist, send, apply, advance.
void InteractionEnv::process_ready(int id) {
  begin_ready(id);
  finish_ready(id);
}

// Takes the Ready and sends its early messages; the rest waits as if the
// fsync were in flight (the node may step messages meanwhile, as with
// etcd-io/raft's RawNode).
void InteractionEnv::begin_ready(int id) {
  Node& n = node(id);
  Raft& r = up(id);
  if (n.in_flight) throw ScriptError("node " + std::to_string(id) + " has a Ready in flight; finish-ready first");
  Ready rd = r.ready();
  for (const auto& line : describe_ready(rd)) print(line);
  for (auto& m : rd.early_messages) net_.push_back(m);
  rd.early_messages.clear();
  n.in_flight = std::move(rd);
}

void InteractionEnv::finish_ready(int id) {
  Node& n = node(id);
  Raft& r = up(id);
  if (!n.in_flight) throw ScriptError("node " + std::to_string(id) + " has no Ready in flight");
  Ready rd = std::move(*n.in_flight);
  n.in_flight.reset();
  n.storage.persist(rd);
  for (auto& m : rd.messages) net_.push_back(m);
  if (rd.snapshot) restore_state(n, *rd.snapshot);
  for (const auto& e : rd.committed_entries) {
    if (e.type == EntryType::kNormal && !e.data.empty()) n.state.push_back(e.data);
  }
  r.advance();
  observe(id);
}

bool InteractionEnv::link_cut(const Message& m) const {
  return cut_.count({num(m.from), num(m.to)}) > 0;
}

bool InteractionEnv::matches(const Delivery& d, const Message& m) const {
  int to = num(m.to);
  if ((!d.to.empty() || !d.drop.empty()) && !d.to.count(to) && !d.drop.count(to)) return false;
  if (d.from && num(m.from) != *d.from) return false;
  if (d.type && m.type != *d.type) return false;
  return true;
}

// Takes the matching messages out of the queue (the rest keep their order)
// and delivers or drops each, in queue order. Returns how many it took.
size_t InteractionEnv::deliver(const Delivery& d) {
  std::deque<Message> keep;
  std::vector<Message> take;
  for (auto& m : net_) (matches(d, m) ? take.emplace_back(std::move(m)) : keep.emplace_back(std::move(m)));
  net_.swap(keep);
  for (auto& m : take) {
    int to = num(m.to);
    std::string what = describe_message(m);
    if (d.drop.count(to)) {
      print("dropped: " + what);
    } else if (link_cut(m)) {
      print("dropped (partition): " + what);
    } else if (!nodes_.count(to) || !nodes_.at(to).raft) {
      print("dropped (" + std::to_string(to) + " is down): " + what);
    } else {
      print(what);
      nodes_.at(to).raft->step(std::move(m));
      observe(to);
    }
  }
  return take.size();
}

// Processes Readies and delivers messages among `ids` (all nodes when empty)
// until nothing moves, as etcd-io/raft's InteractionEnv.Stabilize.
void InteractionEnv::stabilize(const std::vector<int>& selected) {
  std::vector<int> ids = ids_or_all(selected);
  for (int round = 0; round < 10000; ++round) {
    bool moved = false;
    for (int id : ids) {
      Node& n = node(id);
      // A node whose Ready is in flight gets no new one until finish-ready.
      if (!n.raft || n.in_flight || !n.raft->has_ready()) continue;
      print("> " + std::to_string(id) + " handling Ready");
      Indent in(*this);
      process_ready(id);
      moved = true;
    }
    for (int id : ids) {
      Delivery d;
      d.to.insert(id);
      bool any = false;
      for (const auto& m : net_) any = any || matches(d, m);
      if (!any) continue;
      print("> " + std::to_string(id) + " receiving messages");
      Indent in(*this);
      deliver(d);
      moved = true;
    }
    if (!moved) return;
  }
  throw ScriptError("stabilize did not settle after 10000 rounds");
}

void InteractionEnv::start_node(int id) {
  Node& n = node(id);
  n.raft = std::make_unique<Raft>(n.config, n.storage.initial_state());
  // The state machine restarts from the snapshot; committed entries after it
  // are applied again from the log by the next Readies.
  restore_state(n, n.storage.snapshot());
  mark_seen(id);
}

}  // namespace tenure::testing::scripted
