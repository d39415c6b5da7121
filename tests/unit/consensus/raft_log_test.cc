#include "consensus/raft_log.h"

#include <gtest/gtest.h>

namespace tenure::consensus {
namespace {

Entry make_entry(uint64_t index, uint64_t term) {
  Entry e;
  e.index = LogIndex(index);
  e.term = Term(term);
  e.data = "x" + std::to_string(index);
  return e;
}

std::vector<Entry> entries(std::initializer_list<std::pair<uint64_t, uint64_t>> it) {
  std::vector<Entry> out;
  for (auto [i, t] : it) out.push_back(make_entry(i, t));
  return out;
}

TEST(RaftLog, AppendAndTerm) {
  RaftLog log(Snapshot{}, {}, LogIndex(0));
  EXPECT_EQ(log.last_index(), LogIndex(0));
  EXPECT_EQ(log.term(LogIndex(0)), Term(0));
  log.append(entries({{1, 1}, {2, 1}, {3, 2}}));
  EXPECT_EQ(log.last_index(), LogIndex(3));
  EXPECT_EQ(log.last_term(), Term(2));
  EXPECT_FALSE(log.term(LogIndex(4)).has_value());
  EXPECT_EQ(log.unstable_entries().size(), 3u);
  log.stable_to(LogIndex(3));
  EXPECT_TRUE(log.unstable_entries().empty());
}

TEST(RaftLog, MaybeAppendTruncatesFromFirstConflict) {
  RaftLog log(Snapshot{}, entries({{1, 1}, {2, 1}, {3, 1}}), LogIndex(1));
  auto last = log.maybe_append(LogIndex(1), Term(1), entries({{2, 1}, {3, 2}, {4, 2}}));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, LogIndex(4));
  EXPECT_EQ(log.term(LogIndex(3)), Term(2));
  // Entry 2 was identical and stays stable; 3 and 4 must be persisted again.
  EXPECT_EQ(log.stable(), LogIndex(2));
}

TEST(RaftLog, MaybeAppendRejectsMismatch) {
  RaftLog log(Snapshot{}, entries({{1, 1}, {2, 1}}), LogIndex(0));
  EXPECT_FALSE(log.maybe_append(LogIndex(2), Term(2), entries({{3, 2}})).has_value());
  EXPECT_FALSE(log.maybe_append(LogIndex(5), Term(1), {}).has_value());
}

TEST(RaftLog, StaleAppendDoesNotTruncateNewerEntries) {
  RaftLog log(Snapshot{}, entries({{1, 1}, {2, 1}, {3, 1}}), LogIndex(0));
  // A delayed append carrying only entry 2 must not cut entry 3 off.
  auto last = log.maybe_append(LogIndex(1), Term(1), entries({{2, 1}}));
  ASSERT_TRUE(last.has_value());
  EXPECT_EQ(*last, LogIndex(2));
  EXPECT_EQ(log.last_index(), LogIndex(3));
}

TEST(RaftLog, FindConflictByTermSkipsWholeTerms) {
  RaftLog log(Snapshot{}, entries({{1, 1}, {2, 1}, {3, 3}, {4, 3}, {5, 3}}), LogIndex(0));
  EXPECT_EQ(log.find_conflict_by_term(LogIndex(5), Term(2)), LogIndex(2));
  EXPECT_EQ(log.find_conflict_by_term(LogIndex(5), Term(3)), LogIndex(5));
  EXPECT_EQ(log.find_conflict_by_term(LogIndex(9), Term(3)), LogIndex(5));
  EXPECT_EQ(log.find_conflict_by_term(LogIndex(5), Term(0)), LogIndex(0));
}

TEST(RaftLog, UpToDateComparesTermThenIndex) {
  RaftLog log(Snapshot{}, entries({{1, 1}, {2, 2}}), LogIndex(0));
  EXPECT_TRUE(log.is_up_to_date(LogIndex(1), Term(3)));
  EXPECT_TRUE(log.is_up_to_date(LogIndex(2), Term(2)));
  EXPECT_FALSE(log.is_up_to_date(LogIndex(1), Term(2)));
  EXPECT_FALSE(log.is_up_to_date(LogIndex(9), Term(1)));
}

TEST(RaftLog, CompactKeepsTermOfBoundary) {
  RaftLog log(Snapshot{}, entries({{1, 1}, {2, 1}, {3, 2}, {4, 2}}), LogIndex(4));
  log.applied_to(LogIndex(4));
  Snapshot snap;
  snap.index = LogIndex(3);
  snap.term = Term(2);
  log.compact(snap, LogIndex(2));
  EXPECT_EQ(log.first_index(), LogIndex(3));
  EXPECT_EQ(log.term(LogIndex(2)), Term(1));
  EXPECT_FALSE(log.term(LogIndex(1)).has_value());
  EXPECT_EQ(log.snapshot().index, LogIndex(3));
  EXPECT_EQ(log.entries_from(LogIndex(3), 1 << 20).size(), 2u);
}

TEST(RaftLog, RestoreReplacesEverything) {
  RaftLog log(Snapshot{}, entries({{1, 1}, {2, 1}}), LogIndex(1));
  Snapshot snap;
  snap.index = LogIndex(10);
  snap.term = Term(4);
  log.restore(snap);
  EXPECT_EQ(log.last_index(), LogIndex(10));
  EXPECT_EQ(log.committed(), LogIndex(10));
  EXPECT_EQ(log.applied(), LogIndex(10));
  EXPECT_EQ(log.last_term(), Term(4));
}

TEST(RaftLog, EntriesFromRespectsByteBudgetButSendsAtLeastOne) {
  RaftLog log(Snapshot{}, entries({{1, 1}, {2, 1}, {3, 1}}), LogIndex(0));
  EXPECT_EQ(log.entries_from(LogIndex(1), 0).size(), 1u);
  EXPECT_EQ(log.entries_from(LogIndex(1), 5).size(), 2u);
  EXPECT_EQ(log.entries_from(LogIndex(4), 100).size(), 0u);
}

TEST(RaftLog, EntriesFromTakesExactFitsAndWorksAfterCompaction) {
  RaftLog log(Snapshot{}, entries({{1, 1}, {2, 1}, {3, 1}, {4, 2}, {5, 2}}), LogIndex(5));
  // Payloads are 2 bytes each: a budget of exactly 6 takes three entries.
  auto three = log.entries_from(LogIndex(2), 6);
  ASSERT_EQ(three.size(), 3u);
  EXPECT_EQ(three.front().index, LogIndex(2));
  EXPECT_EQ(three.back().index, LogIndex(4));
  EXPECT_EQ(log.entries_from(LogIndex(2), 1 << 20).size(), 4u);
  log.applied_to(LogIndex(5));
  Snapshot snap;
  snap.index = LogIndex(3);
  snap.term = Term(1);
  log.compact(snap, LogIndex(3));
  auto rest = log.entries_from(LogIndex(4), 1 << 20);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0], make_entry(4, 2));
  EXPECT_EQ(rest[1], make_entry(5, 2));
  EXPECT_EQ(log.entries_from(LogIndex(5), 0).size(), 1u);
}

}  // namespace
}  // namespace tenure::consensus
