// Throughput of the Raft core alone: entries committed per second by an
// in-memory 3-member group driven in one thread, with no fsync and no
// network. Each iteration proposes a batch of 128-byte commands at the leader
// (propose_batch) and drives the group until the leader has committed and
// applied all of them; items_per_second counts those entries.
//
//   build/bin/raft_bench                      # batches of 1, 16 and 256
//   valgrind --tool=callgrind build/bin/raft_bench --profile=256:200
//
// The members persist into tests/support's MemoryStorage (a copy per entry,
// as a real log write would) and compact log and storage every
// kCompactEvery entries, as the controller does, so memory stays bounded
// however long the benchmark runs.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "consensus/raft.h"
#include "tests/support/memory_storage.h"

namespace tenure::bench {
namespace {

using namespace tenure::consensus;

constexpr size_t kEntryBytes = 128;
constexpr uint64_t kCompactEvery = 64 * 1024;
constexpr uint64_t kKeepAfterCompaction = 1024;

class Group {
 public:
  Group() {
    std::vector<NodeId> ids = {NodeId("c1"), NodeId("c2"), NodeId("c3")};
    InitialState boot = bootstrap_state(ids);
    for (const auto& id : ids) {
      Member m;
      m.storage.set_initial(boot);
      RaftConfig cfg;
      cfg.id = id;
      m.raft = std::make_unique<Raft>(cfg, m.storage.initial_state());
      members_.push_back(std::move(m));
    }
    settle();
    leader().campaign();
    settle();
    if (leader().role() != Role::kLeader) std::abort();
  }

  Raft& leader() { return *members_[0].raft; }

  /// Proposes `batch` at the leader and drives the group until the leader
  /// has applied it. Returns the number of proposed entries the leader applied.
  uint64_t commit(std::vector<std::string> batch) {
    auto ticket = leader().propose_batch(std::move(batch));
    if (!ticket.ok()) std::abort();
    uint64_t before = members_[0].applied_commands;
    settle();
    if (leader().log().applied() < ticket.value().index) std::abort();
    return members_[0].applied_commands - before;
  }

 private:
  struct Member {
    std::unique_ptr<Raft> raft;
    testing::MemoryStorage storage;
    uint64_t applied_commands = 0;
    uint64_t applied_bytes = 0;
    LogIndex last_compaction;
  };

  /// Processes every Ready and delivers every message until nothing moves.
  void settle() {
    for (;;) {
      bool moved = false;
      for (auto& m : members_) {
        while (m.raft->has_ready()) {
          process_ready(m);
          moved = true;
        }
      }
      while (!queue_.empty()) {
        Message msg = std::move(queue_.front());
        queue_.pop_front();
        members_[member_index(msg.to)].raft->step(std::move(msg));
        moved = true;
      }
      if (!moved) return;
    }
  }

  void process_ready(Member& m) {
    Ready rd = m.raft->ready();
    for (auto& msg : rd.early_messages) queue_.push_back(std::move(msg));
    m.storage.persist(rd);
    for (auto& msg : rd.messages) queue_.push_back(std::move(msg));
    for (const auto& e : rd.committed_entries) {
      // The "state machine": count what a real one would consume.
      if (e.type == EntryType::kNormal && !e.data.empty()) {
        ++m.applied_commands;
        m.applied_bytes += e.data.size();
      }
    }
    m.raft->advance();
    maybe_compact(m);
  }

  void maybe_compact(Member& m) {
    LogIndex applied = m.raft->log().applied();
    if (applied.value() - m.last_compaction.value() < kCompactEvery) return;
    auto [snap, to] = m.raft->compact(std::to_string(m.applied_bytes), kKeepAfterCompaction);
    m.storage.compact(snap, to);
    m.last_compaction = applied;
  }

  size_t member_index(const NodeId& id) const { return static_cast<size_t>(id.str()[1] - '1'); }

  std::vector<Member> members_;
  std::deque<Message> queue_;
};

void BM_CommitThroughput(benchmark::State& state) {
  const size_t batch_size = static_cast<size_t>(state.range(0));
  Group group;
  const std::string payload(kEntryBytes, 'x');
  uint64_t committed = 0;
  for (auto _ : state) {
    std::vector<std::string> batch(batch_size, payload);
    committed += group.commit(std::move(batch));
  }
  if (committed != batch_size * state.iterations()) state.SkipWithError("not every proposal was applied");
  state.SetItemsProcessed(static_cast<int64_t>(committed));
  state.SetBytesProcessed(static_cast<int64_t>(committed * kEntryBytes));
}
BENCHMARK(BM_CommitThroughput)->ArgName("batch")->Arg(1)->Arg(16)->Arg(256);

/// `--profile=BATCH:ITERATIONS` runs exactly that many commits and exits, for
/// a deterministic run under `valgrind --tool=callgrind`.
bool run_profile(const std::string& arg) {
  const std::string prefix = "--profile=";
  if (arg.rfind(prefix, 0) != 0) return false;
  std::string spec = arg.substr(prefix.size());
  size_t colon = spec.find(':');
  size_t batch_size = std::stoul(spec.substr(0, colon));
  uint64_t iterations = colon == std::string::npos ? 1000 : std::stoull(spec.substr(colon + 1));
  Group group;
  const std::string payload(kEntryBytes, 'x');
  uint64_t committed = 0;
  for (uint64_t i = 0; i < iterations; ++i) committed += group.commit(std::vector<std::string>(batch_size, payload));
  std::printf("profile batch=%zu iterations=%llu committed=%llu\n", batch_size,
              static_cast<unsigned long long>(iterations), static_cast<unsigned long long>(committed));
  return true;
}

}  // namespace
}  // namespace tenure::bench

int main(int argc, char** argv) {
  if (argc == 2 && tenure::bench::run_profile(argv[1])) return 0;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
