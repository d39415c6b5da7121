#include "config/host_port.h"

#include <gtest/gtest.h>

namespace tenure::config {
namespace {

TEST(HostPortTest, ParsesNamesAndAddresses) {
  auto a = parse_host_port("127.0.0.1:7001");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.value().host, "127.0.0.1");
  EXPECT_EQ(a.value().port, 7001);
  EXPECT_EQ(a.value().str(), "127.0.0.1:7001");

  auto b = parse_host_port("ctl-1.example.com:65535");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b.value().host, "ctl-1.example.com");
  EXPECT_EQ(b.value().port, 65535);
}

TEST(HostPortTest, Ipv6NeedsBracketsAndKeepsThemInStr) {
  auto a = parse_host_port("[::1]:7001");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a.value().host, "::1");
  EXPECT_EQ(a.value().str(), "[::1]:7001");
  EXPECT_FALSE(parse_host_port("::1:7001").ok());
}

TEST(HostPortTest, RejectsBadInput) {
  for (const char* bad : {"", "7001", "host", "host:", ":7001", "host:0", "host:65536", "host:70000", "host:-1",
                          "host:12a", "host:123456", "ho st:1", "host/x:1", "[]:1", "http://host:1"}) {
    auto r = parse_host_port(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.code(), ConfigErrorCode::kInvalidValue);
      EXPECT_NE(r.error().message.find("expected host:port"), std::string::npos) << r.error().message;
    }
  }
}

}  // namespace
}  // namespace tenure::config
