#pragma once
// A host and TCP port as written in configs and flags: "127.0.0.1:7001",
// "ctl-1.example:7001" or "[::1]:7001".

#include <cstdint>
#include <string>
#include <string_view>

#include "config/config_error.h"

namespace tenure::config {

/// A parsed "host:port". `host` holds no brackets; port is 1..65535.
struct HostPort {
  std::string host;
  uint16_t port = 0;

  /// "host:port", with brackets around an IPv6 host ("[::1]:7001").
  std::string str() const;
  bool operator==(const HostPort&) const = default;
};

/// Parses "host:port" (IPv6 hosts in brackets). On failure the error's
/// message says what is wrong without a key path (e.g. `port 0 out of
/// range 1..65535`); callers prefix it with the key. Code: kInvalidValue.
ConfigResult<HostPort> parse_host_port(std::string_view text);

}  // namespace tenure::config
