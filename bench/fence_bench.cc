// fence_bench: the agent's fence check in-process (what Agent::fence and
// the HTTP API call), in ns per check. Google Benchmark.
//
//   Hot:    one shard checked over and over (lock + clock + hash + counters).
//   Random: random shards among 10,000 held (adds cache misses).
//   Miss:   a shard never heard of (not_owner).
//   WithFence: with_fence() around an empty write.
// ->Threads(2) shows the cost of sharing the lock's cache line.

#include <benchmark/benchmark.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "dataplane_agent/fence_state.h"

namespace {

using tenure::agent::Epoch;
using tenure::agent::FenceState;
using tenure::agent::GrantChanges;
using tenure::agent::ShardId;
using tenure::agent::SystemClock;

constexpr size_t kShards = 10000;

struct Fixture {
  SystemClock clock;
  FenceState fence{clock};
  std::vector<std::string> names;
  Fixture() {
    GrantChanges c(fence.table_for_planning());
    for (size_t i = 0; i < kShards; ++i) {
      names.push_back("s-" + std::to_string(i));
      c.grant(ShardId(names.back()), Epoch(7));
    }
    fence.install(c);
    fence.extend_lease(clock.now() + std::chrono::hours(1));
  }
};

Fixture& fixture() {
  static Fixture f;
  return f;
}

void BM_FenceCheckHot(benchmark::State& state) {
  auto& f = fixture();
  const std::string& s = f.names[state.thread_index() % kShards];
  for (auto _ : state) benchmark::DoNotOptimize(f.fence.check(s, Epoch(7)));
}
BENCHMARK(BM_FenceCheckHot)->Threads(1)->Threads(2);

void BM_FenceCheckRandom(benchmark::State& state) {
  auto& f = fixture();
  std::mt19937 rng(static_cast<unsigned>(state.thread_index() + 1));
  std::vector<uint32_t> order(1 << 16);
  for (auto& o : order) o = static_cast<uint32_t>(rng() % kShards);
  size_t i = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(f.fence.check(f.names[order[i++ & 0xffff]], Epoch(7)));
  }
}
BENCHMARK(BM_FenceCheckRandom)->Threads(1)->Threads(2);

void BM_FenceCheckMiss(benchmark::State& state) {
  auto& f = fixture();
  for (auto _ : state) benchmark::DoNotOptimize(f.fence.check("no-such-shard", Epoch(1)));
}
BENCHMARK(BM_FenceCheckMiss);

void BM_WithFence(benchmark::State& state) {
  auto& f = fixture();
  int writes = 0;
  for (auto _ : state) benchmark::DoNotOptimize(f.fence.with_fence(f.names[0], Epoch(7), [&] { ++writes; }));
  benchmark::DoNotOptimize(writes);
}
BENCHMARK(BM_WithFence);

}  // namespace

BENCHMARK_MAIN();
