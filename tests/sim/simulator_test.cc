// The simulator's parts and its determinism: the same seed must replay the
// same run, event for event, and a planted bug must make a run fail.
#include <gtest/gtest.h>

#include <sstream>

#include "sim/cli.h"
#include "sim/durable_store.h"
#include "sim/options.h"
#include "sim/simulator.h"
#include "sim/state_machine.h"

namespace tenure::sim {
namespace {

Entry entry(uint64_t index, uint64_t term) {
  Entry e;
  e.index = LogIndex(index);
  e.term = Term(term);
  return e;
}

TEST(Options, SameSeedSameDraws) {
  EXPECT_EQ(draw_options(42, {}).describe(), draw_options(42, {}).describe());
  EXPECT_NE(draw_options(42, {}).describe(), draw_options(43, {}).describe());
}

TEST(Options, OverridesLeaveTheOtherDrawsAlone) {
  RunOptions a = draw_options(7, {});
  Overrides o;
  o.nodes = 7;
  o.ticks = 123;
  RunOptions b = draw_options(7, o);
  EXPECT_EQ(b.nodes, 7);
  EXPECT_EQ(b.ticks, 123);
  b.nodes = a.nodes;
  b.ticks = a.ticks;
  EXPECT_EQ(a.describe(), b.describe());
  EXPECT_EQ(draw_options(7, o).replay(), "tenure-sim --seed 7 --nodes 7 --ticks 123");
}

TEST(DurableStore, TruncatesOverlapsAndCompacts) {
  DurableStore d;
  Ready rd;
  rd.entries = {entry(1, 1), entry(2, 1), entry(3, 1)};
  ASSERT_FALSE(d.persist(rd));
  rd.entries = {entry(2, 2)};
  ASSERT_FALSE(d.persist(rd));
  EXPECT_EQ(d.last_index(), LogIndex(2));
  EXPECT_EQ(d.term(LogIndex(2)), Term(2));
  EXPECT_TRUE(d.covers(LogIndex(2), Term(2)));
  EXPECT_FALSE(d.covers(LogIndex(2), Term(1)));
  rd.entries = {entry(5, 2)};
  EXPECT_TRUE(d.persist(rd));  // a gap breaks the Ready contract
  Snapshot s;
  s.index = LogIndex(2);
  s.term = Term(2);
  d.compact(s, LogIndex(1));
  EXPECT_TRUE(d.covers(LogIndex(1), Term(9)));  // below the snapshot: covered
  EXPECT_EQ(d.initial_state().entries.size(), 0u);
}

TEST(KvRegister, SnapshotRoundTrip) {
  KvRegister a;
  a.apply(LogIndex(1), KvRegister::encode_put("x", "1"));
  a.apply(LogIndex(2), KvRegister::encode_put("y", "2"));
  a.apply(LogIndex(3), KvRegister::encode_put("x", "3"));
  KvRegister b;
  ASSERT_TRUE(b.restore(a.snapshot()));
  EXPECT_EQ(b.query("x"), "3");
  EXPECT_EQ(b.query("y"), "2");
  EXPECT_EQ(b.query("z"), "");
  EXPECT_FALSE(b.restore("garbage"));
  EXPECT_EQ(b.query("x"), "3");
}

std::string trace_of(uint64_t seed, const Overrides& o) {
  std::ostringstream os;
  Simulator sim(draw_options(seed, o), &os);
  SimResult r = sim.run();
  os << (r.violation ? r.violation->describe() : "ok");
  return os.str();
}

TEST(Simulator, ASeedReplaysExactly) {
  Overrides o;
  o.ticks = 300;
  std::string first = trace_of(11, o);
  EXPECT_GT(first.size(), 10000u);
  EXPECT_EQ(first, trace_of(11, o));
}

TEST(Simulator, CleanSeedsPass) {
  for (uint64_t seed = 1; seed <= 10; ++seed) {
    SimResult r = Simulator(draw_options(seed, {}), nullptr).run();
    EXPECT_FALSE(r.violation) << "seed " << seed << ": " << r.violation->describe();
    EXPECT_GE(r.stats.liveness_ticks, 0) << "seed " << seed;
    EXPECT_GT(r.stats.writes_acked, 0u) << "seed " << seed;
  }
}

TEST(Simulator, PlantedBugFails) {
  Overrides o;
  o.bug = "vote-not-persisted";
  SimResult r = Simulator(draw_options(1, o), nullptr).run();
  ASSERT_TRUE(r.violation);
  EXPECT_EQ(r.violation->checker, "ack-persisted");
}

int run(std::vector<const char*> args, std::string* out_text = nullptr, std::string* err_text = nullptr) {
  args.insert(args.begin(), "tenure-sim");
  std::ostringstream out, err;
  int rc = run_cli(static_cast<int>(args.size()), args.data(), out, err);
  if (out_text) *out_text = out.str();
  if (err_text) *err_text = err.str();
  return rc;
}

TEST(Cli, BadFlagsExitNonZeroWithAOneLineReason) {
  std::string err;
  EXPECT_EQ(run({"--nodes", "9"}, nullptr, &err), 2);
  EXPECT_EQ(err.rfind("tenure-sim: --nodes must be between 3 and 7", 0), 0u) << err;
  // One line (CONTRACT.md): the usage text is for --help only.
  EXPECT_EQ(err.find('\n'), err.size() - 1) << err;
  EXPECT_EQ(err.find("usage: tenure-sim"), std::string::npos) << err;
  std::string out;
  EXPECT_EQ(run({"--help"}, &out), 0);
  EXPECT_NE(out.find("usage: tenure-sim"), std::string::npos);
  EXPECT_EQ(run({"--seeds", "9-3"}), 2);
  EXPECT_EQ(run({"--seed"}), 2);
  EXPECT_EQ(run({"--bug", "nonsense"}), 2);
  EXPECT_EQ(run({"--frobnicate", "1"}), 2);
  EXPECT_EQ(run({"--seed", "1", "--seeds", "1-2"}), 2);
}

TEST(Cli, ListsBugsAndSummarises) {
  std::string out;
  EXPECT_EQ(run({"--bug", "list"}, &out), 0);
  EXPECT_NE(out.find("commit-old-term\n"), std::string::npos);
  EXPECT_EQ(run({"--seeds", "3-4", "--ticks", "200"}, &out), 0);
  EXPECT_EQ(out.rfind("seed=3 ", 0), 0u);
  EXPECT_NE(out.find("\nseed=4 "), std::string::npos);
  EXPECT_NE(out.find("\nseeds=2 violations=0\n"), std::string::npos);
  EXPECT_EQ(run({"--seed=1", "--bug=vote-not-persisted"}, &out), 1);
  EXPECT_NE(out.find("VIOLATION checker=ack-persisted"), std::string::npos);
  EXPECT_NE(out.find("replay: tenure-sim --seed 1 "), std::string::npos);
  EXPECT_NE(out.find("seeds=1 violations=1"), std::string::npos);
}

}  // namespace
}  // namespace tenure::sim
