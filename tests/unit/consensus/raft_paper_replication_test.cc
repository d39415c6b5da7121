// The Raft paper, §5.3 and §5.4: log replication and safety.
// One test per claim of the Raft paper (Ongaro & Ousterhout, "In Search of an
// Understandable Consensus Algorithm", extended version); helpers and the
// method in raft_paper_util.h.
#include "tests/unit/consensus/raft_paper_util.h"

namespace tenure::consensus {
namespace {

using namespace paper;

// §5.3: "The leader appends the command to its log as a new entry, then issues
// AppendEntries RPCs in parallel to each of the other servers"; the RPC
// carries "the index and term of the entry in its log that immediately
// precedes the new entries"; the entry is handed to stable storage.
TEST(RaftPaper, Section5_3_LeaderStartsReplication) {
  auto r = new_raft(1, 3);
  make_leader_and_commit_noop(*r);
  LogIndex li = r->log().last_index();
  ASSERT_TRUE(r->propose("some data").ok());
  EXPECT_EQ(r->log().last_index(), li.next());
  EXPECT_EQ(r->log().committed(), li);

  Ready rd = r->ready();
  Entry want{Term(1), li.next(), EntryType::kNormal, "some data"};
  EXPECT_EQ(rd.entries, std::vector<Entry>{want});
  std::vector<Message> msgs = rd.early_messages;
  msgs.insert(msgs.end(), rd.messages.begin(), rd.messages.end());
  r->advance();
  std::sort(msgs.begin(), msgs.end(), [](const Message& a, const Message& b) { return a.to < b.to; });
  ASSERT_EQ(msgs.size(), 2u);
  for (size_t k = 0; k < msgs.size(); ++k) {
    EXPECT_EQ(msgs[k].type, MessageType::kAppend);
    EXPECT_EQ(msgs[k].to, nid(k + 2));
    EXPECT_EQ(msgs[k].term, Term(1));
    EXPECT_EQ(msgs[k].index, li);
    EXPECT_EQ(msgs[k].log_term, Term(1));
    EXPECT_EQ(msgs[k].entries, std::vector<Entry>{want});
    EXPECT_EQ(msgs[k].commit, li);
  }
}

// §5.3: "When the entry has been safely replicated, the leader applies the
// entry to its state machine"; "the leader keeps track of the highest index it
// knows to be committed, and it includes that index in future AppendEntries
// RPCs ... so that the other servers eventually find out."
TEST(RaftPaper, Section5_3_LeaderCommitsEntryAndTellsFollowers) {
  auto r = new_raft(1, 3);
  make_leader_and_commit_noop(*r);
  LogIndex li = r->log().last_index();
  ASSERT_TRUE(r->propose("some data").ok());
  for (const auto& m : read_messages(*r)) r->step(accept_and_reply(m));

  EXPECT_EQ(r->log().committed(), li.next());
  Ready rd = r->ready();
  Entry want{Term(1), li.next(), EntryType::kNormal, "some data"};
  EXPECT_EQ(rd.committed_entries, std::vector<Entry>{want});
  std::vector<Message> msgs = rd.early_messages;
  msgs.insert(msgs.end(), rd.messages.begin(), rd.messages.end());
  r->advance();
  std::sort(msgs.begin(), msgs.end(), [](const Message& a, const Message& b) { return a.to < b.to; });
  ASSERT_EQ(msgs.size(), 2u);
  for (size_t k = 0; k < msgs.size(); ++k) {
    EXPECT_EQ(msgs[k].to, nid(k + 2));
    EXPECT_EQ(msgs[k].type, MessageType::kAppend);
    EXPECT_EQ(msgs[k].commit, li.next());
  }
}

// §5.3: "A log entry is committed once the leader that created the entry has
// replicated it on a majority of the servers."
TEST(RaftPaper, Section5_3_LeaderAcknowledgesCommitOnMajority) {
  struct Case {
    int size;
    std::set<uint64_t> acceptors;
    bool want_commit;
  };
  const std::vector<Case> cases = {
      {1, {}, true},      {3, {}, false},        {3, {2}, true},           {3, {2, 3}, true},
      {5, {}, false},     {5, {2}, false},       {5, {2, 3}, true},        {5, {2, 3, 4}, true},
      {5, {2, 3, 4, 5}, true},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& tt = cases[i];
    auto r = new_raft(1, tt.size);
    make_leader_and_commit_noop(*r);
    LogIndex li = r->log().last_index();
    ASSERT_TRUE(r->propose("some data").ok());
    for (const auto& m : read_messages(*r)) {
      if (tt.acceptors.count(std::stoull(m.to.str()))) r->step(accept_and_reply(m));
    }
    EXPECT_EQ(r->log().committed() > li, tt.want_commit) << "case " << i;
  }
}

// Steps every append into `r` as accepted until nothing is left to send;
// returns every entry that became committed meanwhile.
std::vector<Entry> accept_all(Raft& r) {
  std::vector<Entry> committed;
  while (r.has_ready()) {
    Ready rd = r.ready();
    committed.insert(committed.end(), rd.committed_entries.begin(), rd.committed_entries.end());
    std::vector<Message> msgs = rd.early_messages;
    msgs.insert(msgs.end(), rd.messages.begin(), rd.messages.end());
    r.advance();
    for (const auto& m : msgs) {
      if (m.type == MessageType::kAppend) r.step(accept_and_reply(m));
    }
  }
  return committed;
}

// §5.3: "When the leader commits a log entry, it also commits all preceding
// entries in the leader's log, including entries created by previous leaders",
// and they are applied in log order.
TEST(RaftPaper, Section5_3_LeaderCommitsPrecedingEntries) {
  const std::vector<std::vector<Entry>> cases = {
      {}, terms_from(1, {2}), terms_from(1, {1, 2}), terms_from(1, {1})};
  for (size_t i = 0; i < cases.size(); ++i) {
    auto r = new_raft(1, 3, cases[i], HardState{Term(2), NodeId(), LogIndex(0)});
    std::vector<Message> noop_appends = make_leader(*r);
    ASSERT_EQ(r->term(), Term(3));
    ASSERT_TRUE(r->propose("some data").ok());
    for (const auto& m : noop_appends) r->step(accept_and_reply(m));
    std::vector<Entry> committed = accept_all(*r);

    std::vector<Entry> want = cases[i];
    uint64_t li = want.size();
    want.push_back(Entry{Term(3), LogIndex(li + 1), EntryType::kNormal, ""});
    want.push_back(Entry{Term(3), LogIndex(li + 2), EntryType::kNormal, "some data"});
    EXPECT_EQ(committed, want) << "case " << i;
  }
}

// §5.3: "Once a follower learns that a log entry is committed, it applies the
// entry to its local state machine (in log order)."
TEST(RaftPaper, Section5_3_FollowerCommitsEntry) {
  struct Case {
    std::vector<std::string> data;
    uint64_t commit;
  };
  const std::vector<Case> cases = {
      {{"some data"}, 1}, {{"some data", "some data2"}, 2}, {{"some data2", "some data"}, 2},
      {{"some data", "some data2"}, 1}};
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& tt = cases[i];
    std::vector<Entry> ents;
    for (size_t k = 0; k < tt.data.size(); ++k) {
      ents.push_back(Entry{Term(1), LogIndex(k + 1), EntryType::kNormal, tt.data[k]});
    }
    auto r = new_raft(1, 3);
    r->step(append_from(2, 1, 0, 0, ents, tt.commit));
    EXPECT_EQ(r->log().committed(), LogIndex(tt.commit)) << "case " << i;
    Ready rd = r->ready();
    std::vector<Entry> want(ents.begin(), ents.begin() + static_cast<long>(tt.commit));
    EXPECT_EQ(rd.committed_entries, want) << "case " << i;
    r->advance();
  }
}

// §5.3: "If the follower does not find an entry in its log with the same index
// and term, then it refuses the new entries." Rejections carry a hint for
// fast backtracking (etcd: reject_hint and its term).
TEST(RaftPaper, Section5_3_FollowerChecksAppendConsistency) {
  struct Case {
    uint64_t prev_term, prev_index;
    uint64_t want_index;
    bool want_reject;
    uint64_t want_hint, want_hint_term;
  };
  const std::vector<Case> cases = {
      {0, 0, 1, false, 0, 0},  // matches a committed entry
      {1, 1, 1, false, 0, 0},
      {2, 2, 2, false, 0, 0},  // matches an uncommitted entry
      {1, 2, 2, true, 1, 1},   // conflicts with an existing entry
      {2, 3, 3, true, 2, 2},   // entry does not exist
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& tt = cases[i];
    auto r = new_raft(1, 3, terms_from(1, {1, 2}), HardState{Term(2), NodeId(), LogIndex(1)});
    r->step(append_from(2, 2, tt.prev_index, tt.prev_term));
    auto msgs = read_messages(*r);
    ASSERT_EQ(msgs.size(), 1u) << "case " << i;
    const Message& m = msgs[0];
    EXPECT_EQ(m.type, MessageType::kAppendResponse) << "case " << i;
    EXPECT_EQ(m.to, nid(2)) << "case " << i;
    EXPECT_EQ(m.term, Term(2)) << "case " << i;
    EXPECT_EQ(m.index, LogIndex(tt.want_index)) << "case " << i;
    EXPECT_EQ(m.reject, tt.want_reject) << "case " << i;
    EXPECT_EQ(m.reject_hint, LogIndex(tt.want_hint)) << "case " << i;
    EXPECT_EQ(m.log_term, Term(tt.want_hint_term)) << "case " << i;
  }
}

// §5.3: "If an existing entry conflicts with a new one (same index but
// different terms), delete the existing entry and all that follow it; append
// any new entries not already in the log." New entries go to stable storage.
TEST(RaftPaper, Section5_3_FollowerAppendsAndTruncatesConflicts) {
  struct Case {
    uint64_t prev_index, prev_term;
    std::vector<Entry> ents, want_log, want_unstable;
  };
  const std::vector<Case> cases = {
      {2, 2, terms_from(3, {3}), terms_from(1, {1, 2, 3}), terms_from(3, {3})},
      {1, 1, terms_from(2, {3, 4}), terms_from(1, {1, 3, 4}), terms_from(2, {3, 4})},
      {0, 0, terms_from(1, {1}), terms_from(1, {1, 2}), {}},
      {0, 0, terms_from(1, {3}), terms_from(1, {3}), terms_from(1, {3})},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& tt = cases[i];
    auto r = new_raft(1, 3, terms_from(1, {1, 2}), HardState{Term(2), NodeId(), LogIndex(0)});
    // Sent in term 4: no leader sends entries of a term newer than its own
    // (such an append is dropped, raft_check.cc).
    r->step(append_from(2, 4, tt.prev_index, tt.prev_term, tt.ents));
    EXPECT_EQ(all_entries(*r), tt.want_log) << "case " << i;
    Ready rd = r->ready();
    EXPECT_EQ(rd.entries, tt.want_unstable) << "case " << i;
    r->advance();
  }
}

/// A few members connected by a perfect network; messages to absent members
/// are dropped (etcd's network with a nopStepper).
class Net {
 public:
  void add(Raft* r) { members_[r->id()] = r; }
  void send(Message m) { queue_.push_back(std::move(m)); }
  /// Processes readies and delivers until nothing moves.
  void run() {
    for (int round = 0; round < 10000; ++round) {
      bool moved = false;
      for (auto& [id, r] : members_) {
        for (auto& m : read_messages(*r)) queue_.push_back(std::move(m));
      }
      std::vector<Message> batch;
      batch.swap(queue_);
      for (auto& m : batch) {
        auto it = members_.find(m.to);
        if (it == members_.end()) continue;
        it->second->step(std::move(m));
        moved = true;
      }
      if (!moved) return;
    }
    FAIL() << "network did not settle";
  }

 private:
  std::map<NodeId, Raft*> members_;
  std::vector<Message> queue_;
};

// §5.3 and Figure 7: "the leader must find the latest log entry where the two
// logs agree, delete any entries in the follower's log after that point, and
// send the follower all of the leader's entries after that point." Cases
// (a)-(f) of Figure 7 against the leader of term 8.
TEST(RaftPaper, Section5_3_Figure7_LeaderSyncsFollowerLogs) {
  const std::vector<uint64_t> leader_terms = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  const std::vector<std::vector<uint64_t>> followers = {
      {1, 1, 1, 4, 4, 5, 5, 6, 6},           // (a) missing one entry
      {1, 1, 1, 4},                          // (b) missing many
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},     // (c) one extra uncommitted entry
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},  // (d) extra entries of a later term
      {1, 1, 1, 4, 4, 4, 4},                 // (e) missing, plus extra of term 4
      {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},     // (f) extra entries of terms 2 and 3
  };
  const uint64_t term = 8;
  for (size_t i = 0; i < followers.size(); ++i) {
    auto lead = new_raft(1, 3, terms_from(1, leader_terms),
                         HardState{Term(term), NodeId(), LogIndex(leader_terms.size())});
    auto follower = new_raft(2, 3, terms_from(1, followers[i]), HardState{Term(term - 1), NodeId(), LogIndex(0)});
    // Member 3 answers nothing but grants its vote: the follower's log may be
    // more up to date than the leader's, so the leader needs the third vote.
    Net net;
    net.add(lead.get());
    net.add(follower.get());
    lead->campaign();
    net.run();
    if (lead->role() != Role::kLeader) {
      Message v;
      v.type = MessageType::kVoteResponse;
      v.from = nid(3);
      v.to = nid(1);
      v.term = Term(term + 1);
      lead->step(v);
    }
    ASSERT_EQ(lead->role(), Role::kLeader) << "case " << i;
    ASSERT_TRUE(lead->propose("").ok());
    net.run();
    EXPECT_EQ(all_entries(*lead), all_entries(*follower)) << "case " << i;
    EXPECT_EQ(follower->log().committed(), lead->log().committed()) << "case " << i;
  }
}

// §5.4.1: "The RequestVote RPC includes information about the candidate's
// log", its last index and term, and goes to all the other servers.
TEST(RaftPaper, Section5_4_1_VoteRequestCarriesLastLogPosition) {
  struct Case {
    std::vector<Entry> ents;
    uint64_t want_term;
  };
  const std::vector<Case> cases = {{terms_from(1, {1}), 2}, {terms_from(1, {1, 2}), 3}};
  for (size_t j = 0; j < cases.size(); ++j) {
    const Case& tt = cases[j];
    auto r = new_raft(1, 3);
    r->step(append_from(2, tt.want_term - 1, 0, 0, tt.ents));
    read_messages(*r);
    for (int i = 1; i < 2 * kElectionTicks; ++i) r->tick();
    auto msgs = read_messages(*r);
    ASSERT_EQ(msgs.size(), 2u) << "case " << j;
    for (size_t k = 0; k < msgs.size(); ++k) {
      EXPECT_EQ(msgs[k].type, MessageType::kVote);
      EXPECT_EQ(msgs[k].to, nid(k + 2));
      EXPECT_EQ(msgs[k].term, Term(tt.want_term));
      EXPECT_EQ(msgs[k].index, tt.ents.back().index);
      EXPECT_EQ(msgs[k].log_term, tt.ents.back().term);
    }
  }
}

// §5.4.1: "the voter denies its vote if its own log is more up-to-date than
// that of the candidate": later last term wins, then the longer log.
bool vote_rejected(const std::vector<Entry>& log, uint64_t cand_log_term, uint64_t cand_index,
                   TestingKnobs knobs = {}) {
  RaftConfig cfg = paper_config(1);
  cfg.knobs = knobs;
  auto r = new_raft(1, 2, log, {}, cfg);
  Message m;
  m.type = MessageType::kVote;
  m.from = nid(2);
  m.to = nid(1);
  m.term = Term(3);
  m.log_term = Term(cand_log_term);
  m.index = LogIndex(cand_index);
  r->step(m);
  auto msgs = read_messages(*r);
  EXPECT_EQ(msgs.size(), 1u);
  EXPECT_EQ(msgs.at(0).type, MessageType::kVoteResponse);
  return msgs.at(0).reject;
}

TEST(RaftPaper, Section5_4_1_VoterGrantsOnlyToUpToDateCandidate) {
  struct Case {
    std::vector<Entry> log;
    uint64_t log_term, index;
    bool want_reject;
  };
  const std::vector<Case> cases = {
      // same last term
      {terms_from(1, {1}), 1, 1, false},
      {terms_from(1, {1}), 1, 2, false},
      {terms_from(1, {1, 1}), 1, 1, true},
      // candidate has the later last term
      {terms_from(1, {1}), 2, 1, false},
      {terms_from(1, {1}), 2, 2, false},
      {terms_from(1, {1, 1}), 2, 1, false},
      // voter has the later last term
      {terms_from(1, {2}), 1, 1, true},
      {terms_from(1, {2}), 1, 2, true},
      {terms_from(1, {2, 2}), 1, 1, true},
      {terms_from(1, {1, 1}), 1, 1, true},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& tt = cases[i];
    EXPECT_EQ(vote_rejected(tt.log, tt.log_term, tt.index), tt.want_reject) << "case " << i;
  }
  // The check must be what denies the vote: the planted bug grants it.
  TestingKnobs bug;
  bug.vote_without_log_check = true;
  EXPECT_FALSE(vote_rejected(terms_from(1, {2}), 1, 1, bug));
}

// §5.4.2: "Raft never commits log entries from previous terms by counting
// replicas. Only log entries from the leader's current term are committed by
// counting replicas."
LogIndex commit_after_ack(uint64_t acked_index, TestingKnobs knobs = {}) {
  RaftConfig cfg = paper_config(1);
  cfg.knobs = knobs;
  auto r = new_raft(1, 2, terms_from(1, {1, 2}), HardState{Term(2), NodeId(), LogIndex(0)}, cfg);
  make_leader(*r);  // term 3, no-op at index 3
  EXPECT_EQ(r->term(), Term(3));
  EXPECT_TRUE(r->propose("").ok());
  read_messages(*r);  // the leader itself has persisted everything
  Message m;
  m.type = MessageType::kAppendResponse;
  m.from = nid(2);
  m.to = nid(1);
  m.term = r->term();
  m.index = LogIndex(acked_index);
  r->step(m);
  return r->log().committed();
}

TEST(RaftPaper, Section5_4_2_LeaderOnlyCommitsCurrentTermEntriesByCounting) {
  EXPECT_EQ(commit_after_ack(1), LogIndex(0));
  EXPECT_EQ(commit_after_ack(2), LogIndex(0));
  EXPECT_EQ(commit_after_ack(3), LogIndex(3));
  // The planted bug commits the term-2 entry by counting: the check catches it.
  TestingKnobs bug;
  bug.commit_old_term_by_counting = true;
  EXPECT_EQ(commit_after_ack(2, bug), LogIndex(2));
}


// §5.4.2 and Figure 8, end to end in a five-member group: an entry of an
// earlier term that a later leader has copied to a majority is still not
// committed, because a server with a more up-to-date log (term 3) may be
// elected and overwrite it. If the leader counted replicas of old-term
// entries, member 1 would apply "x" at an index where everyone ends up with
// another entry (and the restarted member 1 would abort on truncating a
// committed entry).
TEST(RaftPaper, Section5_4_2_Figure8_OldTermEntryOnMajorityIsNotCommitted) {
  RaftConfig base = paper_config(1);
  base.max_bytes_per_msg = 0;  // one entry per append, so entries travel one by one
  testing::Cluster c({"1", "2", "3", "4", "5"}, base);
  // (a) 1 leads term 2 and gets "x" (index 7) only onto 2.
  ASSERT_TRUE(c.elect("1"));
  ASSERT_EQ(c.node("1").term(), Term(2));
  for (const char* other : {"3", "4", "5"}) c.cut("1", other);
  ASSERT_TRUE(c.node("1").propose("x").ok());
  c.stabilize();
  const LogIndex x_index = c.node("1").log().last_index();
  ASSERT_EQ(c.node("2").log().term(x_index), Term(2));
  ASSERT_LT(c.node("1").log().committed(), x_index);
  // (b) 1 crashes; 5 wins term 3 with 3 and 4 and stores its no-op at
  // x_index alone.
  c.crash("1");
  c.heal();
  c.set_filter([](const Message& m) { return m.from == nid(5) && m.type == MessageType::kAppend; });
  ASSERT_TRUE(c.elect("5"));
  ASSERT_EQ(c.node("5").term(), Term(3));
  ASSERT_EQ(c.node("5").log().term(x_index), Term(3));
  // (c) 5 crashes; 1 restarts, wins term 4 and copies "x" to 3 and 4, while
  // no append carrying its own term-4 entry is ever accepted.
  c.crash("5");
  c.heal();
  c.restart("1");
  c.set_filter([&c](const Message& m) {
    if (m.type != MessageType::kAppend || !c.is_up(m.to.str())) return false;
    bool carries_term4 = std::any_of(m.entries.begin(), m.entries.end(),
                                     [](const Entry& e) { return e.term == Term(4); });
    return carries_term4 && c.node(m.to.str()).log().matches(m.index, m.log_term);
  });
  ASSERT_TRUE(c.elect("1"));
  ASSERT_EQ(c.node("1").term(), Term(4));
  c.stabilize();
  int holders = 0;
  for (const char* id : {"1", "2", "3", "4"}) holders += c.node(id).log().term(x_index) == Term(2);
  ASSERT_GE(holders, 3);  // "x" is on a majority
  EXPECT_LT(c.node("1").log().committed(), x_index);
  for (const auto& e : c.applied("1")) EXPECT_NE(e.data, "x");
  // (d) 1 crashes before its term-4 entry spreads; 5 comes back, is elected
  // with a more up-to-date log and overwrites "x" everywhere.
  c.crash("1");
  c.heal();
  c.restart("5");
  ASSERT_TRUE(c.elect("5"));
  c.restart("1");
  for (int i = 0; i < 3; ++i) {
    c.tick("5");
    c.stabilize();
  }
  for (const auto& id : c.ids()) {
    EXPECT_EQ(c.node(id).log().term(x_index), Term(3)) << id;
    EXPECT_GE(c.node(id).log().committed(), x_index) << id;
    for (const auto& e : c.applied(id)) EXPECT_NE(e.data, "x") << id;
  }
}

}  // namespace
}  // namespace tenure::consensus
