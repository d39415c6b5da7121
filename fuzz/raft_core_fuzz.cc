// A structure-aware fuzz target of the Raft core (issue 8 §6): the input
// drives a three-member group (tests/support/cluster.h, real cores) through
// valid steps (ticks, deliveries, proposals, reads, losses, crashes and
// restarts, replays of messages already delivered) and, between them,
// arbitrary messages built from the input: any type, sender, recipient,
// term, index, commit, entries and snapshot, mostly near the member's own
// state so that they reach deep into the handlers.
//
// Properties:
//   - nothing aborts (a TENURE_CHECK reached from a message is a crash);
//   - as long as the core dropped every arbitrary message (step() returned
//     a reason), the simulator's checkers hold after every step: one leader
//     per term and log matching between every pair of members, plus
//     committed prefixes that agree. (A forged message the core accepts
//     may be indistinguishable from a real leader's: Raft does not survive
//     a lying member, so the checkers only judge runs where none got in.)
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <string>
#include <vector>

#include "sim/checkers.h"
#include "tests/support/cluster.h"

namespace {

using namespace tenure::consensus;
using tenure::sim::LeaderPerTerm;
using tenure::sim::LogMatching;
using tenure::testing::Cluster;

const std::vector<std::string> kIds = {"a", "b", "c"};

uint64_t near(FuzzedDataProvider& in, uint64_t base) {
  switch (in.ConsumeIntegralInRange<int>(0, 7)) {
    case 0: return in.ConsumeIntegral<uint64_t>();            // anything, 2^64-1 included
    case 1: return 0;
    default: {
      int64_t d = in.ConsumeIntegralInRange<int64_t>(-3, 3);  // around our own state
      return d < 0 && base < uint64_t(-d) ? 0 : base + static_cast<uint64_t>(d);
    }
  }
}

std::string pick_id(FuzzedDataProvider& in) {
  static const std::vector<std::string> ids = {"a", "b", "c", "x", ""};
  return ids[in.ConsumeIntegralInRange<size_t>(0, ids.size() - 1)];
}

Message forge(FuzzedDataProvider& in, const Raft& target) {
  Message m;
  m.type = static_cast<MessageType>(in.ConsumeIntegralInRange<int>(0, 11));
  m.from = NodeId(pick_id(in));
  m.to = in.ConsumeIntegralInRange<int>(0, 15) == 0 ? NodeId(pick_id(in)) : target.id();
  m.term = Term(near(in, target.term().value()));
  m.log_term = Term(near(in, target.log().last_term().value()));
  m.index = LogIndex(near(in, target.log().last_index().value()));
  m.commit = LogIndex(near(in, target.log().committed().value()));
  m.reject = in.ConsumeBool();
  m.reject_hint = LogIndex(near(in, m.index.value()));
  m.context = near(in, 1);
  size_t n = in.ConsumeIntegralInRange<size_t>(0, 4);
  for (size_t k = 0; k < n; ++k) {
    Entry e;
    e.index = in.ConsumeBool() ? m.index.plus(k + 1) : LogIndex(near(in, m.index.value()));
    e.term = Term(near(in, m.term.value()));
    e.type = in.ConsumeBool() ? EntryType::kNormal : EntryType::kConfChange;
    e.data = in.ConsumeBool() && e.type == EntryType::kConfChange
                 ? encode_conf_change(ConfChange{static_cast<ConfChangeType>(in.ConsumeIntegralInRange<int>(0, 2)),
                                                 NodeId(pick_id(in)), ""})
                 : in.ConsumeRandomLengthString(16);
    m.entries.push_back(std::move(e));
  }
  if (m.type == MessageType::kSnapshot && in.ConsumeBool()) {
    Snapshot s;
    s.index = LogIndex(near(in, target.log().committed().value()));
    s.term = Term(near(in, target.term().value()));
    for (size_t k = in.ConsumeIntegralInRange<size_t>(0, 3); k > 0; --k) s.conf.voters.insert(NodeId(pick_id(in)));
    if (in.ConsumeBool()) s.conf.learners.insert(NodeId(pick_id(in)));
    if (in.ConsumeBool()) s.data = std::make_shared<const std::string>(in.ConsumeRandomLengthString(8));
    m.snapshot = std::move(s);
  }
  return m;
}

void check(Cluster& c, LeaderPerTerm& leaders) {
  for (const auto& id : kIds) {
    if (!c.is_up(id) || c.node(id).role() != Role::kLeader) continue;
    if (auto v = leaders.observe(NodeId(id), c.node(id).term())) {
      std::fprintf(stderr, "VIOLATION %s\n", v->describe().c_str());
      std::abort();
    }
  }
  for (size_t i = 0; i < kIds.size(); ++i) {
    for (size_t j = i + 1; j < kIds.size(); ++j) {
      if (!c.is_up(kIds[i]) || !c.is_up(kIds[j])) continue;
      const RaftLog& a = c.node(kIds[i]).log();
      const RaftLog& b = c.node(kIds[j]).log();
      if (auto v = LogMatching::compare(NodeId(kIds[i]), a, NodeId(kIds[j]), b)) {
        std::fprintf(stderr, "VIOLATION %s\n", v->describe().c_str());
        std::abort();
      }
      // Committed prefixes agree wherever both still hold the entry.
      LogIndex top = std::min(a.committed(), b.committed());
      for (LogIndex k = std::max(a.first_index(), b.first_index()); k <= top; k = k.next()) {
        if (a.term(k) != b.term(k)) {
          std::fprintf(stderr, "VIOLATION committed entry %lu differs between %s and %s\n",
                       static_cast<unsigned long>(k.value()), kIds[i].c_str(), kIds[j].c_str());
          std::abort();
        }
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  RaftConfig cfg;
  cfg.election_ticks = 10;
  cfg.heartbeat_ticks = 1;
  cfg.random_seed = in.ConsumeIntegral<uint8_t>();
  cfg.max_inflight_msgs = 4;
  Cluster c(kIds, cfg);
  LeaderPerTerm leaders;
  std::deque<Message> delivered;  // recent honest messages, for replays
  bool forged_accepted = false;
  for (int steps = 0; steps < 200 && in.remaining_bytes() > 0; ++steps) {
    const std::string& id = kIds[in.ConsumeIntegralInRange<size_t>(0, 2)];
    switch (in.ConsumeIntegralInRange<int>(0, 8)) {
      case 0: c.tick(id, in.ConsumeIntegralInRange<int>(1, 12)); break;
      case 1: c.stabilize(50); break;
      case 2:
        if (c.is_up(id)) (void)c.node(id).propose(in.ConsumeRandomLengthString(8));
        break;
      case 3:
        for (const auto& m : c.queue()) {
          delivered.push_back(m);
          if (delivered.size() > 32) delivered.pop_front();
        }
        c.deliver_all();
        break;
      case 4:
        if (c.is_up(id)) {
          Message m = forge(in, c.node(id));
          if (!c.node(id).step(std::move(m))) forged_accepted = true;
        }
        break;
      case 5: c.queue().clear(); break;  // the network loses what is in flight
      case 6:
        if (c.is_up(id)) {
          c.crash(id);
        } else {
          c.restart(id);
        }
        break;
      case 7:
        if (!delivered.empty()) {  // duplicates and reordering are honest
          Message m = delivered[in.ConsumeIntegralInRange<size_t>(0, delivered.size() - 1)];
          // Answers to a forged sender ("x") have nowhere to go.
          bool member = std::find(kIds.begin(), kIds.end(), m.to.str()) != kIds.end();
          if (member && c.is_up(m.to.str())) (void)c.node(m.to.str()).step(std::move(m));
        }
        break;
      case 8:
        if (c.is_up(id)) (void)c.node(id).read_index(in.ConsumeIntegral<uint8_t>());
        break;
    }
    while (c.is_up(id) && c.process_ready(id)) {
    }
    if (!forged_accepted) check(c, leaders);
  }
  return 0;
}
