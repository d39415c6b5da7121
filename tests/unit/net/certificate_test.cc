// Certificate expiry as the TenureCertificateExpiry alert reads it: the
// notAfter of certificates made by the openssl CLI (valid for 2 days).
#include "net/certificate.h"

#include <gtest/gtest.h>
#include <prometheus/registry.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "tests/unit/net/net_test_util.h"

namespace tenure::net {
namespace {

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TEST(CertificateTest, NotAfterOfMadeCertificatesIsTwoDaysAhead) {
  auto certs = testing::make_test_certs();
  ASSERT_FALSE(certs.dir.empty()) << "openssl could not make test certificates";
  for (const auto& file : {certs.ca_cert, certs.server_cert, certs.client_cert}) {
    auto at = certificate_not_after_s(file);
    ASSERT_TRUE(at.has_value()) << file;
    EXPECT_GT(*at, now_s() + 2 * 86400 - 600) << file;
    EXPECT_LE(*at, now_s() + 2 * 86400 + 60) << file;
  }
  EXPECT_FALSE(certificate_not_after_s(certs.dir + "/missing.pem").has_value());
  EXPECT_FALSE(certificate_not_after_s(certs.server_key).has_value());  // a key, no certificate

  prometheus::Registry registry;
  register_certificate_expiry(registry, certs.server_cert, certs.ca_cert);
  auto families = registry.Collect();
  ASSERT_EQ(families.size(), 1u);
  EXPECT_EQ(families[0].name, "tenure_tls_certificate_expiry_timestamp_seconds");
  ASSERT_EQ(families[0].metric.size(), 2u);
  for (const auto& m : families[0].metric) {
    EXPECT_EQ(static_cast<int64_t>(m.gauge.value), *certificate_not_after_s(m.label[0].value));
  }
  std::filesystem::remove_all(certs.dir);
}

TEST(CertificateTest, NothingRegisteredWithoutTls) {
  prometheus::Registry registry;
  register_certificate_expiry(registry, "", "");
  size_t series = 0;
  for (const auto& f : registry.Collect()) series += f.metric.size();  // empty families are left out
  EXPECT_EQ(series, 0u);
}

}  // namespace
}  // namespace tenure::net
