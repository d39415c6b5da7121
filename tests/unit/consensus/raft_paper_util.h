#pragma once
// Shared by the tests of the Raft paper's claims (raft_paper_election_test.cc,
// raft_paper_replication_test.cc), in the manner of etcd-io/raft's
// raft_paper_test.go: a member in a known state, messages stepped in by hand,
// its outgoing messages and state checked.
//
// The members run with pre-vote and check-quorum off: the paper has neither,
// and both are tested on their own in raft_test.cc.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "consensus/raft.h"
#include "tests/support/cluster.h"

namespace tenure::consensus::paper {

inline constexpr int kElectionTicks = 10;

inline NodeId nid(uint64_t n) { return NodeId(std::to_string(n)); }

inline RaftConfig paper_config(uint64_t id) {
  RaftConfig c;
  c.id = nid(id);
  c.election_ticks = kElectionTicks;
  c.heartbeat_ticks = 1;
  c.pre_vote = false;
  c.check_quorum = false;
  return c;
}

/// Entries at first, first+1, ... with the given terms (etcd's index(i).terms(...)).
inline std::vector<Entry> terms_from(uint64_t first, std::vector<uint64_t> terms) {
  std::vector<Entry> out;
  for (size_t k = 0; k < terms.size(); ++k) {
    Entry e;
    e.index = LogIndex(first + k);
    e.term = Term(terms[k]);
    out.push_back(e);
  }
  return out;
}

/// A member of a group of voters 1..size that restarts from `log` and `hs`.
/// The membership comes from an index-0 snapshot so that the log holds only
/// what the test puts there (etcd's withPeers).
inline std::unique_ptr<Raft> new_raft(uint64_t id, int size, std::vector<Entry> log = {}, HardState hs = {},
                               RaftConfig config = RaftConfig()) {
  InitialState s;
  for (int k = 1; k <= size; ++k) s.snapshot.conf.voters.insert(nid(k));
  s.entries = std::move(log);
  s.hard_state = hs;
  if (config.id.empty()) config = paper_config(id);
  return std::make_unique<Raft>(config, std::move(s));
}

/// Persists and "sends" whatever the member has ready; returns its messages.
inline std::vector<Message> read_messages(Raft& r) {
  std::vector<Message> out;
  while (r.has_ready()) {
    Ready rd = r.ready();
    for (auto& m : rd.early_messages) out.push_back(std::move(m));
    for (auto& m : rd.messages) out.push_back(std::move(m));
    r.advance();
  }
  std::sort(out.begin(), out.end(), [](const Message& a, const Message& b) { return a.to < b.to; });
  return out;
}

inline Message vote_response(const Message& request, bool granted) {
  Message m;
  m.type = MessageType::kVoteResponse;
  m.from = request.to;
  m.to = request.from;
  m.term = request.term;
  m.reject = !granted;
  return m;
}

/// The answer of a follower that stored every entry of `m` (etcd's acceptAndReply).
inline Message accept_and_reply(const Message& m) {
  EXPECT_EQ(m.type, MessageType::kAppend);
  Message r;
  r.type = MessageType::kAppendResponse;
  r.from = m.to;
  r.to = m.from;
  r.term = m.term;
  r.index = m.index.plus(m.entries.size());
  return r;
}

inline Message append_from(uint64_t from, uint64_t term, uint64_t prev_index, uint64_t prev_term,
                    std::vector<Entry> entries = {}, uint64_t commit = 0) {
  Message m;
  m.type = MessageType::kAppend;
  m.from = nid(from);
  m.to = nid(1);
  m.term = Term(term);
  m.index = LogIndex(prev_index);
  m.log_term = Term(prev_term);
  m.entries = std::move(entries);
  m.commit = LogIndex(commit);
  return m;
}

/// Campaigns and collects votes until leader; returns the appends of its no-op.
inline std::vector<Message> make_leader(Raft& r) {
  r.campaign();
  for (const auto& m : read_messages(r)) {
    if (m.type == MessageType::kVote && r.role() != Role::kLeader) r.step(vote_response(m, true));
  }
  EXPECT_EQ(r.role(), Role::kLeader);
  std::vector<Message> appends;
  for (auto& m : read_messages(r)) {
    if (m.type == MessageType::kAppend) appends.push_back(std::move(m));
  }
  return appends;
}

/// Makes r leader and lets every follower acknowledge its no-op (etcd's commitNoopEntry).
inline void make_leader_and_commit_noop(Raft& r) {
  for (const auto& m : make_leader(r)) r.step(accept_and_reply(m));
  read_messages(r);
  ASSERT_EQ(r.log().committed(), r.log().last_index());
}

inline std::vector<Entry> all_entries(const Raft& r) { return r.log().slice(r.log().first_index(), r.log().last_index()); }

}  // namespace tenure::consensus::paper
