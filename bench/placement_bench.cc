// Placement and state-machine scale (issue 4's figures): one placement pass
// over 1,000,000 shards and 1,000 workers, and the memory the replicated
// state takes with 1,000,000 assigned shards; the leader's periodic check
// of 10,000 workers' leases.
//
//   placement_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <fstream>
#include <memory>
#include <string>

#include "controlplane/fleet_policy.h"
#include "controlplane/placement.h"
#include "controlplane/state_machine.h"

namespace tenure::controlplane {
namespace {

long rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

/// A state with `shards` shards and `workers` workers, every shard assigned
/// (ids `prefix` + number).
void build(StateMachine& sm, size_t shards, size_t workers, const std::string& prefix = "shard-") {
  for (size_t w = 0; w < workers; ++w) {
    sm.apply(Command{"", 1000, RegisterWorker{WorkerId("w-" + std::to_string(w)), "10.0.0.1:8000",
                                              "z" + std::to_string(w % 3), 1}});
  }
  for (size_t i = 0; i < shards; i += 100000) {
    CreateShards c;
    for (size_t k = i; k < std::min(shards, i + 100000); ++k) c.ids.emplace_back(prefix + std::to_string(k));
    sm.apply(Command{"", 1000, std::move(c)});
  }
  // Unbounded passes: every shard assigned in one.
  PlacementOptions all;
  all.max_assignments_per_pass = shards;
  Plan p = plan_placement(sm, all);
  AssignShards a;
  a.reason = ChangeReason::kCreated;
  for (const auto& m : p.assignments) a.placements.push_back({m.shard, m.to, m.epoch});
  sm.apply(Command{"", 1000, std::move(a)});
}

void BM_PlacementPass(benchmark::State& state) {
  size_t shards = static_cast<size_t>(state.range(0)), workers = static_cast<size_t>(state.range(1));
  StateMachine sm(Limits{32, 1000, 1000});
  build(sm, shards, workers);
  // A new worker joined: the pass must find the surplus to move to it.
  sm.apply(Command{"", 1000, RegisterWorker{WorkerId("newcomer"), "10.0.0.2:8000", "z0", 1}});
  size_t moves = 0;
  for (auto _ : state) {
    Plan p = plan_placement(sm, PlacementOptions{64, 0, 0});
    moves = p.moves.size();
    benchmark::DoNotOptimize(p);
  }
  state.counters["moves_planned"] = static_cast<double>(moves);
}
// The periodic pass over a balanced fleet (FleetPolicy's placement_interval_ms):
// nothing to move, but the leader's strand pays for finding that out.
void BM_PlacementPassBalanced(benchmark::State& state) {
  size_t shards = static_cast<size_t>(state.range(0)), workers = static_cast<size_t>(state.range(1));
  StateMachine sm(Limits{32, 1000, 1000});
  build(sm, shards, workers);
  size_t moves = 0;
  for (auto _ : state) {
    Plan p = plan_placement(sm, PlacementOptions{64, 0, 0});
    moves = p.moves.size() + p.assignments.size();
    benchmark::DoNotOptimize(p);
  }
  state.counters["moves_planned"] = static_cast<double>(moves);
}
BENCHMARK(BM_PlacementPassBalanced)->Args({1000000, 10000})->Args({100000, 10000})->Unit(benchmark::kMillisecond);

// A pass during a bulk creation (bench/fleet_load's phase 1): 500,000
// shards already placed over 10,000 workers and `range(0)` new ones
// unassigned. The leader plans them and turns the plan into its commands,
// what FleetPolicy::maybe_place does on its strand while shards arrive.
void BM_PlacementPassAssigning(benchmark::State& state) {
  size_t fresh = static_cast<size_t>(state.range(0));
  StateMachine sm(Limits{32, 1000, 1000});
  build(sm, 500000, 10000);
  CreateShards c;
  for (size_t k = 0; k < fresh; ++k) c.ids.emplace_back("new-" + std::to_string(k));
  sm.apply(Command{"", 1000, std::move(c)});
  FleetPolicy policy{FleetPolicyOptions{}};
  size_t placed = 0;
  for (auto _ : state) {
    auto cmds = policy.plan_commands(policy.plan(sm, 0));
    placed = 0;
    for (const auto& cmd : cmds) placed += std::get<AssignShards>(cmd.body).placements.size();
    benchmark::DoNotOptimize(cmds);
  }
  state.counters["placed"] = static_cast<double>(placed);
  state.counters["us_per_shard"] = benchmark::Counter(static_cast<double>(placed) * static_cast<double>(state.iterations()),
                                                      benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_PlacementPassAssigning)->Arg(20000)->Arg(2000)->Unit(benchmark::kMillisecond);

// One FleetPolicy::tick with every lease fresh and nothing to place: what
// the leader's strand pays 20 times a second (check_interval_ms 50) for the
// lease check alone.
void BM_LeaseCheck(benchmark::State& state) {
  size_t workers = static_cast<size_t>(state.range(0));
  StateMachine sm;
  build(sm, workers * 10, workers);
  FleetPolicyOptions o;
  FleetPolicy policy(o);
  uint64_t now = 1000000;
  policy.start_leading(sm, now);
  for (auto _ : state) {
    now += o.check_interval_ms;
    state.PauseTiming();
    for (const auto& [id, w] : sm.workers()) policy.heartbeat(sm, id, now);  // every worker is heard
    state.ResumeTiming();
    benchmark::DoNotOptimize(policy.tick(sm, now, 0));
  }
}
BENCHMARK(BM_LeaseCheck)->Arg(10000)->Unit(benchmark::kMicrosecond);

BENCHMARK(BM_PlacementPass)->Args({1000000, 1000})->Args({100000, 100})->Unit(benchmark::kMillisecond)->Iterations(3);

void BM_StateMemory(benchmark::State& state) {
  size_t shards = static_cast<size_t>(state.range(0));
  for (auto _ : state) {
    long before = rss_kb();
    auto sm = std::make_unique<StateMachine>();
    build(*sm, shards, 1000);
    long after = rss_kb();
    state.counters["state_rss_MiB"] = static_cast<double>(after - before) / 1024.0;
    std::string snap = sm->snapshot();
    state.counters["snapshot_MiB"] = static_cast<double>(snap.size()) / (1024.0 * 1024.0);
    benchmark::DoNotOptimize(snap);
  }
}
BENCHMARK(BM_StateMemory)->Arg(1000000)->Unit(benchmark::kMillisecond)->Iterations(1);

void BM_SnapshotRestore(benchmark::State& state) {
  StateMachine sm;
  build(sm, static_cast<size_t>(state.range(0)), 1000);
  std::string snap = sm.snapshot();
  for (auto _ : state) {
    StateMachine copy;
    benchmark::DoNotOptimize(copy.restore(snap));
  }
}
BENCHMARK(BM_SnapshotRestore)->Arg(1000000)->Unit(benchmark::kMillisecond)->Iterations(2);

// Half of 20 workers die at once over 1,000,000 shards with ids of ~100
// characters (integration.scale_failover's second half): the leader's
// first failover pass, planned and cut into commands on its strand, then
// those commands applied (what every member's strand does with them).
const std::string kLongPrefix = std::string(94, 'x') + "-";

std::vector<WorkerId> nine_of_twenty() {
  std::vector<WorkerId> dead;
  for (int w = 1; w <= 9; ++w) dead.emplace_back("w-" + std::to_string(w));
  return dead;
}

void BM_FailoverPass(benchmark::State& state) {
  StateMachine sm;
  build(sm, 1000000, 20, kLongPrefix);
  const auto dead = nine_of_twenty();
  size_t placements = 0, commands = 0;
  for (auto _ : state) {
    auto plans = plan_failovers(sm, dead, PlacementOptions{});
    placements = commands = 0;
    for (size_t k = 0; k < dead.size(); ++k) {
      placements += plans[k].size();
      commands += failover_commands("", dead[k], std::move(plans[k]), ChangeReason::kDeadWorker).size();
    }
  }
  state.counters["placements"] = static_cast<double>(placements);
  state.counters["commands"] = static_cast<double>(commands);
}
BENCHMARK(BM_FailoverPass)->Unit(benchmark::kMillisecond)->Iterations(5);

void BM_FailoverApply(benchmark::State& state) {
  StateMachine sm;
  build(sm, 1000000, 20, kLongPrefix);
  const auto dead = nine_of_twenty();
  auto plans = plan_failovers(sm, dead, PlacementOptions{});
  std::vector<Command> cmds;
  size_t placements = 0;
  for (size_t k = 0; k < dead.size(); ++k) {
    placements += plans[k].size();
    for (auto& c : failover_commands("", dead[k], std::move(plans[k]), ChangeReason::kDeadWorker)) {
      cmds.push_back(std::move(c));
    }
  }
  for (auto _ : state) {
    for (auto& c : cmds) benchmark::DoNotOptimize(sm.apply(c));
  }
  state.counters["placements"] = static_cast<double>(placements);
  state.counters["us_per_placement"] = benchmark::Counter(static_cast<double>(placements),
                                                          benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
// Once: a second pass over the same commands would find them applied.
BENCHMARK(BM_FailoverApply)->Unit(benchmark::kMillisecond)->Iterations(1);

}  // namespace
}  // namespace tenure::controlplane

BENCHMARK_MAIN();
