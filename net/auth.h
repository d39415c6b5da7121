#pragma once
// Credentials at the HTTP edge: bearer tokens compared without leaking
// anything about them, and what a verified TLS client certificate names.
// Policy (which token or certificate may call what) lives with each API;
// this is only the mechanism, shared by the controller and the agent.

#include <array>
#include <optional>
#include <string>
#include <string_view>

#include "net/http_types.h"

namespace tenure::net {

using Sha256 = std::array<unsigned char, 32>;

/// SHA-256 of `data` (OpenSSL).
Sha256 sha256(std::string_view data);
/// Lower-case hex of the first `bytes` bytes of SHA-256(data).
std::string sha256_hex(std::string_view data, size_t bytes = 32);

/// A secret kept only as its SHA-256 digest. Comparing digests with
/// CRYPTO_memcmp takes the same time whatever the presented value is and
/// however much of it matches, and leaks neither length (unlike comparing
/// the strings, which stops at the first length difference).
class SecretDigest {
 public:
  SecretDigest() = default;  ///< not set: matches nothing
  explicit SecretDigest(std::string_view secret);
  bool set() const { return set_; }
  /// Whether SHA-256(presented) equals the secret's digest; false when not set.
  bool matches(const Sha256& presented_digest) const;

 private:
  Sha256 digest_{};
  bool set_ = false;
};

/// The credentials of `Authorization: Bearer <token>`: the scheme matched
/// case-insensitively (RFC 9110 §11.1), then one or more spaces. nullopt
/// when the header is absent, of another scheme, or has no token.
std::optional<std::string_view> bearer_token(const HttpRequest& req);

}  // namespace tenure::net
