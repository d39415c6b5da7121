// The Raft paper, §5.1 and §5.2: terms and leader election.
// One test per claim of the Raft paper (Ongaro & Ousterhout, "In Search of an
// Understandable Consensus Algorithm", extended version); helpers and the
// method in raft_paper_util.h.
#include "tests/unit/consensus/raft_paper_util.h"

namespace tenure::consensus {
namespace {

using namespace paper;

// §5.1: "If one server's current term is smaller than the other's, then it
// updates its current term to the larger value. If a candidate or leader
// discovers that its term is out of date, it immediately reverts to follower state."
TEST(RaftPaper, Section5_1_FollowerUpdatesTermFromMessage) {
  auto r = new_raft(1, 3);
  r->step(append_from(2, 1, 0, 0));
  r->step(append_from(2, 2, 0, 0));
  EXPECT_EQ(r->term(), Term(2));
  EXPECT_EQ(r->role(), Role::kFollower);
  EXPECT_EQ(r->leader(), nid(2));
}

TEST(RaftPaper, Section5_1_CandidateUpdatesTermFromMessage) {
  auto r = new_raft(1, 3);
  r->campaign();
  ASSERT_EQ(r->role(), Role::kCandidate);
  r->step(append_from(2, 2, 0, 0));
  EXPECT_EQ(r->term(), Term(2));
  EXPECT_EQ(r->role(), Role::kFollower);
}

TEST(RaftPaper, Section5_1_LeaderUpdatesTermFromMessage) {
  auto r = new_raft(1, 3);
  make_leader(*r);
  ASSERT_EQ(r->term(), Term(1));
  r->step(append_from(2, 2, 0, 0));
  EXPECT_EQ(r->term(), Term(2));
  EXPECT_EQ(r->role(), Role::kFollower);
  EXPECT_EQ(r->leader(), nid(2));
}

// §5.1: "If a server receives a request with a stale term number, it rejects
// the request." Like etcd we ignore it: nothing is appended, the sender is not
// taken as leader, and nothing acknowledges the entries.
TEST(RaftPaper, Section5_1_RejectsStaleTermMessage) {
  auto r = new_raft(1, 3, {}, HardState{Term(2), NodeId(), LogIndex(0)});
  r->step(append_from(2, 1, 0, 0, terms_from(1, {1})));
  EXPECT_EQ(r->log().last_index(), LogIndex(0));
  EXPECT_TRUE(r->leader().empty());
  EXPECT_EQ(r->term(), Term(2));
  EXPECT_TRUE(read_messages(*r).empty());
}

// §5.2: "When servers start up, they begin as followers."
TEST(RaftPaper, Section5_2_StartsAsFollower) {
  auto r = new_raft(1, 3);
  EXPECT_EQ(r->role(), Role::kFollower);
  EXPECT_TRUE(r->leader().empty());
}

// §5.2: "Leaders send periodic heartbeats (AppendEntries RPCs that carry no
// log entries) to all followers in order to maintain their authority."
TEST(RaftPaper, Section5_2_LeaderBroadcastsHeartbeat) {
  auto r = new_raft(1, 3);
  make_leader(*r);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(r->propose("e" + std::to_string(i)).ok());
  read_messages(*r);
  r->tick();  // heartbeat_ticks == 1
  auto msgs = read_messages(*r);
  ASSERT_EQ(msgs.size(), 2u);
  for (size_t k = 0; k < msgs.size(); ++k) {
    EXPECT_EQ(msgs[k].to, nid(k + 2));
    EXPECT_EQ(msgs[k].type, MessageType::kHeartbeat);
    EXPECT_EQ(msgs[k].term, Term(1));
    EXPECT_TRUE(msgs[k].entries.empty());
    // Nothing acknowledged yet: never tell a follower to commit what it may not hold.
    EXPECT_EQ(msgs[k].commit, LogIndex(0));
  }
}

// §5.2: "If a follower receives no communication over a period of time called
// the election timeout, then it ... begins an election": it increments its
// term, becomes candidate, votes for itself and sends RequestVote in parallel
// to every other server. "If many followers become candidates at the same
// time ... each candidate will time out and start a new election by
// incrementing its term and initiating another round of RequestVote RPCs."
void check_nonleader_starts_election(bool from_candidate) {
  auto r = new_raft(1, 3);
  if (from_candidate) {
    r->campaign();
  } else {
    r->step(append_from(2, 1, 0, 0));
  }
  read_messages(*r);
  ASSERT_EQ(r->term(), Term(1));
  // The randomized timeout lies in [et, 2et): 2et-1 ticks trigger exactly one election.
  for (int i = 1; i < 2 * kElectionTicks; ++i) r->tick();
  EXPECT_EQ(r->term(), Term(2));
  EXPECT_EQ(r->role(), Role::kCandidate);
  EXPECT_EQ(r->status().vote, nid(1));
  auto msgs = read_messages(*r);
  ASSERT_EQ(msgs.size(), 2u);
  for (size_t k = 0; k < msgs.size(); ++k) {
    EXPECT_EQ(msgs[k].type, MessageType::kVote);
    EXPECT_EQ(msgs[k].to, nid(k + 2));
    EXPECT_EQ(msgs[k].term, Term(2));
    EXPECT_EQ(msgs[k].index, LogIndex(0));
    EXPECT_EQ(msgs[k].log_term, Term(0));
  }
}

TEST(RaftPaper, Section5_2_FollowerStartsElectionOnTimeout) { check_nonleader_starts_election(false); }
TEST(RaftPaper, Section5_2_CandidateStartsNewElectionOnTimeout) { check_nonleader_starts_election(true); }

// §5.2: a candidate (a) wins once it has votes from a majority, (b) returns
// to follower once a majority denied it, (c) otherwise keeps waiting.
TEST(RaftPaper, Section5_2_LeaderElectionInOneRoundRPC) {
  struct Case {
    int size;
    std::map<uint64_t, bool> votes;
    Role want;
  };
  const std::vector<Case> cases = {
      {1, {}, Role::kLeader},
      {3, {{2, true}, {3, true}}, Role::kLeader},
      {3, {{2, true}}, Role::kLeader},
      {5, {{2, true}, {3, true}, {4, true}, {5, true}}, Role::kLeader},
      {5, {{2, true}, {3, true}, {4, true}}, Role::kLeader},
      {5, {{2, true}, {3, true}}, Role::kLeader},
      {3, {{2, false}, {3, false}}, Role::kFollower},
      {5, {{2, false}, {3, false}, {4, false}, {5, false}}, Role::kFollower},
      {5, {{2, true}, {3, false}, {4, false}, {5, false}}, Role::kFollower},
      {3, {}, Role::kCandidate},
      {5, {{2, true}}, Role::kCandidate},
      {5, {{2, false}, {3, false}}, Role::kCandidate},
      {5, {}, Role::kCandidate},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& tt = cases[i];
    auto r = new_raft(1, tt.size);
    r->campaign();
    read_messages(*r);
    for (const auto& [id, granted] : tt.votes) {
      Message m;
      m.type = MessageType::kVoteResponse;
      m.from = nid(id);
      m.to = nid(1);
      m.term = r->term();
      m.reject = !granted;
      r->step(m);
    }
    EXPECT_EQ(r->role(), tt.want) << "case " << i;
    EXPECT_EQ(r->term(), Term(1)) << "case " << i;
  }
}

// §5.2: "Each server will vote for at most one candidate in a given term, on
// a first-come-first-served basis."
TEST(RaftPaper, Section5_2_FollowerVotesOncePerTermFirstComeFirstServed) {
  struct Case {
    uint64_t vote;  // 0: none yet
    uint64_t candidate;
    bool want_reject;
  };
  const std::vector<Case> cases = {{0, 2, false}, {0, 3, false}, {2, 2, false},
                                   {3, 3, false}, {2, 3, true},  {3, 2, true}};
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& tt = cases[i];
    HardState hs{Term(1), tt.vote ? nid(tt.vote) : NodeId(), LogIndex(0)};
    auto r = new_raft(1, 3, {}, hs);
    Message m;
    m.type = MessageType::kVote;
    m.from = nid(tt.candidate);
    m.to = nid(1);
    m.term = Term(1);
    r->step(m);
    auto msgs = read_messages(*r);
    ASSERT_EQ(msgs.size(), 1u) << "case " << i;
    EXPECT_EQ(msgs[0].type, MessageType::kVoteResponse) << "case " << i;
    EXPECT_EQ(msgs[0].to, nid(tt.candidate)) << "case " << i;
    EXPECT_EQ(msgs[0].term, Term(1)) << "case " << i;
    EXPECT_EQ(msgs[0].reject, tt.want_reject) << "case " << i;
    EXPECT_EQ(r->status().vote, tt.vote ? nid(tt.vote) : nid(tt.candidate)) << "case " << i;
  }
}

// §5.2: "While waiting for votes, a candidate may receive an AppendEntries RPC
// from another server claiming to be leader. If the leader's term is at least
// as large as the candidate's current term, then the candidate recognizes the
// leader as legitimate and returns to follower state."
TEST(RaftPaper, Section5_2_CandidateFallsBackOnAppendOfSameOrNewerTerm) {
  for (uint64_t term : {1, 2}) {
    auto r = new_raft(1, 3);
    r->campaign();
    ASSERT_EQ(r->role(), Role::kCandidate);
    ASSERT_EQ(r->term(), Term(1));
    r->step(append_from(2, term, 0, 0));
    EXPECT_EQ(r->role(), Role::kFollower) << "term " << term;
    EXPECT_EQ(r->term(), Term(term));
    EXPECT_EQ(r->leader(), nid(2));
  }
}

// §5.2: "Raft uses randomized election timeouts ... chosen randomly from a
// fixed interval". Every value of [et, 2et) must occur and no other.
void check_election_timeout_randomized(bool candidate) {
  auto r = new_raft(1, 3);
  std::set<int> seen;
  for (int round = 0; round < 50 * kElectionTicks; ++round) {
    if (candidate) {
      r->campaign();
    } else {
      r->step(append_from(2, r->term().value() + 1, 0, 0));
    }
    read_messages(*r);
    int ticks = 0;
    while (read_messages(*r).empty()) {
      r->tick();
      ++ticks;
      ASSERT_LT(ticks, 10 * kElectionTicks);
    }
    seen.insert(ticks);
  }
  std::set<int> want;
  for (int d = kElectionTicks; d < 2 * kElectionTicks; ++d) want.insert(d);
  EXPECT_EQ(seen, want);
}

TEST(RaftPaper, Section5_2_FollowerElectionTimeoutRandomized) { check_election_timeout_randomized(false); }
TEST(RaftPaper, Section5_2_CandidateElectionTimeoutRandomized) { check_election_timeout_randomized(true); }

// §5.2: randomized timeouts spread servers out "so that in most cases only a
// single server will time out". Five members: at most 30% of rounds may see
// several time out on the same tick.
void check_election_timeouts_nonconflicting(bool candidate) {
  const int size = 5;
  std::vector<std::unique_ptr<Raft>> rs;
  for (int k = 1; k <= size; ++k) rs.push_back(new_raft(k, size));
  int conflicts = 0;
  const int rounds = 1000;
  for (int round = 0; round < rounds; ++round) {
    for (auto& r : rs) {
      if (candidate) {
        r->campaign();
      } else {
        Message hb;
        hb.type = MessageType::kHeartbeat;
        hb.from = r->id() == nid(1) ? nid(2) : nid(1);
        hb.to = r->id();
        hb.term = r->term().next();
        r->step(hb);
      }
      read_messages(*r);
    }
    int timed_out = 0;
    while (timed_out == 0) {
      for (auto& r : rs) {
        r->tick();
        if (!read_messages(*r).empty()) ++timed_out;
      }
    }
    if (timed_out > 1) ++conflicts;
  }
  EXPECT_LE(static_cast<double>(conflicts) / rounds, 0.3);
}

TEST(RaftPaper, Section5_2_FollowersElectionTimeoutsNonconflicting) { check_election_timeouts_nonconflicting(false); }
TEST(RaftPaper, Section5_2_CandidatesElectionTimeoutsNonconflicting) { check_election_timeouts_nonconflicting(true); }

}  // namespace
}  // namespace tenure::consensus
