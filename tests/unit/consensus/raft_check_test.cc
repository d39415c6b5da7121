// The core's input checks (consensus/raft_check.cc): a table of hostile
// messages of every type, stepped into a member in each role. Each must be
// dropped with the expected reason, without aborting, and leave the member's
// state exactly as it was (no term, vote, role, log or commit change, no
// message sent, nothing to persist).
#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "tests/support/cluster.h"

namespace tenure::testing {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

enum RoleMask : unsigned { kF = 1, kC = 2, kP = 4, kL = 8, kAll = 15 };

/// A member of a three-member group in a chosen role, plus what its peers are.
struct Subject {
  std::shared_ptr<Cluster> cluster;
  std::string id;      ///< the member under test
  std::string leader;  ///< the known leader ("" for candidates)
  std::string peer;    ///< a member that is not the leader
  Raft& raft() { return cluster->node(id); }
};

Subject make_subject(RoleMask role) {
  RaftConfig cfg;
  cfg.pre_vote = role == kP;
  Subject s{std::make_shared<Cluster>(std::vector<std::string>{"a", "b", "c"}, cfg), "", "", ""};
  Cluster& c = *s.cluster;
  EXPECT_TRUE(c.elect("a"));
  // Commit something beyond the bootstrap so that "committed" means something.
  EXPECT_TRUE(c.node("a").propose("x").ok());
  c.stabilize();
  if (role == kL) {
    s.id = "a", s.leader = "a", s.peer = "b";
  } else if (role == kF) {
    s.id = "b", s.leader = "a", s.peer = "c";
  } else {
    // c alone times out: a candidate (or, with pre-vote, a pre-candidate).
    c.isolate("c");
    while (c.node("c").role() == Role::kFollower) c.tick("c");
    while (c.process_ready("c")) {
    }
    c.queue().clear();
    s.id = "c", s.peer = "b";
  }
  return s;
}

struct Fingerprint {
  Role role;
  Term term;
  NodeId vote, leader;
  LogIndex commit, applied, last, first;
  Term last_term;
  bool operator==(const Fingerprint&) const = default;
};

Fingerprint fingerprint(const Raft& r) {
  Status s = r.status();
  return {s.role, s.term, s.vote, s.leader, s.commit, s.applied, s.last_index, s.first_index, r.log().last_term()};
}

Entry entry(uint64_t term, uint64_t index, EntryType type = EntryType::kNormal, std::string data = "d") {
  Entry e;
  e.term = Term(term);
  e.index = LogIndex(index);
  e.type = type;
  e.data = std::move(data);
  return e;
}

Snapshot snapshot_at(uint64_t index, uint64_t term, std::set<NodeId> voters) {
  Snapshot s;
  s.index = LogIndex(index);
  s.term = Term(term);
  s.conf.voters = std::move(voters);
  s.data = std::make_shared<const std::string>("state");
  return s;
}

struct Case {
  std::string name;
  unsigned roles;
  DropReason want;
  /// Builds the message from the subject (its id, term, log, leader).
  std::function<Message(Subject&)> make;
};

Message base(Subject& s, MessageType type, const std::string& from) {
  Message m;
  m.type = type;
  m.from = NodeId(from);
  m.to = NodeId(s.id);
  m.term = s.raft().term();
  return m;
}

/// Someone who may send `type` to the subject (the leader for leader messages).
std::string sender(Subject& s) { return s.leader.empty() || s.leader == s.id ? s.peer : s.leader; }

std::vector<Case> cases() {
  using MT = MessageType;
  std::vector<Case> out;
  // Envelope: every type, every role.
  for (MT t : {MT::kAppend, MT::kAppendResponse, MT::kVote, MT::kVoteResponse, MT::kPreVote, MT::kPreVoteResponse,
               MT::kHeartbeat, MT::kHeartbeatResponse, MT::kSnapshot, MT::kTimeoutNow, MT::kReadIndex,
               MT::kReadIndexResponse}) {
    std::string n = to_string(t);
    out.push_back({n + " to another member", kAll, DropReason::kWrongRecipient, [t](Subject& s) {
                     Message m = base(s, t, sender(s));
                     m.to = NodeId("zz");
                     return m;
                   }});
    out.push_back({n + " from nobody", kAll, DropReason::kBadSender, [t](Subject& s) { return base(s, t, ""); }});
    out.push_back({n + " from ourselves", kAll, DropReason::kBadSender, [t](Subject& s) { return base(s, t, s.id); }});
    out.push_back({n + " with term 2^64-1", kAll, DropReason::kOutOfRange, [t](Subject& s) {
                     Message m = base(s, t, sender(s));
                     m.term = Term(kMax);
                     return m;
                   }});
    out.push_back({n + " with term 2^63", kAll, DropReason::kOutOfRange, [t](Subject& s) {
                     Message m = base(s, t, sender(s));
                     m.term = Term(uint64_t(1) << 63);
                     return m;
                   }});
    out.push_back({n + " with index 2^64-1", kAll, DropReason::kOutOfRange, [t](Subject& s) {
                     Message m = base(s, t, sender(s));
                     m.index = LogIndex(kMax);
                     return m;
                   }});
    out.push_back({n + " with commit 2^64-1", kAll, DropReason::kOutOfRange, [t](Subject& s) {
                     Message m = base(s, t, sender(s));
                     m.commit = LogIndex(kMax);
                     return m;
                   }});
    out.push_back({n + " with log term 2^64-1", kAll, DropReason::kOutOfRange, [t](Subject& s) {
                     Message m = base(s, t, sender(s));
                     m.log_term = Term(kMax);
                     return m;
                   }});
  }
  // Appends: entries that do not follow, would truncate committed entries, or lie about terms.
  auto append = [](Subject& s, std::vector<Entry> es, uint64_t term_bump = 0) {
    Message m = base(s, MT::kAppend, sender(s));
    m.term = m.term.plus(term_bump);
    m.index = s.raft().log().committed();
    m.log_term = *s.raft().log().term(m.index);
    m.entries = std::move(es);
    return m;
  };
  out.push_back({"append with a gap", kAll, DropReason::kBadEntries, [append](Subject& s) {
                   uint64_t c = s.raft().log().committed().value();
                   return append(s, {entry(s.raft().term().value(), c + 2)}, 1);
                 }});
  out.push_back({"append that would truncate committed entries", kAll, DropReason::kBadEntries,
                 [append](Subject& s) { return append(s, {entry(s.raft().term().value() + 1, 1)}, 1); }});
  out.push_back({"append with an entry of a newer term than the message", kAll, DropReason::kBadEntries,
                 [append](Subject& s) {
                   uint64_t c = s.raft().log().committed().value();
                   return append(s, {entry(s.raft().term().value() + 5, c + 1)}, 1);
                 }});
  out.push_back({"append whose terms go down", kAll, DropReason::kBadEntries, [append](Subject& s) {
                   uint64_t c = s.raft().log().committed().value(), t = s.raft().term().value();
                   return append(s, {entry(t + 1, c + 1), entry(t, c + 2)}, 1);
                 }});
  out.push_back({"append with an entry of term 0", kAll, DropReason::kBadEntries, [append](Subject& s) {
                   Message m = append(s, {entry(0, s.raft().log().committed().value() + 1)}, 1);
                   m.log_term = Term(0);
                   m.index = LogIndex(0);
                   m.entries[0].index = LogIndex(1);
                   return m;
                 }});
  out.push_back({"append with an undecodable membership change", kAll, DropReason::kBadEntries,
                 [append](Subject& s) {
                   uint64_t c = s.raft().log().committed().value();
                   return append(s, {entry(s.raft().term().value() + 1, c + 1, EntryType::kConfChange, "\x07junk")}, 1);
                 }});
  out.push_back({"append whose previous term is newer than the message", kAll, DropReason::kBadEntries,
                 [append](Subject& s) {
                   Message m = append(s, {}, 1);
                   m.log_term = m.term.next();
                   return m;
                 }});
  out.push_back({"append from a second leader in our term", kF | kL, DropReason::kNotFromLeader, [](Subject& s) {
                   Message m = base(s, MT::kAppend, "c" == s.id ? "b" : "c");
                   if (s.id == "a") m.from = NodeId("b");
                   return m;
                 }});
  out.push_back({"heartbeat from a second leader in our term", kF | kL, DropReason::kNotFromLeader,
                 [](Subject& s) {
                   Message m = base(s, MT::kHeartbeat, s.id == "a" ? "b" : "c");
                   m.commit = s.raft().log().last_index();
                   return m;
                 }});
  // Snapshots with inconsistent metadata.
  auto snap_msg = [](Subject& s, std::optional<Snapshot> snap) {
    Message m = base(s, MT::kSnapshot, sender(s));
    m.term = m.term.next();
    m.snapshot = std::move(snap);
    return m;
  };
  std::set<NodeId> abc{NodeId("a"), NodeId("b"), NodeId("c")};
  out.push_back({"snapshot message without a snapshot", kAll, DropReason::kBadSnapshot,
                 [snap_msg](Subject& s) { return snap_msg(s, std::nullopt); }});
  out.push_back({"snapshot at index 0", kAll, DropReason::kBadSnapshot,
                 [snap_msg, abc](Subject& s) { return snap_msg(s, snapshot_at(0, 1, abc)); }});
  out.push_back({"snapshot of term 0", kAll, DropReason::kBadSnapshot,
                 [snap_msg, abc](Subject& s) { return snap_msg(s, snapshot_at(100, 0, abc)); }});
  out.push_back({"snapshot of a term newer than the message", kAll, DropReason::kBadSnapshot,
                 [snap_msg, abc](Subject& s) { return snap_msg(s, snapshot_at(100, s.raft().term().value() + 9, abc)); }});
  out.push_back({"snapshot without voters", kAll, DropReason::kBadSnapshot,
                 [snap_msg](Subject& s) { return snap_msg(s, snapshot_at(100, 1, {})); }});
  out.push_back({"snapshot with a voter that is also a learner", kAll, DropReason::kBadSnapshot,
                 [snap_msg, abc](Subject& s) {
                   Snapshot sn = snapshot_at(100, 1, abc);
                   sn.conf.learners.insert(NodeId("a"));
                   return snap_msg(s, sn);
                 }});
  out.push_back({"snapshot without data", kAll, DropReason::kBadSnapshot, [snap_msg, abc](Subject& s) {
                   Snapshot sn = snapshot_at(100, 1, abc);
                   sn.data.reset();
                   return snap_msg(s, sn);
                 }});
  out.push_back({"snapshot index 2^64-1", kAll, DropReason::kBadSnapshot,
                 [snap_msg, abc](Subject& s) { return snap_msg(s, snapshot_at(kMax, 1, abc)); }});
  out.push_back({"snapshot contradicting a committed entry", kAll, DropReason::kBadSnapshot,
                 [snap_msg, abc](Subject& s) {
                   LogIndex c = s.raft().log().committed();
                   return snap_msg(s, snapshot_at(c.value(), s.raft().log().term(c)->value() + 1, abc));
                 }});
  // Answers to the leader that name what it never sent.
  out.push_back({"append ack past the leader's log", kL, DropReason::kPastLogEnd, [](Subject& s) {
                   Message m = base(s, MT::kAppendResponse, "b");
                   m.index = s.raft().log().last_index().plus(1000);
                   return m;
                 }});
  out.push_back({"append rejection with a hint past the rejected index", kL, DropReason::kPastLogEnd,
                 [](Subject& s) {
                   Message m = base(s, MT::kAppendResponse, "b");
                   m.reject = true;
                   m.index = LogIndex(1);
                   m.reject_hint = LogIndex(5);
                   return m;
                 }});
  out.push_back({"heartbeat answer to a read round never started", kL, DropReason::kBadContext, [](Subject& s) {
                   Message m = base(s, MT::kHeartbeatResponse, "b");
                   m.context = 1000;
                   return m;
                 }});
  // Elections.
  for (MT t : {MT::kVote, MT::kPreVote}) {
    out.push_back({std::string(to_string(t)) + " whose last log term is newer than its term", kAll,
                   DropReason::kBadEntries, [t](Subject& s) {
                     Message m = base(s, t, s.peer);
                     m.term = m.term.next();
                     m.index = LogIndex(1000);
                     m.log_term = m.term.plus(3);
                     return m;
                   }});
  }
  // Messages only the leader of our term may send.
  out.push_back({"timeout-now from a member that is not the leader", kF | kL, DropReason::kNotFromLeader,
                 [](Subject& s) { return base(s, MT::kTimeoutNow, s.peer); }});
  out.push_back({"read index answer from a member that is not the leader", kF | kL,
                 DropReason::kNotFromLeader, [](Subject& s) {
                   Message m = base(s, MT::kReadIndexResponse, s.peer);
                   m.index = LogIndex(1);
                   m.context = 1;
                   return m;
                 }});
  return out;
}

const char* role_name(RoleMask r) {
  switch (r) {
    case kF: return "follower";
    case kC: return "candidate";
    case kP: return "pre-candidate";
    case kL: return "leader";
    default: return "?";
  }
}

TEST(RaftCheck, HostileMessagesAreDroppedWithoutEffectInEveryRole) {
  size_t checked = 0;
  for (RoleMask role : {kF, kC, kP, kL}) {
    for (const Case& c : cases()) {
      if (!(c.roles & role)) continue;
      Subject s = make_subject(role);
      ASSERT_FALSE(s.raft().has_ready()) << role_name(role);
      Fingerprint before = fingerprint(s.raft());
      Message m = c.make(s);
      auto why = s.raft().step(std::move(m));
      ASSERT_TRUE(why.has_value()) << role_name(role) << ": " << c.name << " was accepted";
      EXPECT_EQ(to_string(*why), std::string(to_string(c.want))) << role_name(role) << ": " << c.name;
      EXPECT_EQ(fingerprint(s.raft()), before) << role_name(role) << ": " << c.name << " changed the state";
      EXPECT_FALSE(s.raft().has_ready()) << role_name(role) << ": " << c.name << " produced output";
      ++checked;
    }
  }
  EXPECT_GT(checked, 200u);
}

TEST(RaftCheck, TheGroupStillCommitsAfterEveryHostileMessage) {
  // The whole table at a follower and the leader of one group, then a write.
  Subject leader = make_subject(kL);
  Subject follower{leader.cluster, "b", "a", "c"};
  Cluster& c = *leader.cluster;
  for (const Case& k : cases()) {
    if (k.roles & kL) {
      EXPECT_TRUE(c.node("a").step(k.make(leader)).has_value()) << k.name;
    }
    if (k.roles & kF) {
      EXPECT_TRUE(c.node("b").step(k.make(follower)).has_value()) << k.name;
    }
  }
  c.stabilize();
  ASSERT_EQ(c.leader(), "a");
  ASSERT_TRUE(c.node("a").propose("after").ok());
  c.stabilize();
  for (const auto& id : c.ids()) {
    EXPECT_EQ(c.applied(id).back().data, "after") << id;
  }
}

TEST(RaftCheck, AGrantFromANonVoterIsStaleNotHostile) {
  // A candidate's configuration can change between its request and the
  // answers (a removal applied mid-campaign): an answer from a member that
  // is no longer a voter is not dropped as hostile, and does not count.
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  c.isolate("b");
  while (c.node("b").role() != Role::kPreCandidate) c.tick("b");
  for (const char* stranger : {"x", "y", "z"}) {
    Message m;
    m.type = MessageType::kPreVoteResponse;
    m.from = NodeId(stranger);
    m.to = NodeId("b");
    m.term = c.node("b").term().next();
    EXPECT_FALSE(c.node("b").step(m).has_value()) << stranger;
  }
  EXPECT_EQ(c.node("b").role(), Role::kPreCandidate) << "non-voters' grants made a quorum";
}

TEST(RaftCheck, HonestTrafficIsNeverDropped) {
  // A group that elects, replicates, snapshots a lagging member back and
  // serves reads sees no drop: the checks refuse only inconsistent input.
  Cluster c({"a", "b", "c"});
  size_t dropped = 0;
  ASSERT_TRUE(c.elect("a"));
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(c.node("a").propose("v" + std::to_string(i)).ok());
    ASSERT_TRUE(c.node("b").read_index(uint64_t(i + 1)).ok());
    while (c.process_ready("a") || c.process_ready("b") || c.process_ready("c")) {
    }
    for (auto& m : std::exchange(c.queue(), {})) {
      dropped += c.node(m.to.str()).step(std::move(m)).has_value();
    }
    c.tick("a");
  }
  c.stabilize();
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(c.applied("c").back().data, "v49");
}

}  // namespace
}  // namespace tenure::testing
