// Commands that only look: status, raft-log, raft-state, queued-msgs.
#include <sstream>

#include "tests/scripted/interaction_env.h"

namespace tenure::testing::scripted {

namespace {

std::string membership(const ConfState& conf, const NodeId& id) {
  if (conf.voters.count(id)) return "voter";
  if (conf.learners.count(id)) return "learner";
  return "not a member";
}

std::string describe_state_machine(const std::vector<std::string>& state) {
  std::string out = "[";
  for (size_t i = 0; i < state.size(); ++i) out += (i ? ", " : "") + state[i];
  return out + "]";
}

}  // namespace

// status ID: the node's Raft status, the leader's view of every follower,
// and the toy state machine.
void InteractionEnv::cmd_status(const Command& c) {
  int id = c.single_id();
  Node& n = node(id);
  if (!n.raft) {
    std::ostringstream os;
    os << id << " is down; persisted HardState " << describe_hard_state(n.storage.hard_state()) << " snapshot="
       << n.storage.snapshot().index << " last index " << n.storage.last_index();
    print(os.str());
    return;
  }
  Status s = n.raft->status();
  std::ostringstream os;
  os << id << " " << to_string(s.role) << " term=" << s.term << " vote=" << s.vote << " leader=" << s.leader
     << " commit=" << s.commit << " applied=" << s.applied << " log=" << describe_range(s.first_index, s.last_index)
     << " " << describe_conf(s.conf);
  if (!s.transferee.empty()) os << " transferee=" << s.transferee;
  print(os.str());
  for (const auto& f : s.followers) {
    std::ostringstream fs;
    fs << "  progress " << f.id << ": match=" << f.match << " next=" << f.next << " " << to_string(f.state);
    if (f.learner) fs << " learner";
    if (!f.recent_active) fs << " inactive";
    print(fs.str());
  }
  print("  state machine: " + describe_state_machine(n.state));
}

// raft-log ID: the node's log (its in-memory log when up, what it persisted when down).
void InteractionEnv::cmd_raft_log(const Command& c) {
  int id = c.single_id();
  Node& n = node(id);
  const Snapshot* snap = nullptr;
  std::vector<Entry> entries;
  if (n.raft) {
    const RaftLog& log = n.raft->log();
    snap = &log.snapshot();
    entries = log.slice(log.first_index(), log.last_index());
  } else {
    print(std::to_string(id) + " is down; persisted log:");
    snap = &n.storage.snapshot();
    for (const auto& e : n.storage.entries()) {
      if (e.index > snap->index) entries.push_back(e);
    }
  }
  if (!snap->empty()) print("snapshot " + describe_snapshot(*snap));
  for (const auto& e : entries) print(describe_entry(e));
  if (entries.empty() && snap->empty()) print("empty log");
}

// raft-state: one line per node.
void InteractionEnv::cmd_raft_state(const Command&) {
  for (const auto& [id, n] : nodes_) {
    std::ostringstream os;
    os << id << ": ";
    if (!n.raft) {
      os << "down";
    } else {
      const Raft& r = *n.raft;
      os << to_string(r.role()) << " term=" << r.term() << " leader=" << r.leader() << " commit="
         << r.log().committed() << " last=" << r.log().last_index() << " (" << membership(r.conf(), r.id()) << ")";
    }
    print(os.str());
  }
}

void InteractionEnv::cmd_queued_msgs(const Command&) {
  for (const auto& m : net_) print(describe_message(m));
  if (net_.empty()) print("no messages");
}

}  // namespace tenure::testing::scripted
