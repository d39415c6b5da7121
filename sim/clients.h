#pragma once
// Simulated clients: each runs one operation at a time, a write (a unique
// value to a random key) or a linearizable read (ReadIndex at the leader or,
// as often as the run's options say, at any member), with a timeout and a
// bounded number of retries. Redirects follow the NotLeader hint. What
// clients are told feeds the acked-writes and linearizable-reads checkers.

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "sim/checkers.h"
#include "sim/node.h"
#include "sim/options.h"
#include "sim/rng.h"

namespace tenure::sim {

/// What clients need from the simulator.
class ClientEnv {
 public:
  virtual ~ClientEnv() = default;
  virtual int64_t now() const = 0;
  virtual void after(int64_t delay_us, std::function<void()> f) = 0;
  /// Delivers `r` to member `to` shortly (lost if it is down by then).
  virtual void submit(const NodeId& to, const ClientRequest& r) = 0;
  /// The members clients may address, in a stable order.
  virtual std::vector<NodeId> members() const = 0;
  /// Reports a violation found while checking a client's result.
  virtual void report(Check c) = 0;
  /// Whether trace lines are wanted (verbose runs only).
  virtual bool tracing() const = 0;
  virtual void trace(const std::string& line) = 0;
};

struct ClientStats {
  uint64_t writes_acked = 0;
  uint64_t reads_ok = 0;
  uint64_t timeouts = 0;
  uint64_t redirects = 0;
  uint64_t gave_up = 0;
};

class Clients {
 public:
  Clients(const RunOptions& o, Rng& rng, ClientEnv& env, History& history, AckedWrites& acked,
          LinearizableReads& reads);
  /// Starts every client's first operation.
  void start();
  /// A member answered one of our requests.
  void on_reply(const ClientReply& r);
  /// Gives every attempt a fresh id from the same counter as the simulator's own probes.
  uint64_t next_attempt_id() { return ++attempt_seq_; }
  const ClientStats& stats() const { return stats_; }

 private:
  struct Client {
    int id = 0;
    uint64_t attempt = 0;  ///< the attempt in flight; 0 when idle
    bool write = false;
    std::string key;
    std::string value;
    int tries = 0;
    uint64_t ops = 0;
    NodeId leader_guess;
    LogIndex min_index;  ///< reads: the highest acknowledged write when the attempt began
  };
  void next_op(Client& c);
  void send_attempt(Client& c, NodeId target);
  void retry(Client& c, NodeId target, int64_t delay_us);
  void finish(Client& c);
  NodeId choose_target(const Client& c);
  NodeId random_member();
  void on_ok(Client& c, const ClientReply& r);

  const RunOptions& o_;
  Rng& rng_;
  ClientEnv& env_;
  History& history_;
  AckedWrites& acked_;
  LinearizableReads& reads_;
  std::vector<Client> clients_;
  uint64_t attempt_seq_ = 0;
  ClientStats stats_;
};

}  // namespace tenure::sim
