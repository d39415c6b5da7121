#pragma once
// A Raft group driven by hand for regression tests of bugs tenure-sim found:
// real cores with in-memory storage and a FIFO message queue, where a test
// can hold one member's Ready between ready() and advance() (its fsync in
// flight) while it keeps stepping, drop messages, restart a member from its
// storage, and, like the controller's driver, skip persisting Readies that
// need no fsync.

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "consensus/raft.h"
#include "tests/support/memory_storage.h"

namespace tenure::sim {

using namespace tenure::consensus;

class ManualGroup {
 public:
  explicit ManualGroup(const std::vector<std::string>& ids, bool skip_unsynced = false) : skip_unsynced_(skip_unsynced) {
    std::vector<NodeId> voters;
    for (const auto& id : ids) voters.emplace_back(id);
    InitialState boot = bootstrap_state(voters);
    for (const auto& id : ids) {
      RaftConfig cfg;
      cfg.id = NodeId(id);
      cfg.election_ticks = 10;
      cfg.random_seed = 7;
      members_[id].storage.set_initial(boot);
      members_[id].raft = std::make_unique<Raft>(cfg, members_[id].storage.initial_state());
      process(id);
    }
  }
  Raft& raft(const std::string& id) { return *members_.at(id).raft; }

  void process(const std::string& id) {
    Member& m = members_.at(id);
    while (!m.held && m.raft->has_ready()) {
      Ready rd = m.raft->ready();
      for (auto& msg : rd.early_messages) queue_.push_back(std::move(msg));
      rd.early_messages.clear();
      if (m.hold_conf_changes && std::any_of(rd.committed_entries.begin(), rd.committed_entries.end(),
                                             [](const Entry& e) { return e.type == EntryType::kConfChange; })) {
        m.held = std::move(rd);  // its fsync stays in flight until release()
        return;
      }
      if (rd.must_sync() || !skip_unsynced_) m.storage.persist(rd);
      for (auto& msg : rd.messages) queue_.push_back(std::move(msg));
      m.raft->advance();
    }
  }
  // Loses everything but the storage, and starts again from it.
  void restart(const std::string& id) {
    Member& m = members_.at(id);
    RaftConfig cfg = m.raft->config();
    m.held.reset();
    m.raft = std::make_unique<Raft>(cfg, m.storage.initial_state());
    process(id);
  }
  const testing::MemoryStorage& storage(const std::string& id) const { return members_.at(id).storage; }
  // The next Ready of `id` that hands out a committed membership change
  // stays unfinished (its fsync in flight) until release().
  void hold_conf_changes(const std::string& id) { members_.at(id).hold_conf_changes = true; }
  bool holding(const std::string& id) const { return members_.at(id).held.has_value(); }
  void release(const std::string& id) {
    Member& m = members_.at(id);
    m.hold_conf_changes = false;
    m.storage.persist(*m.held);
    for (auto& msg : m.held->messages) queue_.push_back(std::move(msg));
    m.held.reset();
    m.raft->advance();
    process(id);
  }
  // Delivers queued messages until none is left; `drop` loses some.
  void stabilize(const std::function<bool(const Message&)>& drop = nullptr) {
    for (int guard = 0; guard < 10000 && !queue_.empty(); ++guard) {
      Message msg = std::move(queue_.front());
      queue_.pop_front();
      if (drop && drop(msg)) continue;
      std::string to = msg.to.str();
      members_.at(to).raft->step(std::move(msg));
      process(to);
    }
  }
  void tick(const std::string& id, int n) {
    for (int i = 0; i < n; ++i) {
      members_.at(id).raft->tick();
      process(id);
    }
  }
  size_t queued() const { return queue_.size(); }

 private:
  struct Member {
    std::unique_ptr<Raft> raft;
    testing::MemoryStorage storage;
    std::optional<Ready> held;
    bool hold_conf_changes = false;
  };
  bool skip_unsynced_;
  std::map<std::string, Member> members_;
  std::deque<Message> queue_;
};

}  // namespace tenure::sim
