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

// ---- release_payloads: payloads of stable, applied entries leave memory and
// are read back from the durable log (an EntryReader) when a follower behind
// needs them.

std::vector<Entry> make_entries(uint64_t first, uint64_t last, uint64_t term) {
  std::vector<Entry> out;
  for (uint64_t i = first; i <= last; ++i) out.push_back(make_entry(i, term));
  return out;
}

size_t bytes_of(LogIndex lo, LogIndex hi) {
  size_t n = 0;
  for (uint64_t i = lo.value(); i <= hi.value(); ++i) n += make_entry(i, 1).data.size();
  return n;
}

/// The durable log: what was persisted, and every read made of it.
class FakeStore final : public EntryReader {
 public:
  std::vector<Entry> read_entries(LogIndex lo, LogIndex hi, size_t max_bytes, size_t overhead_bytes) override {
    reads.emplace_back(lo, hi);
    std::vector<Entry> out;
    size_t bytes = 0;
    for (const Entry& e : stored) {
      if (e.index < lo || e.index > hi) continue;
      bytes += e.data.size() + overhead_bytes;
      if (!out.empty() && bytes > max_bytes) break;
      out.push_back(e);
    }
    return out;
  }
  std::vector<Entry> stored;
  std::vector<std::pair<LogIndex, LogIndex>> reads;
};

/// Ten entries of term 1, stored; committed through 10, applied through 6,
/// stable through 8 (entries 9 and 10 not yet persisted here).
struct Fixture {
  Fixture() : log(Snapshot{}, make_entries(1, 8, 1), LogIndex(0)) {
    store.stored = make_entries(1, 10, 1);
    log.append(make_entries(9, 10, 1));
    log.commit_to(LogIndex(10));
    log.applied_to(LogIndex(6));
    log.set_reader(&store);
  }
  FakeStore store;
  RaftLog log;
};

TEST(RaftLogRelease, LetsGoOfStableAppliedPayloadsOnly) {
  Fixture f;
  EXPECT_EQ(f.log.resident_bytes(), bytes_of(LogIndex(1), LogIndex(10)));
  f.log.release_payloads(0);
  // Applied through 6: 7..10 stay (to apply; 9 and 10 also to persist).
  EXPECT_EQ(f.log.released_through(), LogIndex(6));
  EXPECT_EQ(f.log.resident_bytes(), bytes_of(LogIndex(7), LogIndex(10)));
  // Stable is the other bound: applied past it, only stable ones go.
  f.log.applied_to(LogIndex(10));
  f.log.release_payloads(0);
  EXPECT_EQ(f.log.released_through(), LogIndex(8));
  EXPECT_EQ(f.log.resident_bytes(), bytes_of(LogIndex(9), LogIndex(10)));
  // Terms stay in memory: no read for them.
  EXPECT_EQ(f.log.term(LogIndex(3)), Term(1));
  EXPECT_TRUE(f.store.reads.empty());
}

TEST(RaftLogRelease, KeepsTheNewestUpToTheBudget) {
  Fixture f;
  f.log.release_payloads(bytes_of(LogIndex(5), LogIndex(10)));
  EXPECT_EQ(f.log.released_through(), LogIndex(4));
  EXPECT_EQ(f.log.resident_bytes(), bytes_of(LogIndex(5), LogIndex(10)));
  f.log.release_payloads(bytes_of(LogIndex(5), LogIndex(10)));  // within the budget already
  EXPECT_EQ(f.log.released_through(), LogIndex(4));
}

TEST(RaftLogRelease, WithoutAReaderNothingIsReleased) {
  RaftLog log(Snapshot{}, make_entries(1, 5, 1), LogIndex(5));
  log.applied_to(LogIndex(5));
  log.release_payloads(0);
  EXPECT_EQ(log.released_through(), LogIndex(0));
  EXPECT_EQ(log.resident_bytes(), bytes_of(LogIndex(1), LogIndex(5)));
}

TEST(RaftLogRelease, ReadsBackWhatAFollowerBehindNeeds) {
  Fixture f;
  f.log.release_payloads(0);
  // From the store up to the released end, then from memory: the same
  // entries as if nothing had been released.
  EXPECT_EQ(f.log.entries_from(LogIndex(2), 1 << 20), make_entries(2, 10, 1));
  ASSERT_EQ(f.store.reads.size(), 1u);
  EXPECT_EQ(f.store.reads[0], std::make_pair(LogIndex(2), LogIndex(6)));
  EXPECT_EQ(f.log.entries_from(LogIndex(7), 1 << 20), make_entries(7, 10, 1));
  EXPECT_EQ(f.store.reads.size(), 1u);
  // The byte budget holds across the boundary, with at least one entry.
  RaftLog kept(Snapshot{}, make_entries(1, 10, 1), LogIndex(10));
  for (size_t budget : {size_t{1}, bytes_of(LogIndex(2), LogIndex(5)), bytes_of(LogIndex(2), LogIndex(6)),
                        bytes_of(LogIndex(2), LogIndex(8)) + 3, bytes_of(LogIndex(2), LogIndex(10))}) {
    for (size_t overhead : {size_t{0}, size_t{4}}) {
      EXPECT_EQ(f.log.entries_from(LogIndex(2), budget, overhead), kept.entries_from(LogIndex(2), budget, overhead))
          << "budget " << budget << " overhead " << overhead;
    }
  }
  // Slices and single entries span the boundary unchanged.
  EXPECT_EQ(f.log.slice(LogIndex(4), LogIndex(9)), make_entries(4, 9, 1));
  EXPECT_EQ(f.log.entry(LogIndex(3)), make_entry(3, 1));
  EXPECT_EQ(f.log.entry(LogIndex(8)), make_entry(8, 1));
}

TEST(RaftLogRelease, CompactionAndRestoreKeepTheAccount) {
  Fixture f;
  f.log.release_payloads(0);  // released through 6
  Snapshot snap;
  snap.index = LogIndex(6);
  snap.term = Term(1);
  f.log.compact(snap, LogIndex(4));  // released entries only: nothing resident goes
  EXPECT_EQ(f.log.resident_bytes(), bytes_of(LogIndex(7), LogIndex(10)));
  EXPECT_EQ(f.log.entry(LogIndex(5)), make_entry(5, 1));
  f.log.applied_to(LogIndex(8));
  snap.index = LogIndex(8);
  f.log.compact(snap, LogIndex(8));  // past the released range
  EXPECT_EQ(f.log.released_through(), LogIndex(8));
  EXPECT_EQ(f.log.resident_bytes(), bytes_of(LogIndex(9), LogIndex(10)));
  snap.index = LogIndex(20);
  f.log.restore(snap);
  EXPECT_EQ(f.log.resident_bytes(), 0u);
  EXPECT_EQ(f.log.released_through(), LogIndex(20));
}

TEST(RaftLogRelease, TruncatingTheUncommittedTailKeepsTheAccount) {
  RaftLog log(Snapshot{}, make_entries(1, 6, 1), LogIndex(3));
  FakeStore store;
  store.stored = make_entries(1, 6, 1);
  log.set_reader(&store);
  log.applied_to(LogIndex(3));
  log.release_payloads(0);
  EXPECT_EQ(log.released_through(), LogIndex(3));
  // A new leader replaces 5 and 6.
  auto replacement = make_entries(5, 5, 2);
  replacement[0].data = "longer replacement payload";
  ASSERT_TRUE(log.maybe_append(LogIndex(4), Term(1), replacement).has_value());
  EXPECT_EQ(log.resident_bytes(), bytes_of(LogIndex(4), LogIndex(4)) + replacement[0].data.size());
}

TEST(RaftLogReleaseDeathTest, AStoreThatDisagreesIsFatal) {
  Fixture f;
  f.log.release_payloads(0);
  f.store.stored[2].term = Term(7);  // entry 3, as the store now has it
  EXPECT_DEATH(f.log.entries_from(LogIndex(2), 1 << 20), "read back entry 3");
  f.store.stored.erase(f.store.stored.begin(), f.store.stored.begin() + 3);  // 1..3 gone
  EXPECT_DEATH(f.log.entry(LogIndex(2)), "read back");
}

}  // namespace
}  // namespace tenure::consensus
