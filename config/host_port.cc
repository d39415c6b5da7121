#include "config/host_port.h"

#include <cctype>

namespace tenure::config {

namespace {

ConfigError bad(std::string what) { return ConfigError{ConfigErrorCode::kInvalidValue, std::move(what)}; }

bool valid_host_char(char c, bool bracketed) {
  if (std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_') return true;
  // An IPv6 literal (with an optional zone after '%') only inside brackets.
  return bracketed && (c == ':' || c == '%');
}

}  // namespace

std::string HostPort::str() const {
  std::string h = host.find(':') == std::string::npos ? host : "[" + host + "]";
  return h + ":" + std::to_string(port);
}

ConfigResult<HostPort> parse_host_port(std::string_view text) {
  const std::string expected = "expected host:port";
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad(expected + ", no port");
  std::string_view host = text.substr(0, colon);
  std::string_view port = text.substr(colon + 1);
  bool bracketed = false;
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
    bracketed = true;
  }
  if (host.empty()) return bad(expected + ", empty host");
  for (char c : host) {
    if (!valid_host_char(c, bracketed)) {
      return bad(expected + ", bad character in host" + (bracketed ? "" : " (IPv6 hosts need brackets)"));
    }
  }
  if (port.empty() || port.size() > 5) return bad(expected + ", port must be 1..65535");
  uint32_t p = 0;
  for (char c : port) {
    if (c < '0' || c > '9') return bad(expected + ", port must be 1..65535");
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (p == 0 || p > 65535) return bad(expected + ", port must be 1..65535");
  return HostPort{std::string(host), static_cast<uint16_t>(p)};
}

}  // namespace tenure::config
