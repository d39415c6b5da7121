// Known answers for CRC32C (RFC 3720 B.4 and the usual "123456789" check
// value), the hardware and table paths agreeing, and extension.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "common/crc32c.h"

namespace tenure {
namespace {

TEST(Crc32c, KnownAnswers) {
  EXPECT_EQ(crc32c(""), 0u);
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(crc32c("a"), 0xC1D04330u);
  EXPECT_EQ(crc32c(std::string(32, '\0')), 0x8A9136AAu);     // RFC 3720 B.4: 32 zero bytes
  EXPECT_EQ(crc32c(std::string(32, '\xff')), 0x62A8AB43u);   // 32 bytes of 0xff
  std::string up, down;
  for (int i = 0; i < 32; ++i) {
    up.push_back(static_cast<char>(i));
    down.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(crc32c(up), 0x46DD794Eu);    // incrementing 0x00..0x1f
  EXPECT_EQ(crc32c(down), 0x113FDB5Cu);  // decrementing 0x1f..0x00
}

TEST(Crc32c, SoftwareAndHardwareAgreeAtEveryLengthAndAlignment) {
  std::mt19937 rng(7);
  std::string buf(4096 + 16, '\0');
  for (auto& c : buf) c = static_cast<char>(rng());
  for (size_t off = 0; off < 9; ++off) {
    for (size_t n : {0, 1, 7, 8, 9, 15, 16, 63, 64, 65, 1000, 4096}) {
      EXPECT_EQ(crc32c_extend(0, buf.data() + off, n), crc32c_extend_software(0, buf.data() + off, n))
          << "offset " << off << " length " << n << (crc32c_hardware() ? " (sse4.2)" : " (table only)");
    }
  }
}

TEST(Crc32c, ExtendEqualsOnePass) {
  std::string a = "the quick brown fox ", b = "jumps over the lazy dog";
  EXPECT_EQ(crc32c_extend(crc32c(a), b.data(), b.size()), crc32c(a + b));
  EXPECT_EQ(crc32c_extend_software(crc32c(a), b.data(), b.size()), crc32c(a + b));
}

TEST(Crc32c, EveryFlippedBitChangesIt) {
  std::string s = "entry 42 term 7: create shard s-1";
  uint32_t base = crc32c(s);
  for (size_t i = 0; i < s.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string t = s;
      t[i] = static_cast<char>(t[i] ^ (1 << bit));
      EXPECT_NE(crc32c(t), base) << "byte " << i << " bit " << bit;
    }
  }
}

}  // namespace
}  // namespace tenure
