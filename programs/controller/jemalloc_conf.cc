// jemalloc's options for tenure-controller, compiled in (jemalloc reads this
// symbol at start; MALLOC_CONF in the environment still adds to it).
//
// At 1,000,000 shards, with half the fleet failing over every ~15 s
// (bench/history_bench.cc), the defaults held 60-75 MiB of RSS beyond the
// live heap: eight arenas on two cores (four per CPU), each keeping its
// freed pages dirty for 10 s and muzzy for 10 s more. Two arenas, dirty
// pages returned after 1 s and no muzzy stage held 30-50 MiB less in the
// same run (docs/performance.md, "Controller memory"). Small allocations go
// through per-thread caches either way, so two arenas cost no contention
// that showed in the write benchmarks.
extern "C" {
// NOLINTNEXTLINE: the name is jemalloc's.
const char* malloc_conf = "narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
