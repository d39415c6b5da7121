// Behaviour of the Raft core beyond the paper's §5: pre-vote (thesis §9.6),
// check-quorum and the leader lease (§6.2, §4.2.3), leadership transfer
// (§3.10), refusing proposals (NotLeader, transfer in progress) and
// membership changes (§4.1, §4.2.1). Reads, replication flow control and the
// Ready contract have their own files.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/support/cluster.h"

namespace tenure::testing {
namespace {

RaftConfig config(bool pre_vote = true, bool check_quorum = true) {
  RaftConfig c;
  c.pre_vote = pre_vote;
  c.check_quorum = check_quorum;
  return c;
}

/// Ticks every live member once, then lets the group settle; `rounds` times.
void tick_all(Cluster& c, int rounds) {
  for (int i = 0; i < rounds; ++i) {
    for (const auto& id : c.ids()) {
      if (c.is_up(id)) c.tick(id);
    }
    c.stabilize();
  }
}

/// Drains `id`'s Ready by hand (persisting it) and returns its messages.
std::vector<Message> take_messages(Cluster& c, const std::string& id) {
  std::vector<Message> out;
  while (c.node(id).has_ready()) {
    Ready rd = c.node(id).ready();
    c.storage(id).persist(rd);
    out.insert(out.end(), rd.early_messages.begin(), rd.early_messages.end());
    out.insert(out.end(), rd.messages.begin(), rd.messages.end());
    c.node(id).advance();
  }
  return out;
}

Message vote_from(const std::string& from, const std::string& to, Term term, const Raft& candidate_log_of) {
  Message m;
  m.type = MessageType::kVote;
  m.from = NodeId(from);
  m.to = NodeId(to);
  m.term = term;
  m.index = candidate_log_of.log().last_index();
  m.log_term = candidate_log_of.log().last_term();
  return m;
}

// --- Pre-vote (§9.6) ---------------------------------------------------------

struct RejoinOutcome {
  Term isolated_term;  ///< the partitioned member's term just before healing
  std::string leader;  ///< after healing
  Term leader_term;
};

RejoinOutcome isolate_and_rejoin(bool pre_vote) {
  Cluster c({"a", "b", "c"}, config(pre_vote, /*check_quorum=*/true));
  EXPECT_TRUE(c.elect("a"));
  c.isolate("c");
  tick_all(c, 10 * RaftConfig().election_ticks);
  RejoinOutcome out;
  out.isolated_term = c.node("c").term();
  c.heal();
  tick_all(c, 3 * RaftConfig().election_ticks);
  out.leader = c.leader();
  out.leader_term = out.leader.empty() ? Term(0) : c.node(out.leader).term();
  return out;
}

TEST(RaftPreVote, PartitionedMemberKeepsItsTermAndRejoinsWithoutDisruption) {
  RejoinOutcome with = isolate_and_rejoin(/*pre_vote=*/true);
  EXPECT_EQ(with.isolated_term, Term(2));  // bootstrap term 1, a's election made it 2
  EXPECT_EQ(with.leader, "a");
  EXPECT_EQ(with.leader_term, Term(2));
  // Without pre-vote the same partition inflates c's term, and on rejoining
  // c's higher term deposes the healthy leader: what pre-vote prevents.
  RejoinOutcome without = isolate_and_rejoin(/*pre_vote=*/false);
  EXPECT_GT(without.isolated_term, Term(2));
  EXPECT_GT(without.leader_term, Term(2));
}

TEST(RaftPreVote, PreCandidateDoesNotChangeTermOrVote) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  c.isolate("b");
  Term before = c.node("b").term();
  NodeId vote_before = c.node("b").status().vote;
  c.node("b").campaign();
  EXPECT_EQ(c.node("b").role(), Role::kPreCandidate);
  EXPECT_EQ(c.node("b").term(), before);
  EXPECT_EQ(c.node("b").status().vote, vote_before);
  bool sent_prevote = false;
  for (const auto& m : take_messages(c, "b")) {
    EXPECT_NE(m.type, MessageType::kVote);
    if (m.type == MessageType::kPreVote) {
      sent_prevote = true;
      EXPECT_EQ(m.term, before.next());  // the term it would campaign in
    }
  }
  EXPECT_TRUE(sent_prevote);
}

// --- Check-quorum and the leader lease (§6.2, §4.2.3) ------------------------

bool leader_survives_isolation(bool check_quorum) {
  Cluster c({"a", "b", "c"}, config(true, check_quorum));
  EXPECT_TRUE(c.elect("a"));
  c.isolate("a");
  for (int i = 0; i <= 2 * RaftConfig().election_ticks; ++i) {
    c.tick("a");
    c.stabilize();
  }
  return c.node("a").role() == Role::kLeader;
}

TEST(RaftCheckQuorum, IsolatedLeaderStepsDownAfterAnElectionTimeout) {
  EXPECT_FALSE(leader_survives_isolation(/*check_quorum=*/true));
  EXPECT_TRUE(leader_survives_isolation(/*check_quorum=*/false));
}

TEST(RaftCheckQuorum, LeaderHearingFromAMajorityStays) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  c.isolate("c");
  tick_all(c, 5 * RaftConfig().election_ticks);
  EXPECT_EQ(c.node("a").role(), Role::kLeader);
  EXPECT_EQ(c.node("a").term(), Term(2));
}

// A follower that heard from its leader within the election timeout ignores
// RequestVote of a higher term, so a member that cannot hear the leader (or
// was removed) cannot depose it; a transfer's forced vote still goes through.
TEST(RaftCheckQuorum, FollowerInLeaseIgnoresVotes) {
  Cluster c({"a", "b", "c"}, config(/*pre_vote=*/true, /*check_quorum=*/true));
  ASSERT_TRUE(c.elect("a"));
  Term t = c.node("b").term();
  c.node("b").step(vote_from("c", "b", t.next(), c.node("c")));
  EXPECT_EQ(c.node("b").term(), t);
  EXPECT_EQ(c.node("b").status().vote, NodeId("a"));
  EXPECT_TRUE(take_messages(c, "b").empty());

  // Once the lease ran out (no heartbeat for an election timeout) it votes.
  for (int i = 0; i < RaftConfig().election_ticks; ++i) c.tick("b");
  take_messages(c, "b");
  c.node("b").step(vote_from("c", "b", c.node("b").term().next(), c.node("c")));
  EXPECT_EQ(c.node("b").status().vote, NodeId("c"));
}

// A follower whose driver found nothing listening at its leader's address
// (Raft::leader_unreachable) drops its lease at once: it votes for another
// member that lost the leader too, and campaigns itself within two
// heartbeat intervals. Naming another member than its leader changes nothing.
TEST(RaftCheckQuorum, AFollowerThatFoundItsLeaderGoneVotesAndCampaignsSoon) {
  RaftConfig cfg = config(/*pre_vote=*/true, /*check_quorum=*/true);
  cfg.heartbeat_ticks = 2;
  cfg.election_ticks = 20;
  Cluster c({"a", "b", "c"}, cfg);
  ASSERT_TRUE(c.elect("a"));
  Term t = c.node("b").term();
  c.node("b").leader_unreachable(NodeId("c"));  // not its leader: ignored
  EXPECT_EQ(c.node("b").leader(), NodeId("a"));
  c.node("b").step(vote_from("c", "b", t.next(), c.node("c")));
  EXPECT_EQ(c.node("b").status().vote, NodeId("a")) << "voted while in its leader's lease";
  take_messages(c, "b");

  c.node("b").leader_unreachable(NodeId("a"));
  EXPECT_TRUE(c.node("b").leader().empty());
  c.node("b").step(vote_from("c", "b", t.next(), c.node("c")));
  EXPECT_EQ(c.node("b").status().vote, NodeId("c"));

  Cluster d({"a", "b", "c"}, cfg);
  ASSERT_TRUE(d.elect("a"));
  d.node("b").leader_unreachable(NodeId("a"));
  int ticks = 0;
  while (d.node("b").role() == Role::kFollower && ticks < 100) {
    d.tick("b");
    ++ticks;
  }
  EXPECT_GE(ticks, cfg.heartbeat_ticks);
  EXPECT_LT(ticks, 2 * cfg.heartbeat_ticks + 1) << "campaigned only after " << ticks << " ticks";
}

// With reads on the leader's lease (RaftConfig::leader_lease) every member
// refuses votes for an election timeout after it starts, so the group's
// first leader comes from the timeouts, not from campaign() (Cluster::elect).
struct LeaseGroup {
  Cluster c;
  std::string leader, f1, f2;  ///< the leader and its followers
  explicit LeaseGroup(const RaftConfig& cfg) : c({"a", "b", "c"}, cfg) {
    for (int i = 0; i < 10 * cfg.election_ticks && c.leader().empty(); ++i) tick_all(c, 1);
    leader = c.leader();
    for (const auto& id : c.ids()) {
      if (id == leader) continue;
      (f1.empty() ? f1 : f2) = id;
    }
  }
};

// A member's refusal to vote is what the leader's lease stands on, and a
// restart must not end it: a member that starts refuses votes for an
// election timeout, as if it had just heard a leader. Without the lease it
// votes at once, as before.
TEST(RaftCheckQuorum, WithLeaseReadsARestartedMemberRefusesVotesForAnElectionTimeout) {
  for (bool lease : {true, false}) {
    RaftConfig cfg = config(/*pre_vote=*/true, /*check_quorum=*/true);
    cfg.leader_lease = lease;
    LeaseGroup g(cfg);
    ASSERT_FALSE(g.leader.empty());
    Cluster& c = g.c;
    c.crash(g.f1);
    c.restart(g.f1);
    Term t = c.node(g.f1).term();
    c.node(g.f1).step(vote_from(g.f2, g.f1, t.next(), c.node(g.f2)));
    if (!lease) {
      EXPECT_EQ(c.node(g.f1).status().vote, NodeId(g.f2)) << "without the lease a restarted member votes at once";
      continue;
    }
    EXPECT_EQ(c.node(g.f1).term(), t) << "voted within an election timeout of its start";
    take_messages(c, g.f1);
    for (int i = 0; i < cfg.election_ticks - 1; ++i) c.tick(g.f1);
    take_messages(c, g.f1);
    c.node(g.f1).step(vote_from(g.f2, g.f1, t.next(), c.node(g.f2)));
    EXPECT_EQ(c.node(g.f1).term(), t) << "voted one tick before the election timeout";
    c.tick(g.f1);
    take_messages(c, g.f1);
    c.node(g.f1).step(vote_from(g.f2, g.f1, c.node(g.f1).term().next(), c.node(g.f2)));
    EXPECT_EQ(c.node(g.f1).status().vote, NodeId(g.f2)) << "still refusing after the election timeout";
  }
}

// A transfer lets its target campaign at once, past every member's lease:
// the leader that began one may rest no read on its lease for the rest of
// its term, even once the transfer is abandoned. A new term starts clean.
TEST(RaftCheckQuorum, ALeaderThatBeganATransferForfeitsItsLeaseForTheTerm) {
  RaftConfig cfg = config(/*pre_vote=*/true, /*check_quorum=*/true);
  cfg.leader_lease = true;
  LeaseGroup g(cfg);
  ASSERT_FALSE(g.leader.empty());
  Cluster& c = g.c;
  EXPECT_FALSE(c.node(g.leader).lease_forfeited());
  c.isolate(g.f1);  // the transfer cannot finish
  ASSERT_TRUE(c.node(g.leader).transfer_leadership(NodeId(g.f1)).ok());
  EXPECT_TRUE(c.node(g.leader).lease_forfeited());
  for (int i = 0; i < 2 * cfg.election_ticks; ++i) {
    c.tick(g.leader);
    c.tick(g.f2);
    c.stabilize();
  }
  ASSERT_EQ(c.node(g.leader).role(), Role::kLeader);
  EXPECT_TRUE(c.node(g.leader).status().transferee.empty()) << "the transfer was not abandoned";
  EXPECT_TRUE(c.node(g.leader).lease_forfeited()) << "the lease came back within the term";

  ASSERT_TRUE(c.node(g.leader).transfer_leadership(NodeId(g.f2)).ok());
  c.stabilize();
  ASSERT_EQ(c.node(g.f2).role(), Role::kLeader);
  EXPECT_FALSE(c.node(g.f2).lease_forfeited());
  ASSERT_TRUE(c.node(g.f2).transfer_leadership(NodeId(g.leader)).ok());
  c.stabilize();
  ASSERT_EQ(c.node(g.leader).role(), Role::kLeader);
  EXPECT_FALSE(c.node(g.leader).lease_forfeited()) << "a new term starts with no forfeit";
}

TEST(RaftCheckQuorum, WithoutCheckQuorumFollowerVotesAtOnce) {
  Cluster c({"a", "b", "c"}, config(/*pre_vote=*/false, /*check_quorum=*/false));
  ASSERT_TRUE(c.elect("a"));
  Term t = c.node("b").term();
  c.node("b").step(vote_from("c", "b", t.next(), c.node("c")));
  EXPECT_EQ(c.node("b").term(), t.next());
  EXPECT_EQ(c.node("b").status().vote, NodeId("c"));
}

TEST(RaftCheckQuorum, LeaseDoesNotBlockTransferVote) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  Message m = vote_from("c", "b", c.node("b").term().next(), c.node("c"));
  m.context = 1;  // sent by a member that got TimeoutNow (§3.10)
  c.node("b").step(m);
  EXPECT_EQ(c.node("b").status().vote, NodeId("c"));
}

// --- Leadership transfer (§3.10) ---------------------------------------------

TEST(RaftTransfer, ToUpToDateFollowerElectsItInTheNextTerm) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  Term t = c.node("a").term();
  ASSERT_TRUE(c.node("a").transfer_leadership(NodeId("b")).ok());
  c.stabilize();
  EXPECT_EQ(c.leader(), "b");
  EXPECT_EQ(c.node("b").term(), t.next());
  EXPECT_EQ(c.node("a").role(), Role::kFollower);
  EXPECT_EQ(c.node("a").leader(), NodeId("b"));
}

TEST(RaftTransfer, ToLaggingFollowerCatchesItUpFirst) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  c.set_filter([](const Message& m) { return m.to == NodeId("c") && m.type == MessageType::kAppend; });
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(c.node("a").propose("v" + std::to_string(i)).ok());
  c.stabilize();
  LogIndex last = c.node("a").log().last_index();
  ASSERT_LT(c.node("c").log().last_index(), last);

  ASSERT_TRUE(c.node("a").transfer_leadership(NodeId("c")).ok());
  EXPECT_EQ(c.node("a").status().transferee, NodeId("c"));
  // Proposals are refused while leadership is being handed over.
  auto refused = c.node("a").propose("during");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.code(), RaftError::kTransferInProgress);
  EXPECT_EQ(refused.error().message, "c");

  c.heal();
  c.tick("a");  // a heartbeat finds c behind; replication catches it up
  c.stabilize();
  EXPECT_EQ(c.leader(), "c");
  // c was not elected with a shorter log: every acknowledged entry survives.
  EXPECT_GE(c.node("c").log().committed(), last);
  for (const auto& id : c.ids()) EXPECT_EQ(c.applied(id).size(), c.applied("c").size()) << id;
}

TEST(RaftTransfer, AbortedAfterAnElectionTimeout) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  c.isolate("c");
  ASSERT_TRUE(c.node("a").transfer_leadership(NodeId("c")).ok());
  c.stabilize();
  ASSERT_FALSE(c.node("a").propose("x").ok());
  for (int i = 0; i < RaftConfig().election_ticks; ++i) {
    c.tick("a");
    c.tick("b");
    c.stabilize();
  }
  EXPECT_EQ(c.node("a").role(), Role::kLeader);
  EXPECT_TRUE(c.node("a").status().transferee.empty());
  EXPECT_TRUE(c.node("a").propose("x").ok());
}

TEST(RaftTransfer, RefusesNonVotersAndIgnoresSelf) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  auto r = c.node("a").transfer_leadership(NodeId("zz"));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), RaftError::kUnknownMember);
  EXPECT_TRUE(c.node("a").transfer_leadership(NodeId("a")).ok());
  EXPECT_TRUE(c.node("a").status().transferee.empty());
  EXPECT_TRUE(c.node("a").propose("still leader").ok());
}

// --- Requests at a non-leader -----------------------------------------------

TEST(RaftProposal, FollowerRefusesWithNotLeaderNamingTheLeader) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  auto p = c.node("b").propose("x");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.code(), RaftError::kNotLeader);
  EXPECT_EQ(p.error().message, "a");
  auto cc = c.node("b").propose_conf_change({ConfChangeType::kAddLearner, NodeId("d"), ""});
  ASSERT_FALSE(cc.ok());
  EXPECT_EQ(cc.code(), RaftError::kNotLeader);
  EXPECT_EQ(cc.error().message, "a");
  auto tr = c.node("b").transfer_leadership(NodeId("c"));
  ASSERT_FALSE(tr.ok());
  EXPECT_EQ(tr.code(), RaftError::kNotLeader);
  // Nothing was appended anywhere.
  c.stabilize();
  for (const auto& e : c.applied("a")) EXPECT_NE(e.data, "x");
}

TEST(RaftProposal, MemberWithoutLeaderRefusesWithEmptyHint) {
  Cluster c({"a", "b", "c"});
  auto p = c.node("a").propose("x");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.code(), RaftError::kNotLeader);
  EXPECT_EQ(p.error().message, "");
  auto r = c.node("a").read_index(1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), RaftError::kNotLeader);
}

TEST(RaftProposal, TicketNamesWhereTheEntryLands) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  auto t = c.node("a").propose_batch({"x", "y", "z"});
  ASSERT_TRUE(t.ok());
  c.stabilize();
  const auto& applied = c.applied("b");
  ASSERT_FALSE(applied.empty());
  EXPECT_EQ(applied.back().index, t.value().index);
  EXPECT_EQ(applied.back().term, t.value().term);
  EXPECT_EQ(applied.back().data, "z");
}

// --- Membership (§4.1, §4.2.1) -----------------------------------------------

/// a, b, c voters and d a caught-up learner; a leads.
Cluster with_learner() {
  Cluster c({"a", "b", "c"});
  EXPECT_TRUE(c.elect("a"));
  c.add_empty_node("d");
  EXPECT_TRUE(c.node("a").propose_conf_change({ConfChangeType::kAddLearner, NodeId("d"), ""}).ok());
  c.stabilize();
  c.tick("a");
  c.stabilize();
  EXPECT_TRUE(c.node("d").conf().learners.count(NodeId("d")));
  return c;
}

TEST(RaftMembership, LearnerNeverCampaigns) {
  Cluster c = with_learner();
  c.isolate("d");
  c.node("d").campaign();
  for (int i = 0; i < 10 * RaftConfig().election_ticks; ++i) {
    c.tick("d");
    for (const auto& m : take_messages(c, "d")) {
      EXPECT_NE(m.type, MessageType::kVote);
      EXPECT_NE(m.type, MessageType::kPreVote);
    }
  }
  EXPECT_EQ(c.node("d").role(), Role::kFollower);
  // TimeoutNow does not make it campaign either.
  Message t;
  t.type = MessageType::kTimeoutNow;
  t.from = NodeId("a");
  t.to = NodeId("d");
  t.term = c.node("d").term();
  c.node("d").step(t);
  EXPECT_EQ(c.node("d").role(), Role::kFollower);
  // And a leader will not hand leadership to it.
  EXPECT_EQ(c.node("a").transfer_leadership(NodeId("d")).code(), RaftError::kUnknownMember);
}

TEST(RaftMembership, LearnerDoesNotCountTowardQuorum) {
  Cluster c = with_learner();
  LogIndex commit = c.node("a").log().committed();
  c.isolate("b");
  c.isolate("c");
  ASSERT_TRUE(c.node("a").propose("x").ok());
  c.stabilize();
  // a and d store it: two of four members, a quorum if d were counted.
  EXPECT_EQ(c.node("d").log().last_index(), c.node("a").log().last_index());
  EXPECT_EQ(c.node("a").log().committed(), commit);
  c.heal();
  c.tick("a");
  c.stabilize();
  EXPECT_EQ(c.node("a").log().committed(), c.node("a").log().last_index());
}

TEST(RaftMembership, OneChangeAtATime) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  ASSERT_TRUE(c.node("a").propose_conf_change({ConfChangeType::kAddLearner, NodeId("d"), ""}).ok());
  auto second = c.node("a").propose_conf_change({ConfChangeType::kAddLearner, NodeId("e"), ""});
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.code(), RaftError::kConfChangePending);
  c.stabilize();
  EXPECT_TRUE(c.node("a").propose_conf_change({ConfChangeType::kAddLearner, NodeId("e"), ""}).ok());
}

TEST(RaftMembership, NewLeaderWaitsForInheritedChangeToApply) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  // a's change reaches b and c but a never learns it: it is not committed.
  c.set_filter([](const Message& m) { return m.type == MessageType::kAppendResponse; });
  ASSERT_TRUE(c.node("a").propose_conf_change({ConfChangeType::kAddLearner, NodeId("d"), ""}).ok());
  c.stabilize();
  c.crash("a");
  // Let c's lease on a run out so it will vote.
  c.tick("c", RaftConfig().election_ticks);
  ASSERT_TRUE(c.elect("b"));
  // b holds an unapplied change in its log: a second one could overlap it.
  auto r = c.node("b").propose_conf_change({ConfChangeType::kRemoveNode, NodeId("c"), ""});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), RaftError::kConfChangePending);
  c.heal();
  c.tick("b");
  c.stabilize();
  EXPECT_TRUE(c.node("b").conf().learners.count(NodeId("d")));
  EXPECT_TRUE(c.node("b").propose_conf_change({ConfChangeType::kAddVoter, NodeId("d"), ""}).ok());
}

TEST(RaftMembership, RefusesInvalidChanges) {
  Cluster c({"a"});
  ASSERT_TRUE(c.elect("a"));
  EXPECT_EQ(c.node("a").propose_conf_change({ConfChangeType::kRemoveNode, NodeId("a"), ""}).code(),
            RaftError::kInvalidConfChange);
  EXPECT_EQ(c.node("a").propose_conf_change({ConfChangeType::kAddVoter, NodeId("a"), ""}).code(),
            RaftError::kInvalidConfChange);
  EXPECT_EQ(c.node("a").propose_conf_change({ConfChangeType::kAddVoter, NodeId(), ""}).code(),
            RaftError::kInvalidConfChange);
}

TEST(RaftMembership, RemovingTheLeaderStepsItDown) {
  Cluster c({"a", "b", "c"});
  ASSERT_TRUE(c.elect("a"));
  ASSERT_TRUE(c.node("a").propose_conf_change({ConfChangeType::kRemoveNode, NodeId("a"), ""}).ok());
  c.stabilize();
  EXPECT_NE(c.node("a").role(), Role::kLeader);
  EXPECT_FALSE(c.node("a").conf().contains(NodeId("a")));
  for (const char* id : {"b", "c"}) EXPECT_FALSE(c.node(id).conf().contains(NodeId("a"))) << id;
  // The two remaining voters elect one of them; a never campaigns again.
  tick_all(c, 4 * RaftConfig().election_ticks);
  std::string leader = c.leader();
  EXPECT_TRUE(leader == "b" || leader == "c") << leader;
  ASSERT_TRUE(c.node(leader).propose("after").ok());
  c.stabilize();
  EXPECT_EQ(c.applied(leader).back().data, "after");
}

TEST(RaftMembership, PromotedLearnerVotesAndCounts) {
  Cluster c = with_learner();
  ASSERT_TRUE(c.node("a").propose_conf_change({ConfChangeType::kAddVoter, NodeId("d"), ""}).ok());
  c.stabilize();
  ASSERT_EQ(c.node("a").conf().voters.size(), 4u);
  // With b and c cut off, a and d are two of four voters: no quorum (3).
  c.isolate("b");
  c.isolate("c");
  LogIndex commit = c.node("a").log().committed();
  ASSERT_TRUE(c.node("a").propose("x").ok());
  c.stabilize();
  EXPECT_EQ(c.node("a").log().committed(), commit);
  c.heal();
  c.isolate("c");
  c.tick("a");
  c.stabilize();
  EXPECT_GT(c.node("a").log().committed(), commit);  // a, b, d
}

}  // namespace
}  // namespace tenure::testing
