// The Raft driver (replication/raft_driver.h) with every port faked in
// memory: a serial context and a persist context the test runs by hand, a
// store that records each transaction, a machine that appends what it
// applies, and a network that queues messages for the test to deliver.
// The simulator runs the same driver at scale; these pin its contract.
#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "replication/raft_driver.h"

namespace tenure::replication {
namespace {

using consensus::Entry;
using consensus::Message;
using consensus::MessageType;
using consensus::Ready;

class FakeMember final : public Executor, public LogStore, public PeerSender, public Machine, public DriverEvents {
 public:
  explicit FakeMember(const std::string& id, std::vector<NodeId> voters, size_t max_queued = 10000,
                      size_t apply_bytes_per_ready = 0, const std::function<void(DriverOptions&)>& tweak = nullptr) {
    DriverOptions o;
    o.raft.max_committed_bytes_per_ready = apply_bytes_per_ready;
    o.raft.id = NodeId(id);
    o.raft.election_ticks = 5;
    o.raft.heartbeat_ticks = 1;
    o.raft.random_seed = 7;
    o.raft.max_entry_bytes = 1000;
    o.tick_ms = 10;
    o.request_timeout_ms = 200;
    o.snapshot_threshold_entries = 1000000;
    o.bootstrap_voters = std::move(voters);
    o.max_queued_proposals = max_queued;
    for (const auto& v : o.bootstrap_voters) o.configured_addresses[v] = "addr-" + v.str();
    if (tweak) tweak(o);
    driver = std::make_unique<RaftDriver>(std::move(o), *this, *this, *this, *this, *this);
  }

  // Executor: the test runs posts and persist jobs by hand.
  void post(std::function<void()> fn) override { posted.push_back(std::move(fn)); }
  void persist(std::function<void()> job) override { jobs.push_back(std::move(job)); }
  uint64_t now_ms() const override { return now; }
  uint64_t now_ns() const override { return now * 1000000; }
  // LogStore
  bool empty() const override { return true; }
  consensus::InitialState load() override { return {}; }
  void bootstrap(const consensus::InitialState&) override {}
  void persist(const Ready& rd) override {
    ++transactions;
    persisted_entries += rd.entries.size();
  }
  void save_snapshot(const consensus::Snapshot& snap, LogIndex) override { saved.push_back(snap); }
  // Stores nothing, so releases nothing (max_resident_log_bytes stays 0).
  std::vector<Entry> read_entries(LogIndex lo, LogIndex, size_t, size_t) override {
    fatal("read_entries(" + std::to_string(lo.value()) + "): this fake stores no entry");
  }
  [[noreturn]] void fatal(const std::string& what) override { throw std::runtime_error(what); }
  // PeerSender
  void send(std::vector<Message> msgs) override {
    for (auto& m : msgs) outbox.push_back(std::move(m));
  }
  void set_peer_address(const NodeId&, const std::string&) override {}
  bool peer_healthy(const NodeId&) const override { return true; }
  void probe(const NodeId& id, std::function<void(bool)> done) override {
    probes.push_back(id);
    probe_answers.push_back(std::move(done));
  }
  // Machine
  bool restore(const std::string&) override { return true; }
  std::unique_ptr<StagedState> stage(const std::string& data) override {
    if (data != "good") return nullptr;
    return std::make_unique<StagedState>();
  }
  void install(std::unique_ptr<StagedState>) override {}
  void apply(const Entry& e) override {
    applied.push_back(e.data);
    now += apply_ms;  // an apply that takes time (DriverOptions::max_apply_ms_per_turn)
  }
  uint64_t approximate_snapshot_bytes() const override { return state_bytes; }
  void make_snapshot(consensus::Snapshot point, std::function<void(MadeSnapshot)> done) override {
    snapshots_started.push_back(point.index);
    snapshot_points.push_back(std::move(point));
    snapshot_done = std::move(done);
  }
  /// Completes the last snapshot started, as `bytes` bytes of state.
  void finish_snapshot(size_t bytes) {
    MadeSnapshot made;
    made.snapshot = snapshot_points.back();
    made.snapshot.data = std::make_shared<const std::string>(bytes, 's');
    snapshot_done(std::move(made));
    settle();
  }
  // DriverEvents
  void proposals(const char* result, size_t count) override { results[result] += count; }
  void read_started(const char* path) override { read_paths[path] += 1; }
  void dropped(const char* reason, const NodeId&, const char*, const std::string&) override { drops.push_back(reason); }

  std::vector<consensus::Snapshot> saved;  ///< save_snapshot's arguments
  std::vector<LogIndex> snapshots_started;
  std::vector<consensus::Snapshot> snapshot_points;
  uint64_t state_bytes = 0;  ///< what approximate_snapshot_bytes answers
  std::function<void(MadeSnapshot)> snapshot_done;
  /// Runs posted work until none is left (not the persist jobs).
  void run_posted() {
    while (!posted.empty()) {
      auto fn = std::move(posted.front());
      posted.pop_front();
      fn();
    }
  }
  /// Runs one persist job (a fsync completing), then what it posted.
  bool finish_fsync() {
    if (jobs.empty()) return false;
    auto job = std::move(jobs.front());
    jobs.pop_front();
    job();
    run_posted();
    return true;
  }
  void settle() {
    run_posted();
    while (finish_fsync()) {
    }
  }
  /// A lone voter ticks until it leads.
  void elect() {
    driver->start();
    settle();
    for (int i = 0; i < 50 && driver->raft().role() != consensus::Role::kLeader; ++i) {
      now += 10;
      driver->tick();
      settle();
    }
    ASSERT_EQ(driver->raft().role(), consensus::Role::kLeader);
  }

  std::unique_ptr<RaftDriver> driver;
  std::deque<std::function<void()>> posted;
  std::deque<std::function<void()>> jobs;
  uint64_t now = 1000;
  uint64_t apply_ms = 0;
  int transactions = 0;
  size_t persisted_entries = 0;
  std::vector<Message> outbox;
  std::vector<std::string> applied;
  std::map<std::string, size_t> results;
  std::map<std::string, size_t> read_paths;  ///< read_started's count by path
  std::vector<std::string> drops;
  std::vector<NodeId> probes;
  std::vector<std::function<void(bool)>> probe_answers;
};

/// Starts member b, which then learns of leader a (term 2) from a heartbeat.
void start_following_a(FakeMember& m) {
  m.driver->start();
  m.settle();
  Message hb;
  hb.type = MessageType::kHeartbeat;
  hb.from = NodeId("a");
  hb.to = NodeId("b");
  hb.term = Term(2);
  m.driver->step({hb});
  m.settle();
}

/// Leader a's append of one entry after b's last, carrying commit index `commit`.
Message append_from_a(const FakeMember& m, const std::string& data, LogIndex commit) {
  Message app;
  app.type = MessageType::kAppend;
  app.from = NodeId("a");
  app.to = NodeId("b");
  app.term = Term(2);
  app.index = m.driver->raft().log().last_index();
  app.log_term = m.driver->raft().log().last_term();
  app.entries.push_back(Entry{Term(2), app.index.next(), consensus::EntryType::kNormal, data});
  app.commit = commit;
  return app;
}

/// A snapshot at index 100 from leader b to a, in `term`.
Message snapshot_from_b(Term term, std::shared_ptr<const std::string> data) {
  Message snap;
  snap.type = MessageType::kSnapshot;
  snap.from = NodeId("b");
  snap.to = NodeId("a");
  snap.term = term;
  snap.snapshot = consensus::Snapshot{LogIndex(100), term, {}, std::move(data)};
  snap.snapshot->conf.voters = {NodeId("a"), NodeId("b"), NodeId("c")};
  return snap;
}

struct Outcome {
  bool done = false;
  std::optional<NodeErrc> error;
};

EntryDone record(Outcome& o) {
  return [&o](const NodeError* err) {
    o.done = true;
    if (err) o.error = err->code;
  };
}

/// A lone leader proposes `bytes` bytes, applies them, then ticks once
/// (where the driver looks at its snapshot thresholds).
void apply_and_tick(FakeMember& m, size_t bytes, char fill = 'x') {
  Outcome o;
  m.driver->propose(std::string(bytes, fill), record(o));
  m.settle();
  ASSERT_TRUE(o.done);
  m.driver->tick();
  m.settle();
}

TEST(RaftDriver, AppliesAProposalOnlyOnceItsReadyIsDurable) {
  FakeMember m("a", {NodeId("a")});
  m.elect();
  Outcome o;
  m.driver->propose("x", record(o));
  m.run_posted();
  ASSERT_EQ(m.jobs.size(), 1u) << "the Ready with the entry is being persisted";
  EXPECT_FALSE(o.done) << "answered before its fsync";
  EXPECT_TRUE(m.applied.empty());
  m.finish_fsync();
  m.settle();
  EXPECT_TRUE(o.done);
  EXPECT_FALSE(o.error);
  EXPECT_EQ(m.applied, std::vector<std::string>{"x"});
}

// A few large entries (a create of 100,000 shards, a failover pass) start
// a snapshot by their bytes long before the entry count would.
TEST(RaftDriver, ASnapshotStartsOnceTheEntriesAppliedSinceTheLastHoldEnoughBytes) {
  FakeMember m("a", {NodeId("a")}, 10000, 0, [](DriverOptions& o) { o.snapshot_threshold_bytes = 250; });
  m.elect();
  for (int i = 0; i < 3; ++i) {
    apply_and_tick(m, 100, char('a' + i));
    EXPECT_EQ(m.snapshots_started.size(), i < 2 ? 0u : 1u) << "after " << (i + 1) << " entries of 100 bytes";
  }
  FakeMember off("b", {NodeId("b")});  // no byte bound: 1,000,000 entries
  off.elect();
  for (int i = 0; i < 5; ++i) apply_and_tick(off, 900);
  EXPECT_TRUE(off.snapshots_started.empty());
}

// A state larger than the bound: the next snapshot waits until twice as
// many bytes as the last snapshot held were applied (1,000,000 long ids
// make a 230 MB snapshot; one every 64 MiB of log would never stop). The
// snapshot's bytes meanwhile stay with the store: the core keeps its index,
// term and configuration, and a snapshot message leaves without data for
// the sender to read from the store.
TEST(RaftDriver, ASnapshotOnRequestStartsBelowEveryThreshold) {
  // The transport found the current snapshot's file corrupt: a new one is
  // taken at once (its file replaces the bad one), one at a time.
  FakeMember m("a", {NodeId("a")});
  m.elect();
  apply_and_tick(m, 10);
  ASSERT_TRUE(m.snapshots_started.empty()) << "thresholds far away";
  m.driver->snapshot_now();
  ASSERT_EQ(m.snapshots_started.size(), 1u);
  EXPECT_EQ(m.snapshots_started[0], m.driver->applied_index());
  m.driver->snapshot_now();  // while the first is in flight: after it, not beside it
  EXPECT_EQ(m.snapshots_started.size(), 1u);
  m.finish_snapshot(100);
  apply_and_tick(m, 10);
  EXPECT_EQ(m.snapshots_started.size(), 2u) << "the request made meanwhile";
  apply_and_tick(m, 10);
  m.finish_snapshot(100);
  apply_and_tick(m, 10);
  EXPECT_EQ(m.snapshots_started.size(), 2u) << "and no more";
}

TEST(RaftDriver, TheByteBoundGrowsToTheSizeOfTheLastSnapshot) {
  FakeMember m("a", {NodeId("a")}, 10000, 0, [](DriverOptions& o) { o.snapshot_threshold_bytes = 250; });
  m.elect();
  for (int i = 0; i < 3; ++i) apply_and_tick(m, 100);
  ASSERT_EQ(m.snapshots_started.size(), 1u);
  m.finish_snapshot(500);
  ASSERT_EQ(m.saved.size(), 1u);
  ASSERT_NE(m.saved[0].data, nullptr) << "the store's row needs the bytes for its checksum";
  EXPECT_EQ(m.saved[0].data->size(), 500u);
  EXPECT_EQ(m.driver->raft().log().snapshot().index, m.saved[0].index);
  EXPECT_EQ(m.driver->raft().log().snapshot().data, nullptr) << "the core kept the snapshot's bytes";
  for (int i = 0; i < 9; ++i) {
    apply_and_tick(m, 100);
    EXPECT_EQ(m.snapshots_started.size(), 1u) << "after " << (i + 1) << " entries of 100 bytes, a snapshot of 500";
  }
  apply_and_tick(m, 100);
  EXPECT_EQ(m.snapshots_started.size(), 2u) << "1,000 bytes applied since the snapshot of 500 bytes";
}

// Before any snapshot of its own (a new group creating 1,000,000 shards
// with long ids): the bound is twice the state's estimated size.
TEST(RaftDriver, TheByteBoundWaitsForTwiceTheStatesSize) {
  FakeMember m("a", {NodeId("a")}, 10000, 0, [](DriverOptions& o) { o.snapshot_threshold_bytes = 250; });
  m.state_bytes = 300;
  m.elect();
  for (int i = 0; i < 6; ++i) {
    apply_and_tick(m, 100);
    EXPECT_EQ(m.snapshots_started.size(), i < 5 ? 0u : 1u) << "after " << (i + 1) << " entries of 100 bytes";
  }
}

// Three members with the same threshold snapshot a third of it apart,
// and stay apart; none waits longer than 1.5 thresholds, none snapshots
// again within half of one.
TEST(RaftDriver, StaggeredSnapshotsKeepTheMembersApart) {
  const uint64_t every = 100000;
  EXPECT_EQ(staggered_snapshot_index(0, every, 0, 1), every) << "one voter: as without stagger";
  EXPECT_EQ(staggered_snapshot_index(0, every, 0, 3), 100000u);
  EXPECT_EQ(staggered_snapshot_index(0, every, 1, 3), 133333u);
  EXPECT_EQ(staggered_snapshot_index(0, every, 2, 3), 66666u);
  for (size_t rank = 0; rank < 3; ++rank) {
    uint64_t last = 0;
    for (int k = 0; k < 20; ++k) {
      // A snapshot starts a little past its point (a Ready applies in batches).
      uint64_t next = staggered_snapshot_index(last, every, rank, 3);
      EXPECT_GE(next, last + every / 2);
      EXPECT_LE(next, last + every * 3 / 2);
      EXPECT_EQ(next % every, every * rank / 3) << "rank " << rank << " left its phase";
      last = next + 37;
    }
  }
}

TEST(RaftDriver, ProposalsArrivingDuringAFsyncShareTheNextOne) {
  FakeMember m("a", {NodeId("a")});
  m.elect();
  int before = m.transactions;
  Outcome first;
  m.driver->propose("p0", record(first));
  m.run_posted();
  ASSERT_EQ(m.jobs.size(), 1u);
  std::vector<Outcome> later(20);
  for (size_t i = 0; i < later.size(); ++i) m.driver->propose("p" + std::to_string(i + 1), record(later[i]));
  m.run_posted();
  EXPECT_EQ(m.jobs.size(), 1u) << "no second Ready while the first is out";
  m.settle();
  for (const auto& o : later) EXPECT_TRUE(o.done && !o.error);
  EXPECT_EQ(m.applied.size(), 21u);
  // The twenty waited for one fsync together: group commit (two appends,
  // and at most one more transaction for the commit index).
  EXPECT_LE(m.transactions - before, 3);
}

TEST(RaftDriver, RefusesWhatItCannotTake) {
  FakeMember m("a", {NodeId("a")}, /*max_queued=*/2);
  m.driver->start();
  m.settle();
  Outcome follower;
  m.driver->propose("x", record(follower));
  EXPECT_EQ(follower.error, NodeErrc::kNotLeader) << "not elected yet";
  m.elect();
  Outcome big;
  m.driver->propose(std::string(1001, 'b'), record(big));
  EXPECT_EQ(big.error, NodeErrc::kTooLarge);
  // Past the queue's bound while a fsync runs: busy, at once.
  Outcome o1, o2, o3, o4;
  m.driver->propose("1", record(o1));
  m.run_posted();  // "1" is being persisted
  m.driver->propose("2", record(o2));
  m.driver->propose("3", record(o3));
  m.driver->propose("4", record(o4));
  EXPECT_EQ(o4.error, NodeErrc::kBusy);
  EXPECT_FALSE(o2.done || o3.done);
  m.settle();
  EXPECT_TRUE(o2.done && !o2.error && o3.done && !o3.error);
  EXPECT_EQ(m.results["busy"], 1u);
  EXPECT_EQ(m.results["too_large"], 1u);
}

/// Member a of {a, b, ...} ticks until it leads; b's (pre-)votes are granted by hand.
void elect_with_bs_vote(FakeMember& m) {
  m.driver->start();
  m.settle();
  for (int i = 0; i < 50 && m.driver->raft().role() != consensus::Role::kLeader; ++i) {
    m.now += 10;
    m.driver->tick();
    m.settle();
    auto sent = std::move(m.outbox);
    m.outbox.clear();
    for (const auto& out : sent) {
      if (out.type != MessageType::kPreVote && out.type != MessageType::kVote) continue;
      if (out.to != NodeId("b")) continue;
      Message grant;
      grant.type = out.type == MessageType::kPreVote ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
      grant.from = NodeId("b");
      grant.to = NodeId("a");
      grant.term = out.term;
      m.driver->step({grant});
      m.settle();
    }
  }
  ASSERT_EQ(m.driver->raft().role(), consensus::Role::kLeader);
}

TEST(RaftDriver, ExpiresRequestsAtTheirDeadlineAndFailsAllOnStop) {
  // Two voters, one of them never answers: nothing commits.
  FakeMember m("a", {NodeId("a"), NodeId("b")});
  elect_with_bs_vote(m);
  Outcome timed_out;
  m.driver->propose("never", record(timed_out));
  m.settle();
  EXPECT_FALSE(timed_out.done);
  m.now += 250;  // past request_timeout_ms
  m.driver->tick();
  EXPECT_EQ(timed_out.error, NodeErrc::kTimeout);
  Outcome pending;
  m.driver->propose("also never", record(pending));
  m.settle();
  bool read_failed = false;
  m.driver->read([&](const NodeError* err, LogIndex) { read_failed = err && err->code == NodeErrc::kStopped; });
  m.driver->stop();
  EXPECT_EQ(pending.error, NodeErrc::kStopped);
  EXPECT_TRUE(read_failed);
}

TEST(RaftDriver, DropsStrangersAnswersAndUndecodableSnapshotsBeforeTheCore) {
  FakeMember m("a", {NodeId("a"), NodeId("b"), NodeId("c")});
  m.driver->start();
  m.settle();
  Term term = m.driver->raft().term();
  Message answer;
  answer.type = MessageType::kAppendResponse;
  answer.from = NodeId("mallory");
  answer.to = NodeId("a");
  answer.term = Term(50);
  m.driver->step({answer});
  EXPECT_EQ(m.driver->raft().term(), term) << "a stranger's answer moved the term";
  m.driver->step({snapshot_from_b(term.next(), std::make_shared<const std::string>("garbage"))});
  m.settle();
  EXPECT_EQ(m.drops, (std::vector<std::string>{"unknown_sender", "bad_snapshot_data"}));
  EXPECT_LT(m.driver->raft().log().last_index(), LogIndex(100)) << "an undecodable snapshot reached the core";
}

TEST(RaftDriver, AnInstalledSnapshotsBytesGoOnceItsReadyIsDurable) {
  FakeMember m("a", {NodeId("a"), NodeId("b"), NodeId("c")});
  m.driver->start();
  m.settle();
  Term term = m.driver->raft().term().next();
  m.driver->step({snapshot_from_b(term, nullptr)});
  m.run_posted();
  EXPECT_EQ(m.drops, std::vector<std::string>{"bad_snapshot_data"}) << "a snapshot without bytes reached the core";
  m.driver->step({snapshot_from_b(term, std::make_shared<const std::string>("good"))});
  m.run_posted();
  ASSERT_EQ(m.jobs.size(), 1u) << "the Ready installing it is being persisted";
  EXPECT_NE(m.driver->raft().log().snapshot().data, nullptr) << "let go before the store holds it";
  m.settle();
  EXPECT_EQ(m.driver->raft().log().snapshot().index, LogIndex(100));
  EXPECT_EQ(m.driver->raft().log().snapshot().data, nullptr);
}

TEST(RaftDriver, AnswersTheVoteOfACandidateAddedAfterItsConfiguration) {
  // Thesis §4.1: a member lagging a membership change grants its vote to a
  // candidate it does not know yet. Dropping it left a group with no
  // electable majority (tenure-sim --fleet --seed 40018).
  FakeMember m("a", {NodeId("a"), NodeId("b"), NodeId("c")});
  m.driver->start();
  m.settle();
  m.outbox.clear();
  for (auto type : {MessageType::kPreVote, MessageType::kVote}) {
    Message vote;
    vote.type = type;
    vote.from = NodeId("d");
    vote.to = NodeId("a");
    vote.term = m.driver->raft().term().next();
    vote.index = m.driver->raft().log().last_index();
    vote.log_term = m.driver->raft().log().last_term();
    m.driver->step({vote});
    m.settle();
  }
  EXPECT_TRUE(m.drops.empty());
  ASSERT_EQ(m.outbox.size(), 2u);
  EXPECT_EQ(m.outbox[0].type, MessageType::kPreVoteResponse);
  EXPECT_EQ(m.outbox[1].type, MessageType::kVoteResponse);
  for (const auto& answer : m.outbox) {
    EXPECT_EQ(answer.to, NodeId("d"));
    EXPECT_FALSE(answer.reject) << to_string(answer.type);
  }
}

TEST(RaftDriver, AppliesALargeBacklogOverSeveralTurns) {
  // A Ready hands out at most max_committed_bytes_per_ready (here two
  // entries of 100 bytes); the driver applies the rest in later turns of its
  // serial context, so that what was posted meanwhile (ticks, peer
  // messages) runs in between. One turn applied a million grants before.
  FakeMember m("a", {NodeId("a")}, 10000, /*apply_bytes_per_ready=*/250);
  m.elect();
  for (int i = 0; i < 10; ++i) m.driver->propose(std::string(100, 'x'), [](const NodeError*) {});
  std::vector<size_t> per_turn;
  for (int guard = 0; guard < 200 && m.applied.size() < 10; ++guard) {
    if (m.posted.empty()) {
      ASSERT_FALSE(m.jobs.empty()) << "nothing to run with " << m.applied.size() << " applied";
      auto job = std::move(m.jobs.front());
      m.jobs.pop_front();
      job();  // the fsync completes; its completion is posted
      continue;
    }
    size_t before = m.applied.size();
    auto turn = std::move(m.posted.front());
    m.posted.pop_front();
    turn();
    if (m.applied.size() > before) per_turn.push_back(m.applied.size() - before);
  }
  EXPECT_EQ(m.applied.size(), 10u);
  EXPECT_GE(per_turn.size(), 5u);
  for (size_t n : per_turn) EXPECT_LE(n, 2u);
}

TEST(RaftDriver, ALeaderHeartbeatsWhileItsFsyncRuns) {
  // The next Ready waits for the fsync of the one before; a leader's
  // heartbeats need not (thesis §10.2.1). A sync longer than the election
  // timeout deposed a leader that was only waiting for its disk.
  FakeMember m("a", {NodeId("a"), NodeId("b"), NodeId("c")});
  elect_with_bs_vote(m);
  m.driver->propose("slow to sync", [](const NodeError*) {});
  m.run_posted();
  ASSERT_TRUE(m.driver->persisting());
  m.outbox.clear();
  for (int i = 0; i < 3; ++i) {
    m.now += 10;
    m.driver->tick();  // heartbeat_ticks is 1
    m.run_posted();
  }
  ASSERT_TRUE(m.driver->persisting()) << "the fsync is still running";
  size_t heartbeats = 0;
  for (const auto& out : m.outbox) heartbeats += out.type == MessageType::kHeartbeat;
  EXPECT_GE(heartbeats, 6u) << "three ticks, two followers";
  m.settle();
  EXPECT_FALSE(m.driver->persisting());
}

TEST(RaftDriver, AFollowerSendsNothingEarlyWhileItsFsyncRuns) {
  // Only a leader's messages may leave before the fsync: a follower's
  // acknowledgements claim what is durable.
  FakeMember m("b", {NodeId("a"), NodeId("b"), NodeId("c")});
  start_following_a(m);
  Message app = append_from_a(m, "e", m.driver->raft().log().committed());
  m.outbox.clear();
  m.driver->step({app});
  m.run_posted();
  ASSERT_TRUE(m.driver->persisting());
  m.now += 10;
  m.driver->tick();
  m.run_posted();
  EXPECT_TRUE(m.outbox.empty()) << to_string(m.outbox.front().type) << " left before the fsync";
  m.settle();
  ASSERT_FALSE(m.outbox.empty());
  EXPECT_EQ(m.outbox.back().type, MessageType::kAppendResponse);
}

TEST(RaftDriver, AFollowerAppliesWhatItHoldsDurablyWhileItsNextFsyncRuns) {
  // A committed entry already on this member's disk need not wait for the
  // fsync of the entry behind it; an entry committed in the very append
  // that brings it waits for its own.
  FakeMember m("b", {NodeId("a"), NodeId("b"), NodeId("c")});
  start_following_a(m);
  auto append = [&](const std::string& data, bool commit_it) {
    const auto& log = m.driver->raft().log();
    m.driver->step({append_from_a(m, data, commit_it ? log.last_index().next() : log.committed())});
    m.run_posted();
  };
  append("e1", false);
  m.settle();  // e1 is on disk, not yet committed
  m.applied.clear();
  append("e2", true);  // commits e1 (on disk) and e2 (not yet)
  ASSERT_TRUE(m.driver->persisting());
  ASSERT_EQ(m.jobs.size(), 1u);
  EXPECT_EQ(m.applied, (std::vector<std::string>{"e1"})) << "only e1, during e2's fsync";
  m.settle();
  EXPECT_EQ(m.applied, (std::vector<std::string>{"e1", "e2"}));
}

TEST(RaftDriver, AppliesOneReadyOverTurnsWithinItsTimeBudget) {
  // Each entry's apply takes 15 ms here and a turn may take 20: a Ready of
  // six committed entries is applied two a turn, and what was posted
  // meanwhile (a tick, a proposal) runs in between. The next Ready waits
  // for the last of them; a proposal meanwhile is answered after it.
  FakeMember slow("a", {NodeId("a")}, 10000, 0, [](DriverOptions& o) { o.max_apply_ms_per_turn = 20; });
  slow.elect();
  slow.apply_ms = 15;
  slow.driver->propose("p0", [](const NodeError*) {});
  slow.run_posted();
  ASSERT_EQ(slow.jobs.size(), 1u);
  std::vector<Outcome> six(6);
  for (size_t i = 0; i < six.size(); ++i) slow.driver->propose("b" + std::to_string(i), record(six[i]));
  slow.run_posted();
  slow.finish_fsync();  // p0 is durable; the six go into the next Ready
  ASSERT_EQ(slow.jobs.size(), 1u);
  // p0 committed and is on disk: it is applied while the six's fsync runs.
  EXPECT_EQ(slow.applied, (std::vector<std::string>{"p0"}));
  auto job = std::move(slow.jobs.front());
  slow.jobs.pop_front();
  job();  // the six are durable; the rest is posted
  slow.applied.clear();
  std::vector<size_t> per_turn;
  Outcome late;
  bool proposed_late = false;
  for (int guard = 0; guard < 50 && !slow.posted.empty(); ++guard) {
    size_t before = slow.applied.size();
    auto turn = std::move(slow.posted.front());
    slow.posted.pop_front();
    turn();
    if (slow.applied.size() > before) per_turn.push_back(slow.applied.size() - before);
    if (!proposed_late && slow.applied.size() == 4) {
      proposed_late = true;
      EXPECT_TRUE(slow.driver->applying());
      slow.driver->propose("late", record(late));
      slow.driver->tick();  // runs between turns, cuts no Ready
      EXPECT_TRUE(slow.jobs.empty()) << "a Ready cut before the last one was advanced";
    }
  }
  EXPECT_EQ(per_turn, (std::vector<size_t>{2, 2, 2})) << "the six two a turn";
  for (const auto& o : six) EXPECT_TRUE(o.done && !o.error);
  EXPECT_FALSE(late.done);
  EXPECT_FALSE(slow.driver->applying());
  slow.settle();
  EXPECT_TRUE(late.done && !late.error);
  EXPECT_EQ(slow.applied.back(), "late");
}

TEST(RaftDriver, AReadIsAnsweredOnceItsIndexIsApplied) {
  FakeMember m("a", {NodeId("a")});
  m.elect();
  Outcome w;
  m.driver->propose("w", record(w));
  std::optional<LogIndex> read_at;
  m.driver->read([&](const NodeError* err, LogIndex index) {
    ASSERT_EQ(err, nullptr);
    read_at = index;
  });
  m.settle();
  ASSERT_TRUE(w.done && !w.error);
  ASSERT_TRUE(read_at.has_value());
  EXPECT_LE(*read_at, m.driver->applied_index());
}

/// b answers what leader a sent it: appends (as stored), heartbeats (their
/// read round echoed). Returns how many heartbeats it answered.
size_t b_answers(FakeMember& m) {
  auto sent = std::move(m.outbox);
  m.outbox.clear();
  size_t heartbeats = 0;
  for (const auto& out : sent) {
    if (out.to != NodeId("b")) continue;
    Message r;
    r.from = NodeId("b");
    r.to = NodeId("a");
    r.term = out.term;
    if (out.type == MessageType::kAppend) {
      r.type = MessageType::kAppendResponse;
      r.index = LogIndex(out.index.value() + out.entries.size());
    } else if (out.type == MessageType::kHeartbeat) {
      r.type = MessageType::kHeartbeatResponse;
      r.context = out.context;
      ++heartbeats;
    } else {
      continue;
    }
    m.driver->step({r});
  }
  m.settle();
  return heartbeats;
}

/// Leader a of {a, b, c} with reads on a 30 ms lease (election timeout 5
/// ticks of 10 ms: b refuses votes for 40 ms at least after it hears a).
std::unique_ptr<FakeMember> lease_leader() {
  auto m = std::make_unique<FakeMember>("a", std::vector<NodeId>{NodeId("a"), NodeId("b"), NodeId("c")}, 10000, 0,
                                        [](DriverOptions& o) { o.read_lease_ms = 30; });
  elect_with_bs_vote(*m);
  for (int i = 0; i < 5 && !m->driver->raft().committed_in_current_term(); ++i) b_answers(*m);
  EXPECT_TRUE(m->driver->raft().committed_in_current_term());
  m->outbox.clear();
  return m;
}

TEST(RaftDriver, ALeaderAnswersReadsOnItsLeaseWithoutAHeartbeatRound) {
  auto m = lease_leader();
  bool first = false;
  m->driver->read([&](const NodeError* err, LogIndex) { first = err == nullptr; });
  m->settle();
  EXPECT_FALSE(first) << "answered before a quorum confirmed the first round";
  ASSERT_EQ(b_answers(*m), 1u) << "no round of heartbeats";
  ASSERT_TRUE(first);

  // Within 30 ms of asking, the next reads need no round.
  m->now += 20;
  std::optional<LogIndex> on_lease;
  m->driver->read([&](const NodeError* err, LogIndex index) {
    if (!err) on_lease = index;
  });
  m->settle();
  ASSERT_TRUE(on_lease.has_value()) << "a read within the lease waited";
  EXPECT_EQ(*on_lease, m->driver->raft().log().committed());
  EXPECT_TRUE(m->outbox.empty()) << to_string(m->outbox.front().type) << " sent for a read on the lease";
  EXPECT_EQ(m->read_paths["lease"], 1u);

  // A write committed meanwhile: the next read on the lease is at its index.
  Outcome w;
  m->driver->propose("w", record(w));
  m->settle();
  b_answers(*m);
  ASSERT_TRUE(w.done && !w.error);
  std::optional<LogIndex> after_write;
  m->driver->read([&](const NodeError* err, LogIndex index) {
    if (!err) after_write = index;
  });
  m->settle();
  ASSERT_TRUE(after_write.has_value());
  EXPECT_EQ(*after_write, m->driver->raft().log().committed());

  // 30 ms after the confirmed read was asked the lease is over: a round again.
  m->now += 10;
  bool late = false;
  m->driver->read([&](const NodeError* err, LogIndex) { late = err == nullptr; });
  m->settle();
  EXPECT_FALSE(late) << "answered on a lease that had ended";
  EXPECT_EQ(b_answers(*m), 1u);
  EXPECT_TRUE(late);
  EXPECT_EQ(m->read_paths["read_index"], 2u);
}

/// Follower b's ReadIndex request to leader a, in a's current term.
Message read_request_from_b(FakeMember& m, uint64_t id) {
  Message r;
  r.type = MessageType::kReadIndex;
  r.from = NodeId("b");
  r.to = NodeId("a");
  r.term = m.driver->raft().term();
  r.context = id;
  return r;
}

/// The ReadIndexResp messages to b in the outbox: (request id, index).
std::vector<std::pair<uint64_t, LogIndex>> read_answers_to_b(const FakeMember& m) {
  std::vector<std::pair<uint64_t, LogIndex>> out;
  for (const auto& msg : m.outbox) {
    if (msg.type == MessageType::kReadIndexResponse && msg.to == NodeId("b")) out.emplace_back(msg.context, msg.index);
  }
  return out;
}

TEST(RaftDriver, AFollowersReadIsAnsweredOnTheLeadersLeaseWithoutARound) {
  auto m = lease_leader();
  m->driver->read([](const NodeError*, LogIndex) {});
  m->settle();
  ASSERT_EQ(b_answers(*m), 1u);  // the lease's first round
  m->outbox.clear();

  // Within the lease: b's request is answered at the commit index at once,
  // and no heartbeat goes out for it.
  m->now += 10;
  m->driver->step({read_request_from_b(*m, 7)});
  m->settle();
  auto answers = read_answers_to_b(*m);
  ASSERT_EQ(answers.size(), 1u) << "b's read waited for a round on the lease";
  EXPECT_EQ(answers[0].first, 7u);
  EXPECT_EQ(answers[0].second, m->driver->raft().log().committed());
  for (const auto& msg : m->outbox) EXPECT_NE(msg.type, MessageType::kHeartbeat) << "a round for a read on the lease";
  m->outbox.clear();

  // Past the lease: the request joins a round, answered once b confirms it.
  m->now += 25;
  m->driver->step({read_request_from_b(*m, 8)});
  m->settle();
  EXPECT_TRUE(read_answers_to_b(*m).empty()) << "answered on a lease that had ended";
  bool heartbeat = false;
  for (const auto& msg : m->outbox) heartbeat = heartbeat || msg.type == MessageType::kHeartbeat;
  EXPECT_TRUE(heartbeat);
  // (b_answers drains the outbox; the answer comes with the round's confirmation.)
  auto sent = m->outbox;
  ASSERT_GE(b_answers(*m), 1u);
  answers = read_answers_to_b(*m);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].first, 8u);
}

TEST(RaftDriver, AFollowersReadOfAnotherTermIsNotAnsweredOnTheLease) {
  auto m = lease_leader();
  m->driver->read([](const NodeError*, LogIndex) {});
  m->settle();
  ASSERT_EQ(b_answers(*m), 1u);
  m->outbox.clear();
  // A request from an older term (b asked a leader it knew before) is the
  // core's to judge, as without a lease: not answered at once.
  Message old = read_request_from_b(*m, 9);
  old.term = Term(m->driver->raft().term().value() - 1);
  m->driver->step({old});
  m->settle();
  EXPECT_TRUE(read_answers_to_b(*m).empty());
}

TEST(RaftDriver, ALeaderRenewsItsLeaseBeforeHalfOfItIsGone) {
  auto m = lease_leader();
  // A tick with no lease asks for a round itself.
  m->now += 10;
  m->driver->tick();
  m->settle();
  ASSERT_GE(b_answers(*m), 1u);
  uint64_t confirmed_at = m->now;
  // Ticks while more than half the lease is left ask nothing more; past
  // half, one round; each confirmation extends it.
  for (int i = 0; i < 20; ++i) {
    m->now += 5;
    m->driver->tick();
    m->settle();
    b_answers(*m);
    bool on_lease = false;
    m->driver->read([&](const NodeError* err, LogIndex) { on_lease = err == nullptr; });
    m->run_posted();
    EXPECT_TRUE(on_lease) << "the lease lapsed " << m->now - confirmed_at << " ms after the first round";
  }
  EXPECT_EQ(m->read_paths["read_index"], 0u);
  EXPECT_EQ(m->read_paths["lease"], 20u);
}

TEST(RaftDriver, NoReadRestsOnTheLeaseOfALeaderThatBeganATransfer) {
  auto m = lease_leader();
  m->driver->read([](const NodeError*, LogIndex) {});
  m->settle();
  ASSERT_EQ(b_answers(*m), 1u);
  Outcome transfer;
  m->driver->transfer_leadership(NodeId("c"), record(transfer));  // c never answers
  ASSERT_TRUE(transfer.done && !transfer.error);
  m->now += 5;
  bool answered = false;
  m->driver->read([&](const NodeError* err, LogIndex) { answered = err == nullptr; });
  m->settle();
  EXPECT_FALSE(answered) << "answered on the lease while c may be campaigning";
  EXPECT_EQ(m->read_paths["lease"], 0u);
  b_answers(*m);
  EXPECT_TRUE(answered) << "a round still answers";
}

/// `reads` reads at leader a, one after another: none is answered before
/// b answers a round of heartbeats (exactly one round each), every one after.
void expect_every_read_takes_a_round(FakeMember& m, int reads) {
  for (int i = 0; i < reads; ++i) {
    bool answered = false;
    m.driver->read([&](const NodeError* err, LogIndex) { answered = err == nullptr; });
    m.settle();
    EXPECT_FALSE(answered) << "read " << i << " rested on a lease";
    EXPECT_EQ(b_answers(m), 1u);
    EXPECT_TRUE(answered);
    m.now += 1;
  }
  EXPECT_EQ(m.read_paths["lease"], 0u);
}

TEST(RaftDriver, WithoutALeaseEveryReadTakesARound) {
  FakeMember m("a", {NodeId("a"), NodeId("b"), NodeId("c")});
  elect_with_bs_vote(m);
  for (int i = 0; i < 5; ++i) b_answers(m);
  expect_every_read_takes_a_round(m, 3);
  EXPECT_FALSE(m.driver->raft().config().leader_lease);

  // Nor without check-quorum, which the lease stands on, whatever it is told.
  FakeMember unchecked("a", {NodeId("a"), NodeId("b"), NodeId("c")}, 10000, 0, [](DriverOptions& o) {
    o.read_lease_ms = 30;
    o.raft.check_quorum = false;
  });
  elect_with_bs_vote(unchecked);
  for (int i = 0; i < 5; ++i) b_answers(unchecked);
  expect_every_read_takes_a_round(unchecked, 2);
  EXPECT_FALSE(unchecked.driver->raft().config().leader_lease);
}

TEST(RaftDriver, AnAnswerToAnEarlierLifesReadReleasesNoReadOfThisOne) {
  // Follower b asks leader a for a read index, then restarts; a's answer to
  // the old request arrives in the new life. It must not release the new
  // life's read (same id): that read would see an index older than writes
  // acknowledged before it began (tenure-sim seed 100051).
  auto follower = [](uint64_t now) {
    auto m = std::make_unique<FakeMember>("b", std::vector<NodeId>{NodeId("a"), NodeId("b")});
    m->now = now;
    start_following_a(*m);
    return m;
  };
  auto read_request = [](FakeMember& m) {
    for (const auto& out : m.outbox) {
      if (out.type == MessageType::kReadIndex) return out;
    }
    ADD_FAILURE() << "no ReadIndex request sent";
    return Message();
  };
  auto first = follower(1000);
  first->driver->read([](const NodeError*, LogIndex) {});
  first->settle();
  Message old_request = read_request(*first);

  auto second = follower(2000);  // the restart, a second later
  bool released = false;
  second->driver->read([&](const NodeError* err, LogIndex) { released = err == nullptr; });
  second->settle();
  Message new_request = read_request(*second);
  EXPECT_NE(old_request.context, new_request.context) << "read ids repeat across lives";
  Message stale;
  stale.type = MessageType::kReadIndexResponse;
  stale.from = NodeId("a");
  stale.to = NodeId("b");
  stale.term = Term(2);
  stale.index = LogIndex(0);
  stale.context = old_request.context;
  second->driver->step({stale});
  second->settle();
  EXPECT_FALSE(released) << "the earlier life's answer released this life's read";
}

// A follower whose leader goes silent dials it; a refused connection (the
// leader's process is gone) makes it campaign after [jitter, 2 jitter)
// ticks instead of a whole election timeout. An accepted connection or no
// answer (a leader that is stopped, slow or cut off) changes nothing.
struct SilentLeader {
  std::unique_ptr<FakeMember> m;
  explicit SilentLeader(bool probing = true) {
    m = std::make_unique<FakeMember>("b", std::vector<NodeId>{NodeId("a"), NodeId("b"), NodeId("c")}, 10000, 0,
                                     [probing](DriverOptions& o) {
                                       o.raft.heartbeat_ticks = 10;
                                       o.raft.election_ticks = 100;
                                       o.raft.election_jitter_ticks = 10;
                                       o.probe_silent_leader = probing;
                                     });
    start_following_a(*m);
    EXPECT_EQ(m->driver->raft().leader(), NodeId("a"));
  }
  /// Ticks until b campaigns (sends a pre-vote); the ticks it took.
  int ticks_to_campaign(const std::function<void()>& each_tick) {
    m->outbox.clear();
    for (int t = 1; t <= 300; ++t) {
      m->now += 10;
      m->driver->tick();
      m->settle();
      each_tick();
      for (const auto& out : m->outbox) {
        if (out.type == MessageType::kPreVote || out.type == MessageType::kVote) return t;
      }
    }
    return -1;
  }
};

TEST(RaftDriver, AFollowerCampaignsSoonOnlyWhenItsLeadersAddressRefusesConnections) {
  SilentLeader refused;
  int refused_ticks = refused.ticks_to_campaign([&] {
    auto answers = std::move(refused.m->probe_answers);
    refused.m->probe_answers.clear();
    for (auto& answer : answers) answer(true);
    refused.m->run_posted();
  });
  ASSERT_FALSE(refused.m->probes.empty());
  EXPECT_EQ(refused.m->probes.front(), NodeId("a"));
  // Silent for more than 1.5 heartbeats (15 ticks) before the first probe,
  // then [10, 20) ticks.
  EXPECT_GE(refused_ticks, 16 + 10);
  EXPECT_LT(refused_ticks, 16 + 20 + 2);

  SilentLeader accepted;
  int accepted_ticks = accepted.ticks_to_campaign([&] {
    auto answers = std::move(accepted.m->probe_answers);
    accepted.m->probe_answers.clear();
    for (auto& answer : answers) answer(false);
    accepted.m->run_posted();
  });
  EXPECT_GT(accepted.m->probes.size(), 10u) << "a silent leader is dialed again while it stays silent";
  EXPECT_GE(accepted_ticks, 100) << "a leader that accepts connections was not waited out";

  SilentLeader unanswered;  // probes never come back: one in flight at a time
  int unanswered_ticks = unanswered.ticks_to_campaign([] {});
  EXPECT_EQ(unanswered.m->probes.size(), 1u);
  EXPECT_GE(unanswered_ticks, 100);

  SilentLeader off(/*probing=*/false);
  EXPECT_GE(off.ticks_to_campaign([] {}), 100);
  EXPECT_TRUE(off.m->probes.empty());
}

}  // namespace
}  // namespace tenure::replication
