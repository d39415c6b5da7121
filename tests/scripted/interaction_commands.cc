// Commands that change the world: setup, faults, time, the network and
// requests to a node. Each prints what it caused (see interaction_env.h).
#include <algorithm>
#include <sstream>

#include "tests/scripted/interaction_env.h"

namespace tenure::testing::scripted {

namespace {

std::string join_ids(const std::vector<int>& ids) {
  std::string out;
  for (int id : ids) out += (out.empty() ? "" : " ") + std::to_string(id);
  return out;
}

std::string describe_ticket(const RaftResult<ProposalTicket>& r) {
  if (!r.ok()) return "error: " + describe_error(r.error());
  std::ostringstream os;
  os << "ok index=" << r.value().index << " term=" << r.value().term;
  return os.str();
}

// A count argument written `x10` among positional ids; 1 when absent.
int take_count(std::vector<std::string>& words) {
  int count = 1;
  for (auto it = words.begin(); it != words.end();) {
    if (it->size() > 1 && (*it)[0] == 'x') {
      count = static_cast<int>(parse_uint(it->substr(1), "tick count"));
      it = words.erase(it);
    } else {
      ++it;
    }
  }
  return count;
}

std::optional<MessageType> message_type(const std::string& name) {
  for (int t = 0; t <= static_cast<int>(MessageType::kReadIndexResponse); ++t) {
    auto mt = static_cast<MessageType>(t);
    if (name == to_string(mt)) return mt;
  }
  throw ScriptError("unknown message type " + name);
}

}  // namespace

RaftConfig InteractionEnv::config_from(const Command& c) const {
  RaftConfig cfg;
  cfg.pre_vote = c.get_bool("prevote", cfg.pre_vote);
  cfg.check_quorum = c.get_bool("checkquorum", cfg.check_quorum);
  cfg.election_ticks = static_cast<int>(c.get_uint("election", static_cast<uint64_t>(cfg.election_ticks)));
  cfg.heartbeat_ticks = static_cast<int>(c.get_uint("heartbeat", static_cast<uint64_t>(cfg.heartbeat_ticks)));
  cfg.max_inflight_msgs = c.get_uint("max-inflight", cfg.max_inflight_msgs);
  cfg.max_bytes_per_msg = c.get_uint("max-msg-bytes", cfg.max_bytes_per_msg);
  cfg.max_uncommitted_bytes = c.get_uint("max-uncommitted-bytes", cfg.max_uncommitted_bytes);
  cfg.max_entry_bytes = c.get_uint("max-entry-bytes", cfg.max_entry_bytes);
  cfg.entry_overhead_bytes = c.get_uint("entry-overhead", cfg.entry_overhead_bytes);
  cfg.random_seed = c.get_uint("seed", cfg.random_seed);
  for (const auto& name : c.get_list("bug")) {
    if (!enable_planted_bug(cfg.knobs, name)) throw ScriptError("unknown planted bug " + name);
  }
  return cfg;
}

// add-nodes N [voters=(..)] [learners=(..)] [config options]: new nodes get
// the next ids. With voters= (or for the very first nodes, which default to
// voters=all of them) they start from the same bootstrap log; otherwise they
// start empty and join through a membership change.
void InteractionEnv::cmd_add_nodes(const Command& c) {
  int count = c.single_id();
  int first = nodes_.empty() ? 1 : nodes_.rbegin()->first + 1;
  std::vector<int> voters = c.get_ids("voters");
  std::vector<int> learners = c.get_ids("learners");
  if (voters.empty() && nodes_.empty()) {
    for (int k = 0; k < count; ++k) voters.push_back(first + k);
  }
  bool bootstrap = !voters.empty();
  InitialState boot;
  if (bootstrap) {
    std::vector<NodeId> vs;
    for (int v : voters) vs.push_back(nid(v));
    boot = bootstrap_state(vs);
    for (int l : learners) {
      Entry e{Term(1), boot.entries.back().index.next(), EntryType::kConfChange,
              encode_conf_change(ConfChange{ConfChangeType::kAddLearner, nid(l), ""})};
      boot.entries.push_back(std::move(e));
    }
    boot.hard_state.commit = boot.entries.back().index;
  }
  RaftConfig cfg = config_from(c);
  for (int id = first; id < first + count; ++id) {
    Node& n = nodes_[id];
    n.config = cfg;
    n.config.id = nid(id);
    if (bootstrap) n.storage.set_initial(boot);
    start_node(id);
    // The bootstrap Ready only applies the initial membership: not traced.
    while (n.raft->has_ready()) {
      Ready rd = n.raft->ready();
      n.storage.persist(rd);
      n.raft->advance();
    }
    mark_seen(id);
    const Raft& r = *n.raft;
    std::ostringstream os;
    if (bootstrap) {
      os << id << " bootstrapped: term=" << r.term() << " commit=" << r.log().committed() << " "
         << describe_conf(r.conf());
    } else {
      os << id << " added with an empty log";
    }
    print(os.str());
  }
}

// partition A.. | B.. | ...: cuts every link between groups; nodes not named
// form one more group together. Replaces any earlier partition.
void InteractionEnv::cmd_partition(const Command& c) {
  std::vector<std::set<int>> groups(1);
  for (const auto& w : c.positional()) {
    if (w == "|") {
      groups.emplace_back();
    } else {
      groups.back().insert(static_cast<int>(parse_uint(w, "node id")));
    }
  }
  std::set<int> rest;
  for (int id : all_ids()) rest.insert(id);
  for (const auto& g : groups) {
    if (g.empty()) throw ScriptError("partition has an empty group");
    for (int id : g) {
      node(id);
      if (!rest.erase(id)) throw ScriptError("node " + std::to_string(id) + " named twice");
    }
  }
  if (!rest.empty()) groups.push_back(rest);
  cut_.clear();
  for (size_t i = 0; i < groups.size(); ++i) {
    for (size_t j = 0; j < groups.size(); ++j) {
      if (i == j) continue;
      for (int a : groups[i]) {
        for (int b : groups[j]) cut_.insert({a, b});
      }
    }
  }
  std::string line = "partitioned:";
  for (size_t i = 0; i < groups.size(); ++i) {
    line += (i ? " | " : " ") + join_ids(std::vector<int>(groups[i].begin(), groups[i].end()));
  }
  print(line);
}

void InteractionEnv::cmd_heal(const Command&) {
  cut_.clear();
  print("healed");
}

void InteractionEnv::cmd_crash(const Command& c) {
  int id = c.single_id();
  Node& n = node(id);
  up(id);
  n.raft.reset();
  std::ostringstream os;
  if (n.in_flight) os << id << " loses its Ready in flight; ";
  n.in_flight.reset();
  os << id << " crashed; persisted HardState " << describe_hard_state(n.storage.hard_state())
     << " last index " << n.storage.last_index();
  print(os.str());
}

void InteractionEnv::cmd_restart(const Command& c) {
  int id = c.single_id();
  Node& n = node(id);
  if (n.raft) throw ScriptError("node " + std::to_string(id) + " is up; crash it first");
  start_node(id);
  const Raft& r = *n.raft;
  std::ostringstream os;
  os << id << " restarted: term=" << r.term() << " vote=" << r.status().vote << " commit=" << r.log().committed()
     << " log=" << describe_range(r.log().first_index(), r.log().last_index());
  print(os.str());
}

// tick [IDS..] [xN]: N rounds, each ticking every named node (all up nodes
// when none is named) once.
void InteractionEnv::cmd_tick(const Command& c) {
  std::vector<std::string> words = c.positional();
  int count = take_count(words);
  std::vector<int> ids;
  for (const auto& w : words) ids.push_back(static_cast<int>(parse_uint(w, "node id")));
  ids = ids_or_all(ids);
  for (int k = 0; k < count; ++k) {
    for (int id : ids) {
      if (!node(id).raft) continue;
      node(id).raft->tick();
      observe(id);
    }
  }
}

// tick-election ID: a follower or candidate is ticked until it starts an
// election (its randomized timeout is hidden in the core), at most
// 2*election ticks; a leader is ticked one election timeout (one
// check-quorum round).
void InteractionEnv::cmd_tick_election(const Command& c) {
  int id = c.single_id();
  Raft& r = up(id);
  int limit = r.role() == Role::kLeader ? r.config().election_ticks : 2 * r.config().election_ticks;
  bool leader = r.role() == Role::kLeader;
  for (int k = 0; k < limit; ++k) {
    Role role = r.role();
    Term term = r.term();
    bool had_ready = r.has_ready();
    r.tick();
    observe(id);
    if (leader) continue;
    // An election changes role or term, or (pre-candidate again) sends votes.
    if (r.role() != role || r.term() != term) return;
    if (!had_ready && r.has_ready()) {
      print_event(std::to_string(id) + " campaigns again as " + to_string(r.role()) + " at term " +
                  std::to_string(r.term().value()));
      return;
    }
  }
}

void InteractionEnv::cmd_tick_heartbeat(const Command& c) {
  int id = c.single_id();
  Raft& r = up(id);
  for (int k = 0; k < r.config().heartbeat_ticks; ++k) {
    r.tick();
    observe(id);
  }
}

// begin-ready ID: takes the Ready and sends its early messages; the fsync of
// the rest is in flight until finish-ready ID (or lost by crash ID).
void InteractionEnv::cmd_begin_ready(const Command& c) {
  int id = c.single_id();
  if (!up(id).has_ready()) {
    print(std::to_string(id) + " has no Ready");
    return;
  }
  begin_ready(id);
}

void InteractionEnv::cmd_finish_ready(const Command& c) { finish_ready(c.single_id()); }

void InteractionEnv::cmd_process_ready(const Command& c) {
  for (int id : c.positional_ids()) {
    if (!up(id).has_ready()) {
      print(std::to_string(id) + " has no Ready");
      continue;
    }
    if (c.positional().size() > 1) print("> " + std::to_string(id) + " handling Ready");
    process_ready(id);
  }
}

// deliver-msgs [IDS..] [drop=(IDS)] [from=ID] [type=App]: delivers (or drops)
// the queued messages to the named nodes, all queued messages when none.
void InteractionEnv::cmd_deliver_msgs(const Command& c) {
  Delivery d;
  for (int id : c.positional_ids()) d.to.insert(id);
  for (int id : c.get_ids("drop")) {
    if (d.to.count(id)) throw ScriptError("cannot both deliver and drop messages to " + std::to_string(id));
    d.drop.insert(id);
  }
  if (c.has("from")) d.from = static_cast<int>(c.get_uint("from", 0));
  if (c.has("type")) d.type = message_type(c.get("type", ""));
  if (deliver(d) == 0) print("no messages");
}

// stabilize [IDS..] [quiet=true]: quietly, only role, term and membership changes are shown.
void InteractionEnv::cmd_stabilize(const Command& c) {
  quiet_ = c.get_bool("quiet", false);
  stabilize(c.positional_ids());
  quiet_ = false;
}

void InteractionEnv::cmd_campaign(const Command& c) {
  int id = c.single_id();
  up(id).campaign();
  observe(id);
}

// propose ID DATA [DATA..]: one proposal, or a batch when several.
void InteractionEnv::cmd_propose(const Command& c) {
  const auto& words = c.positional();
  if (words.size() < 2) throw ScriptError("propose ID DATA [DATA..]");
  int id = static_cast<int>(parse_uint(words[0], "node id"));
  std::vector<std::string> data(words.begin() + 1, words.end());
  auto r = data.size() == 1 ? up(id).propose(data[0]) : up(id).propose_batch(std::move(data));
  print(describe_ticket(r));
  observe(id);
}

// propose-conf-change ID add-learner|add-voter|remove NODE [ctx=TEXT]
void InteractionEnv::cmd_propose_conf_change(const Command& c) {
  const auto& words = c.positional();
  if (words.size() != 3) throw ScriptError("propose-conf-change ID add-learner|add-voter|remove NODE");
  int id = static_cast<int>(parse_uint(words[0], "node id"));
  ConfChange cc;
  if (words[1] == "add-learner") {
    cc.type = ConfChangeType::kAddLearner;
  } else if (words[1] == "add-voter") {
    cc.type = ConfChangeType::kAddVoter;
  } else if (words[1] == "remove") {
    cc.type = ConfChangeType::kRemoveNode;
  } else {
    throw ScriptError("unknown membership change " + words[1]);
  }
  cc.node = nid(static_cast<int>(parse_uint(words[2], "node id")));
  cc.context = c.get("ctx", "");
  print(describe_ticket(up(id).propose_conf_change(cc)));
  observe(id);
}

void InteractionEnv::cmd_transfer_leadership(const Command& c) {
  int id = c.single_id();
  if (!c.has("to")) throw ScriptError("transfer-leadership ID to=ID");
  auto r = up(id).transfer_leadership(nid(static_cast<int>(c.get_uint("to", 0))));
  if (!r.ok()) print("error: " + describe_error(r.error()));
  observe(id);
}

void InteractionEnv::cmd_read_index(const Command& c) {
  int id = c.single_id();
  if (!c.has("id")) throw ScriptError("read-index ID id=REQUEST");
  auto r = up(id).read_index(c.get_uint("id", 0));
  if (!r.ok()) print("error: " + describe_error(r.error()));
  observe(id);
}

// compact ID [keep=N]: the node snapshots its state machine at its applied
// index and compacts its log (in memory and in storage), keeping N entries.
void InteractionEnv::cmd_compact(const Command& c) {
  int id = c.single_id();
  Node& n = node(id);
  Raft& r = up(id);
  if (n.in_flight) throw ScriptError("compact between begin-ready and finish-ready");
  std::string data;
  for (const auto& s : n.state) data += (data.empty() ? "" : ",") + s;
  auto [snap, compact_to] = r.compact(std::move(data), c.get_uint("keep", 0));
  n.storage.compact(snap, compact_to);
  std::ostringstream os;
  os << id << " snapshot " << describe_snapshot(snap) << "; log now "
     << describe_range(r.log().first_index(), r.log().last_index());
  print(os.str());
}

// report-snapshot ID to=ID [delivered=false]: the driver's verdict on a snapshot it sent.
void InteractionEnv::cmd_report_snapshot(const Command& c) {
  int id = c.single_id();
  if (!c.has("to")) throw ScriptError("report-snapshot ID to=ID [delivered=true|false]");
  up(id).report_snapshot(nid(static_cast<int>(c.get_uint("to", 0))), c.get_bool("delivered", true));
  observe(id);
}

}  // namespace tenure::testing::scripted
