#include "net/auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <boost/beast/core/string.hpp>

namespace tenure::net {

Sha256 sha256(std::string_view data) {
  Sha256 out{};
  unsigned int len = 0;
  // EVP_Digest with SHA-256 cannot fail on a valid pointer and length; the
  // all-zero digest on a failure would match no configured token's digest.
  EVP_Digest(data.data(), data.size(), out.data(), &len, EVP_sha256(), nullptr);
  return out;
}

std::string sha256_hex(std::string_view data, size_t bytes) {
  static const char* kHex = "0123456789abcdef";
  Sha256 d = sha256(data);
  std::string out;
  for (size_t i = 0; i < bytes && i < d.size(); ++i) {
    out.push_back(kHex[d[i] >> 4]);
    out.push_back(kHex[d[i] & 15]);
  }
  return out;
}

SecretDigest::SecretDigest(std::string_view secret) : digest_(sha256(secret)), set_(true) {}

bool SecretDigest::matches(const Sha256& presented_digest) const {
  bool equal = CRYPTO_memcmp(digest_.data(), presented_digest.data(), digest_.size()) == 0;
  return set_ && equal;
}

std::optional<std::string_view> bearer_token(const HttpRequest& req) {
  auto it = req.headers.find("authorization");
  if (it == req.headers.end()) return std::nullopt;
  std::string_view v = it->second;
  constexpr std::string_view kScheme = "bearer";
  // The scheme is case-insensitive (RFC 9110 §11.1).
  if (v.size() <= kScheme.size() || !boost::beast::iequals(v.substr(0, kScheme.size()), kScheme)) return std::nullopt;
  size_t i = kScheme.size();
  if (v[i] != ' ') return std::nullopt;
  while (i < v.size() && v[i] == ' ') ++i;
  std::string_view token = v.substr(i);
  while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
  if (token.empty()) return std::nullopt;
  return token;
}

}  // namespace tenure::net
