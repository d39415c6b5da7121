#pragma once
// What an operator must know about the certificates a process serves with:
// when they expire (the TenureCertificateExpiry alert, dashboards/alerts.yml).

#include <cstdint>
#include <optional>
#include <string>

namespace prometheus {
class Registry;
}

namespace tenure::net {

/// The notAfter of the first certificate in PEM file `path`, in seconds
/// since the epoch; nullopt when the file holds no readable certificate.
std::optional<int64_t> certificate_not_after_s(const std::string& path);

/// Registers tenure_tls_certificate_expiry_timestamp_seconds{file, role}
/// for the certificate (role "cert") and the CA (role "ca") files given
/// (empty paths are skipped; unreadable ones too: the TLS setup already
/// refused them at start).
void register_certificate_expiry(prometheus::Registry& registry, const std::string& cert_file,
                                 const std::string& ca_file);

}  // namespace tenure::net
