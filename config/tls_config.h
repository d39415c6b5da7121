#pragma once
// The `tls:` block shared by the controller and agent configs.

#include <string>

namespace tenure::config {

/// TLS files; all empty means plain HTTP. Every path set was a readable
/// file at load time; cert_file and key_file are both set or both empty.
struct TlsConfig {
  std::string cert_file;
  std::string key_file;
  /// Controller: the server requires client certificates signed by it.
  /// Agent: the CA its HTTPS connections to the controllers trust.
  std::string ca_file;
};

}  // namespace tenure::config
