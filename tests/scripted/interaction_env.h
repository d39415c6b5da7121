#pragma once
// The world a scripted interaction test drives: real Raft cores, each with a
// MemoryStorage and a toy state machine (the list of applied commands), joined
// by one FIFO network queue that only the script moves. Nothing happens unless
// a command makes it happen, so every trace is deterministic.
//
// Each command prints what it caused: Ready batches, messages delivered or
// dropped, role and term changes, membership changes. The format is defined in
// describe.h and documented in docs/testing-scripted.md.

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/scripted/command.h"
#include "tests/scripted/describe.h"
#include "tests/support/memory_storage.h"

namespace tenure::testing::scripted {

/// One scenario's world. Not thread-safe; one per script file.
class InteractionEnv {
 public:
  /// An empty world: no nodes, no messages, no partition.
  InteractionEnv();

  /// Runs one command and returns what it printed, line by line (`ok` when
  /// it printed nothing). Throws ScriptError on a malformed command.
  std::vector<std::string> run(const Command& cmd);

 private:
  /// What was last reported about a node, to print only changes.
  struct Observed {
    bool valid = false;
    Role role = Role::kFollower;
    Term term;
    NodeId leader;
    ConfState conf;
  };
  struct Node {
    RaftConfig config;
    std::unique_ptr<Raft> raft;  ///< null while crashed
    MemoryStorage storage;
    std::vector<std::string> state;  ///< the state machine: applied non-empty commands
    Observed seen;
    /// A Ready taken by begin-ready whose persistence ("fsync") is still in
    /// flight: its early messages are out, the rest waits for finish-ready.
    std::optional<Ready> in_flight;
  };
  /// Which queued messages a delivery takes: to any of `to` (all when
  /// both `to` and `drop` are empty), optionally only from `from` / of `type`.
  struct Delivery {
    std::set<int> to;
    std::set<int> drop;
    std::optional<int> from;
    std::optional<MessageType> type;
  };
  using Handler = void (InteractionEnv::*)(const Command&);

  // Output.
  void print(const std::string& line);
  /// Prints a state change (role, term, leader, membership): shown even quietly.
  void print_event(const std::string& line);
  class Indent;

  // Nodes and ids.
  Node& node(int id);
  Raft& up(int id);
  static NodeId nid(int id) { return NodeId(std::to_string(id)); }
  static int num(const NodeId& id);
  std::vector<int> all_ids() const;
  std::vector<int> ids_or_all(const std::vector<int>& ids) const;

  // Mechanics (interaction_env.cc).
  void observe(int id);
  void mark_seen(int id);
  void process_ready(int id);
  void begin_ready(int id);
  void finish_ready(int id);
  bool matches(const Delivery& d, const Message& m) const;
  size_t deliver(const Delivery& d);
  bool link_cut(const Message& m) const;
  void stabilize(const std::vector<int>& ids);
  void restore_state(Node& n, const Snapshot& s);
  void start_node(int id);

  // Setup and faults (interaction_commands.cc).
  void cmd_add_nodes(const Command& c);
  RaftConfig config_from(const Command& c) const;
  void cmd_partition(const Command& c);
  void cmd_heal(const Command& c);
  void cmd_crash(const Command& c);
  void cmd_restart(const Command& c);
  // Time and the network.
  void cmd_tick(const Command& c);
  void cmd_tick_election(const Command& c);
  void cmd_tick_heartbeat(const Command& c);
  void cmd_process_ready(const Command& c);
  void cmd_begin_ready(const Command& c);
  void cmd_finish_ready(const Command& c);
  void cmd_deliver_msgs(const Command& c);
  void cmd_stabilize(const Command& c);
  // Requests to one node.
  void cmd_campaign(const Command& c);
  void cmd_propose(const Command& c);
  void cmd_propose_conf_change(const Command& c);
  void cmd_transfer_leadership(const Command& c);
  void cmd_read_index(const Command& c);
  void cmd_compact(const Command& c);
  void cmd_report_snapshot(const Command& c);

  // Inspection (interaction_inspect.cc).
  void cmd_status(const Command& c);
  void cmd_raft_log(const Command& c);
  void cmd_raft_state(const Command& c);
  void cmd_queued_msgs(const Command& c);

  std::map<std::string, Handler> handlers_;
  std::map<int, Node> nodes_;
  std::deque<Message> net_;
  std::set<std::pair<int, int>> cut_;  ///< directed links that drop everything
  std::vector<std::string> out_;
  int indent_ = 0;
  bool quiet_ = false;  ///< only events are printed (stabilize quiet=true)
};

}  // namespace tenure::testing::scripted
