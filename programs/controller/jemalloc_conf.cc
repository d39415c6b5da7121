// jemalloc's options for tenure-controller, compiled in (jemalloc reads this
// symbol at start; MALLOC_CONF in the environment still adds to it).
//
// At 1,000,000 shards, with half the fleet failing over every ~15 s
// (bench/history_bench.cc), Debian's defaults held 60-75 MiB of RSS beyond
// the live heap: eight arenas on two cores (four per CPU), each keeping its
// freed pages for 10 s before returning them. Two arenas whose freed pages
// go back after 1 s held 30-50 MiB less in the same run (docs/performance.md,
// "Controller memory"). Small allocations go through per-thread caches
// either way (the write and read rates with both settings: same page).
// muzzy_decay_ms is 0 by default already; it is spelled out so that the
// pages really leave (MADV_DONTNEED) rather than linger lazily freed.
extern "C" {
// NOLINTNEXTLINE: the name is jemalloc's.
const char* malloc_conf = "narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";
}
