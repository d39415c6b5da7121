// The history writer alone (member/history_store.h), in process: how fast
// it writes as history.db fills up with every shard moving again and again
// (issue 11 §3: memory must stay flat after every shard has moved 32
// times, and the writer's queue is memory once it falls behind).
//
// N shards with ids of L characters; each round gives every shard one
// record, submitted as applies of B records each (a failover or placement
// pass), in a shuffled order within the round (applies do not come in key
// order). Before each round the bench waits until the writer has written
// the previous one, so a round's time is the writer's. Per round: records
// a second, history.db's size (with its WAL) and the process's RSS. Then
// reads of single shards (random; the writer's read path) and one full
// export of the file in pages (a joining member's backfill).
//
//   history_store_bench [--dir /tmp/tenure-history-store] [--shards 200000] [--rounds 40]
//                       [--id-len 24] [--apply 5000] [--per-shard 32] [--reads 2000]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <future>
#include <random>
#include <thread>

#include "bench/bench_cluster.h"
#include "member/history_store.h"

namespace {

using namespace tenure;
using controlplane::ChangeReason;
using controlplane::HistoryRecord;
using controlplane::Revision;
using controlplane::ShardId;
using controlplane::WorkerId;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string dir = "/tmp/tenure-history-store";
  long shards = 200000;
  int rounds = 40;
  int id_len = 24;
  long apply = 5000;
  long per_shard = 32;
  int reads = 2000;
};

std::string shard_id(long i, int len) {
  std::string s = "tenant-" + std::to_string(i % 97) + "/shard-" + std::to_string(i);
  if (static_cast<int>(s.size()) < len) s.insert(0, static_cast<size_t>(len) - s.size(), 'x');
  return s;
}

long rss_kib() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

long file_mib(const std::string& path) {
  std::error_code ec;
  uintmax_t n = std::filesystem::file_size(path, ec);
  if (ec) n = 0;
  uintmax_t wal = std::filesystem::file_size(path + "-wal", ec);
  if (ec) wal = 0;
  return static_cast<long>((n + wal) >> 20);
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// Returns once the writer has written everything submitted before.
void drain(member::HistoryStore& store) {
  std::promise<void> p;
  store.read(ShardId("-"), [&p](member::HistoryStore::Answer) { p.set_value(); });
  p.get_future().get();
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  bool ok = bench::parse_flags("history_store_bench", argc, argv, {
      {"--dir", [&](const std::string& v) { a.dir = v; }},
      {"--shards", [&](const std::string& v) { a.shards = std::stol(v); }},
      {"--rounds", [&](const std::string& v) { a.rounds = std::stoi(v); }},
      {"--id-len", [&](const std::string& v) { a.id_len = std::stoi(v); }},
      {"--apply", [&](const std::string& v) { a.apply = std::max(1L, std::stol(v)); }},
      {"--per-shard", [&](const std::string& v) { a.per_shard = std::max(1L, std::stol(v)); }},
      {"--reads", [&](const std::string& v) { a.reads = std::stoi(v); }},
  });
  if (!ok) return 2;
  std::filesystem::remove_all(a.dir);
  std::filesystem::create_directories(a.dir);
  std::vector<ShardId> ids;
  ids.reserve(static_cast<size_t>(a.shards));
  for (long i = 0; i < a.shards; ++i) ids.emplace_back(shard_id(i, a.id_len));
  std::vector<WorkerId> workers;
  for (int w = 0; w < 100; ++w) workers.emplace_back("worker-" + std::to_string(w) + ".rack-7.example.net");

  std::printf("history_store_bench: %ld shards, ids of %zu characters, %d rounds, applies of %ld records, "
              "%ld kept per shard\n",
              a.shards, ids.front().str().size(), a.rounds, a.apply, a.per_shard);
  std::printf("%5s %12s %12s %10s %9s\n", "round", "records/s", "round s", "db MiB", "RSS MiB");
  std::mt19937_64 rng(7);
  std::vector<long> order(static_cast<size_t>(a.shards));
  for (long i = 0; i < a.shards; ++i) order[static_cast<size_t>(i)] = i;
  uint64_t revision = 0;
  double total_s = 0;
  {
    // Bounded far above one round: the bench measures the writer, not drops.
    member::HistoryStore store(a.dir, static_cast<size_t>(a.per_shard), {static_cast<size_t>(a.shards) * 2, SIZE_MAX});
    for (int round = 1; round <= a.rounds; ++round) {
      std::shuffle(order.begin(), order.end(), rng);
      auto start = Clock::now();
      for (long i = 0; i < a.shards;) {
        ++revision;
        for (long end = std::min(a.shards, i + a.apply); i < end; ++i) {
          long s = order[static_cast<size_t>(i)];
          HistoryRecord h;
          h.revision = Revision(revision);
          h.epoch = controlplane::Epoch(static_cast<uint64_t>(round));
          h.from = round > 1 ? workers[static_cast<size_t>((s + round - 1) % 100)] : WorkerId();
          h.to = workers[static_cast<size_t>((s + round) % 100)];
          h.reason = round > 1 ? ChangeReason::kDeadWorker : ChangeReason::kCreated;
          h.at_ms = 1800000000000ULL + revision;
          store.record(ids[static_cast<size_t>(s)], h);
        }
        store.submit(Revision(revision));
      }
      drain(store);
      double s = seconds_since(start);
      total_s += s;
      std::printf("%5d %12.0f %12.2f %10ld %9ld\n", round, static_cast<double>(a.shards) / s, s,
                  file_mib(a.dir + "/history.db"), rss_kib() >> 10);
      std::fflush(stdout);
    }
    std::printf("all rounds: %.0f records/s (%.1f s)\n", static_cast<double>(a.shards) * a.rounds / total_s, total_s);

    std::vector<double> read_ms;
    size_t records_read = 0;
    for (int r = 0; r < a.reads; ++r) {
      const ShardId& id = ids[static_cast<size_t>(rng() % static_cast<uint64_t>(a.shards))];
      auto t = Clock::now();
      std::promise<size_t> p;
      store.read(id, [&p](member::HistoryStore::Answer ans) { p.set_value(ans.records.size()); });
      records_read += p.get_future().get();
      read_ms.push_back(seconds_since(t) * 1000);
    }
    if (!read_ms.empty()) {
      std::sort(read_ms.begin(), read_ms.end());
      std::printf("reads of one shard: %d, p50 %.3f ms, p99 %.3f ms, %.1f records each\n", a.reads,
                  read_ms[read_ms.size() / 2], read_ms[read_ms.size() * 99 / 100],
                  static_cast<double>(records_read) / static_cast<double>(read_ms.size()));
    }

    auto t = Clock::now();
    size_t exported = 0;
    ShardId after_shard;
    Revision after_revision;
    for (;;) {
      std::promise<member::HistoryStore::Page> p;
      store.export_page(Revision(revision), after_shard, after_revision, 1000,
                        [&p](member::HistoryStore::Page page) { p.set_value(std::move(page)); });
      auto page = p.get_future().get();
      exported += page.records.size();
      if (!page.more || page.records.empty()) break;
      after_shard = page.records.back().first;
      after_revision = page.records.back().second.revision;
    }
    double es = seconds_since(t);
    std::printf("export in pages of 1000: %zu records in %.1f s (%.0f records/s)\n", exported, es,
                static_cast<double>(exported) / es);
  }
  struct rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  std::printf("CPU: %.1f s user, %.1f s system; peak RSS %ld MiB\n",
              static_cast<double>(ru.ru_utime.tv_sec) + static_cast<double>(ru.ru_utime.tv_usec) / 1e6,
              static_cast<double>(ru.ru_stime.tv_sec) + static_cast<double>(ru.ru_stime.tv_usec) / 1e6,
              ru.ru_maxrss >> 10);
  return 0;
}
