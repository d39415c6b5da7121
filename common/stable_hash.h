#pragma once
// A 64-bit string hash whose values are fixed by this file, not by the
// standard library. std::hash<std::string> is implementation-defined: the
// Raft core mixed it into its random seed, so the simulator's schedule for a
// given --seed (and every pinned seed) depended on which C++ library built
// it. This is the same function libstdc++ 64-bit uses for std::hash
// (its _Hash_bytes: Murmur-style mixing with multiplier 0xc6a4a7935bd1e995
// and seed 0xc70f6907) with the bytes read little-endian on every platform,
// so the schedules drawn before this change stay exactly as they were and
// now stay so on libc++, MSVC or a big-endian machine too
// (tests/unit/common/stable_hash_test.cc pins its values).
//
// Not for hash tables fed by input (no per-process key; flooding is easy)
// and not cryptographic: it seeds deterministic randomness.

#include <cstdint>
#include <string_view>

namespace tenure {

namespace detail {

inline constexpr uint64_t kStableHashMul = (uint64_t{0xc6a4a793} << 32) + uint64_t{0x5bd1e995};

constexpr uint64_t stable_hash_shift_mix(uint64_t v) { return v ^ (v >> 47); }

/// `n` (1..8) bytes at `p` as a little-endian integer.
constexpr uint64_t stable_hash_load_le(std::string_view s, size_t at, size_t n) {
  uint64_t v = 0;
  for (size_t i = n; i > 0; --i) v = (v << 8) | static_cast<unsigned char>(s[at + i - 1]);
  return v;
}

}  // namespace detail

/// The stable 64-bit hash of `bytes` (any bytes, NULs included). The same
/// value on every compiler, library and platform, forever: changing it
/// changes every simulator schedule (docs/simulator.md).
constexpr uint64_t stable_hash64(std::string_view bytes) {
  using namespace detail;
  const size_t len = bytes.size();
  const size_t aligned = len & ~size_t{7};
  uint64_t hash = uint64_t{0xc70f6907} ^ (uint64_t{len} * kStableHashMul);
  for (size_t at = 0; at < aligned; at += 8) {
    hash ^= stable_hash_shift_mix(stable_hash_load_le(bytes, at, 8) * kStableHashMul) * kStableHashMul;
    hash *= kStableHashMul;
  }
  if (len & 7) {
    hash ^= stable_hash_load_le(bytes, aligned, len & 7);
    hash *= kStableHashMul;
  }
  hash = stable_hash_shift_mix(hash) * kStableHashMul;
  return stable_hash_shift_mix(hash);
}

}  // namespace tenure
