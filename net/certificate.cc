#include "net/certificate.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <ctime>

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

namespace tenure::net {

std::optional<int64_t> certificate_not_after_s(const std::string& path) {
  BIO* bio = BIO_new_file(path.c_str(), "r");
  if (bio == nullptr) return std::nullopt;
  X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (cert == nullptr) return std::nullopt;
  std::tm tm{};
  bool ok = ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1;
  X509_free(cert);
  if (!ok) return std::nullopt;
  return static_cast<int64_t>(timegm(&tm));
}

void register_certificate_expiry(prometheus::Registry& registry, const std::string& cert_file,
                                 const std::string& ca_file) {
  auto& family = prometheus::BuildGauge()
                     .Name("tenure_tls_certificate_expiry_timestamp_seconds")
                     .Help("When a certificate this process uses expires (notAfter), by file and role (cert, ca)")
                     .Register(registry);
  for (const auto& [file, role] : {std::pair{cert_file, "cert"}, std::pair{ca_file, "ca"}}) {
    if (file.empty()) continue;
    if (auto at = certificate_not_after_s(file)) family.Add({{"file", file}, {"role", role}}).Set(static_cast<double>(*at));
  }
}

}  // namespace tenure::net
