#pragma once
// An in-memory Raft group for tests and benchmarks: real Raft cores, each with
// a MemoryStorage, connected by a message queue the test controls. Every
// step is synchronous and deterministic.

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "consensus/raft.h"
#include "tests/support/memory_storage.h"

namespace tenure::testing {

class Cluster {
 public:
  /// A group of `ids` bootstrapped together; `base` supplies timeouts and knobs.
  explicit Cluster(const std::vector<std::string>& ids, RaftConfig base = RaftConfig());

  Raft& node(const std::string& id) { return *nodes_.at(id).raft; }
  MemoryStorage& storage(const std::string& id) { return nodes_.at(id).storage; }
  /// Entries applied by `id`, in order (its state machine's input).
  const std::vector<Entry>& applied(const std::string& id) const { return nodes_.at(id).applied; }
  /// Read states delivered to `id`.
  const std::vector<ReadState>& read_states(const std::string& id) const { return nodes_.at(id).reads; }
  std::vector<std::string> ids() const;
  bool is_up(const std::string& id) const { return nodes_.at(id).raft != nullptr; }

  /// Processes one Ready of `id` (persist, queue messages, apply, advance); false if none.
  bool process_ready(const std::string& id);
  /// Delivers every queued message (in order) whose link is up; returns how many.
  size_t deliver_all();
  /// Processes readies and delivers messages until nothing moves.
  void stabilize(int max_rounds = 10000);
  /// Ticks `id` n times (no stabilization).
  void tick(const std::string& id, int n = 1);
  /// Ticks a node until it is leader; stabilizes in between. Returns success.
  bool elect(const std::string& id);
  /// The current leader with the highest term, or "" if none.
  std::string leader() const;

  /// Cuts the link between a and b (both directions).
  void cut(const std::string& a, const std::string& b);
  void isolate(const std::string& id);
  void heal();
  /// Drops messages matching a predicate (in addition to cut links).
  void set_filter(std::function<bool(const Message&)> drop) { filter_ = std::move(drop); }

  /// Loses the in-memory state; keeps what was persisted.
  void crash(const std::string& id);
  void restart(const std::string& id);
  /// Adds a brand-new, empty member (it learns everything from the leader).
  void add_empty_node(const std::string& id);

  /// Queued, not yet delivered messages.
  std::deque<Message>& queue() { return queue_; }

 private:
  struct Node {
    std::unique_ptr<Raft> raft;
    MemoryStorage storage;
    std::vector<Entry> applied;
    std::vector<ReadState> reads;
  };
  RaftConfig config_for(const std::string& id) const;
  bool link_up(const Message& m) const;

  RaftConfig base_;
  std::map<std::string, Node> nodes_;
  std::deque<Message> queue_;
  std::set<std::pair<std::string, std::string>> cut_;
  std::function<bool(const Message&)> filter_;
};

}  // namespace tenure::testing
