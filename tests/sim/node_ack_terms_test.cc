// What sim::Node (the production driver under the simulator) tells the
// ack-persisted checker an AppendResponse acknowledges while an fsync runs
// (tenure-sim seed 572, 81022f1).
//
// While a Ready's fsync is in flight the member keeps stepping, so an ack can
// wait in the core for the next Ready while a newer leader replaces the entry
// it names. The checker used to take the acknowledged term from the log when
// the Ready was cut: an ack of index 6 made for (6, term 2) and sent after
// (6, term 3) was persisted looked durable. Node now records the term right
// after the step that made the ack. The planted bug keep-replaced-acks keeps
// such acks in the core (the bug 81022f1 fixed) so that they reach the checker.
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "sim/checkers.h"
#include "sim/node.h"
#include "sim/state_machine.h"

namespace tenure::sim {
namespace {

using consensus::Entry;
using consensus::HardState;
using consensus::InitialState;
using consensus::MessageType;
using consensus::Ready;
using consensus::Snapshot;

struct Ack {
  NodeId to;
  LogIndex index;
  std::optional<Term> acked_term;
};

// Feeds every message to the ack-persisted checker, as the simulator does,
// and runs the member's events on a clock the test moves: a fsync takes
// 1 ms, everything else happens at once.
class RecordingHooks final : public NodeHooks {
 public:
  void on_send(Node& from, Message m, bool, std::optional<Term> acked_term) override {
    if (m.type == MessageType::kAppendResponse && !m.reject) acks.push_back(Ack{m.to, m.index, acked_term});
    if (auto v = checker_.on_send(from.id(), m, from.store(), acked_term); v && !violation) violation = v;
  }
  void on_persisted(Node&, const Ready&, const HardState&, Term, const std::optional<std::string>&) override {}
  void schedule(Node&, int64_t delay_us, std::function<void()> fn) override {
    events_.emplace(std::make_pair(now_ + delay_us, seq_++), std::move(fn));
  }
  int64_t fsync_us(Node&) override { return 1000; }
  int64_t handoff_us(Node&) override { return 0; }
  uint64_t steady_ns(const Node&) const override { return static_cast<uint64_t>(now_) * 1000; }
  bool link_healthy(const Node&, const NodeId&) const override { return true; }
  void probe(Node&, const NodeId&, std::function<void(bool)> done) override { done(false); }
  int64_t now_us() const override { return now_; }
  void on_applied(Node&, const Entry&) override {}
  void on_restored(Node&, const Snapshot&) override {}
  void on_read_back(Node&, const std::vector<Entry>&) override {}
  void on_lease_read(Node&) override {}
  void on_started(Node&, const InitialState&) override {}
  void on_reply(Node&, ClientReply) override {}
  void on_crashed(Node&) override {}

  /// Runs what is due now (the driver's posted work), not the fsyncs.
  void run_due() {
    while (!events_.empty() && events_.begin()->first.first <= now_) {
      auto fn = std::move(events_.begin()->second);
      events_.erase(events_.begin());
      fn();
    }
  }
  /// Moves the clock to the next event (a fsync completing) and runs what is due.
  void finish_fsync() {
    ASSERT_FALSE(events_.empty());
    now_ = events_.begin()->first.first;
    run_due();
  }

  std::vector<Ack> acks;
  std::optional<Violation> violation;

 private:
  AckPersisted checker_;
  int64_t now_ = 0;
  uint64_t seq_ = 0;
  std::map<std::pair<int64_t, uint64_t>, std::function<void()>> events_;
};

std::vector<Entry> entries(uint64_t first, uint64_t last, uint64_t term) {
  std::vector<Entry> out;
  for (uint64_t i = first; i <= last; ++i) out.push_back(Entry{Term(term), LogIndex(i), EntryType::kNormal, "e"});
  return out;
}

Message append(const char* from, uint64_t term, uint64_t prev, uint64_t prev_term, std::vector<Entry> ents) {
  Message m;
  m.type = MessageType::kAppend;
  m.from = NodeId(from);
  m.to = NodeId("b");
  m.term = Term(term);
  m.index = LogIndex(prev);
  m.log_term = Term(prev_term);
  m.entries = std::move(ents);
  m.commit = LogIndex(4);
  return m;
}

// Member b of {a, b, c} with 1..4 of term 1 committed.
std::unique_ptr<Node> follower_b(RecordingHooks& hooks, bool keep_replaced_acks) {
  Node::Settings s;
  s.tick_us = 10000;
  s.raft.knobs.keep_acks_of_replaced_entries = keep_replaced_acks;
  auto n = std::make_unique<Node>(NodeId("b"), s, [] { return std::make_unique<KvRegister>(); }, hooks);
  InitialState init;
  init.snapshot.conf.voters = {NodeId("a"), NodeId("b"), NodeId("c")};
  init.entries = entries(1, 4, 1);
  init.hard_state = HardState{Term(2), NodeId(), LogIndex(4)};
  n->store().set_initial(init);
  n->start(1);
  hooks.run_due();
  return n;
}

// The sequence of seed 572: acks of 6 and 7 (term 2) wait while 5 is being
// persisted; the leader of term 3 replaces 6 and 7 by its own 6.
void run_seed_572_sequence(Node& b, RecordingHooks& hooks) {
  b.step(append("a", 2, 4, 1, entries(5, 5, 2)));
  hooks.run_due();
  ASSERT_TRUE(b.fsync_in_flight());
  b.step(append("a", 2, 5, 2, entries(6, 6, 2)));
  b.step(append("a", 2, 6, 2, entries(7, 7, 2)));
  b.step(append("c", 3, 5, 2, entries(6, 6, 3)));
  hooks.run_due();
  hooks.finish_fsync();  // sends the ack of 5, cuts the Ready persisting (6, term 3)
  ASSERT_TRUE(b.fsync_in_flight());
  hooks.finish_fsync();
  ASSERT_FALSE(b.fsync_in_flight());
}

TEST(NodeAckTerms, AnAckIsJudgedByTheEntryItNamedWhenMade) {
  RecordingHooks hooks;
  auto b = follower_b(hooks, /*keep_replaced_acks=*/true);
  run_seed_572_sequence(*b, hooks);
  std::optional<Term> acked_6;
  for (const auto& a : hooks.acks) {
    if (a.to == NodeId("a") && a.index == LogIndex(6)) acked_6 = a.acked_term;
  }
  ASSERT_TRUE(acked_6.has_value());
  EXPECT_EQ(*acked_6, Term(2)) << "judged by the entry that replaced it";
  ASSERT_TRUE(hooks.violation.has_value());
  EXPECT_EQ(hooks.violation->checker, "ack-persisted");
  EXPECT_EQ(hooks.violation->index, LogIndex(6));
}

TEST(NodeAckTerms, TheFixedCoreSendsNoAckOfAReplacedEntry) {
  RecordingHooks hooks;
  auto b = follower_b(hooks, /*keep_replaced_acks=*/false);
  run_seed_572_sequence(*b, hooks);
  for (const auto& a : hooks.acks) {
    if (a.to == NodeId("a")) {
      EXPECT_LE(a.index, LogIndex(5));
    }
  }
  EXPECT_FALSE(hooks.violation.has_value()) << (hooks.violation ? hooks.violation->describe() : "");
}

}  // namespace
}  // namespace tenure::sim
