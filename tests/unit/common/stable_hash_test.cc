// common/stable_hash.h: the values are pinned (the simulator's schedules
// depend on them through the Raft core's random seed), and on a 64-bit
// libstdc++ they equal std::hash<std::string>, which the core used before.
#include <functional>
#include <string>

#include <gtest/gtest.h>

#include "common/stable_hash.h"

namespace tenure {
namespace {

TEST(StableHash, PinnedValues) {
  // Every tail length 0..7 and one, two and more whole 8-byte words.
  EXPECT_EQ(stable_hash64(""), 0x553e93901e462a6eULL);
  EXPECT_EQ(stable_hash64("a"), 0x454ddee488c1ed6bULL);
  EXPECT_EQ(stable_hash64("n1"), 0x3810e2120971d2c8ULL);
  EXPECT_EQ(stable_hash64("c1"), 0xf7483a2b787b202eULL);
  EXPECT_EQ(stable_hash64("c2"), 0x72072f552a232377ULL);
  EXPECT_EQ(stable_hash64("c3"), 0x52212af4053e5ff6ULL);
  EXPECT_EQ(stable_hash64("abcdefgh"), 0x783db3e38db898bbULL);
  EXPECT_EQ(stable_hash64("abcdefghi"), 0xb4ec9257851c8aafULL);
  EXPECT_EQ(stable_hash64("controller-1"), 0x1111879bdd7b1a80ULL);
}

TEST(StableHash, IsAConstantExpression) {
  static_assert(stable_hash64("c1") == 0xf7483a2b787b202eULL);
  SUCCEED();
}

TEST(StableHash, EveryByteCounts) {
  // NULs and high bytes are hashed like any other byte.
  std::string with_nul("n\0" "1", 3);
  EXPECT_NE(stable_hash64(with_nul), stable_hash64("n1"));
  EXPECT_NE(stable_hash64(std::string_view("\xff", 1)), stable_hash64(std::string_view("\x7f", 1)));
  std::string base(17, 'x');
  for (size_t i = 0; i < base.size(); ++i) {
    std::string flipped = base;
    flipped[i] = 'y';
    EXPECT_NE(stable_hash64(flipped), stable_hash64(base)) << "byte " << i;
  }
}

#if defined(__GLIBCXX__) && __SIZEOF_SIZE_T__ == 8 && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
TEST(StableHash, EqualsLibstdcxxStdHashOnThisPlatform) {
  // Seeds pinned before the change keep their schedules.
  std::string s;
  for (int n = 0; n < 40; ++n) {
    EXPECT_EQ(stable_hash64(s), std::hash<std::string>()(s)) << "length " << n;
    s.push_back(static_cast<char>('A' + n * 7 % 91));
  }
}
#endif

}  // namespace
}  // namespace tenure
