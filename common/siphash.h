#pragma once
// SipHash-2-4 (Aumasson and Bernstein, 2012): a keyed 64-bit hash of a
// string. Where ids chosen outside (shard ids) key a hash, a secret key
// keeps anyone who can pick ids from picking ones that collide. The values
// are pinned by the reference vectors (tests/unit/common/siphash_test.cc).

#include <cstdint>
#include <string_view>

namespace tenure {

struct SipKey {
  uint64_t k0 = 0;
  uint64_t k1 = 0;
};

namespace detail {

constexpr uint64_t sip_rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

struct SipState {
  uint64_t v0, v1, v2, v3;
  constexpr void round() {
    v0 += v1; v1 = sip_rotl(v1, 13); v1 ^= v0; v0 = sip_rotl(v0, 32);
    v2 += v3; v3 = sip_rotl(v3, 16); v3 ^= v2;
    v0 += v3; v3 = sip_rotl(v3, 21); v3 ^= v0;
    v2 += v1; v1 = sip_rotl(v1, 17); v1 ^= v2; v2 = sip_rotl(v2, 32);
  }
  constexpr void absorb(uint64_t m) {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
};

}  // namespace detail

constexpr uint64_t siphash24(SipKey key, std::string_view bytes) {
  detail::SipState s{key.k0 ^ 0x736f6d6570736575ULL, key.k1 ^ 0x646f72616e646f6dULL,
                     key.k0 ^ 0x6c7967656e657261ULL, key.k1 ^ 0x7465646279746573ULL};
  const size_t len = bytes.size();
  size_t at = 0;
  for (; at + 8 <= len; at += 8) {
    uint64_t m = 0;
    for (size_t i = 8; i > 0; --i) m = (m << 8) | static_cast<unsigned char>(bytes[at + i - 1]);
    s.absorb(m);
  }
  uint64_t last = uint64_t{len & 0xff} << 56;
  for (size_t i = len - at; i > 0; --i) last |= uint64_t{static_cast<unsigned char>(bytes[at + i - 1])} << (8 * (i - 1));
  s.absorb(last);
  s.v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) s.round();
  return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

}  // namespace tenure
