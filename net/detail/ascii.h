#pragma once
// Internal to net/: header field names are case-insensitive (RFC 9110 §5.1)
// and HeaderMap keys are stored lower case. Comparisons use Beast's
// boost::beast::iequals (<boost/beast/core/string.hpp>, declarations only,
// compiled once in asio_impl.cc); Beast has no lower-casing, so this is the
// one copy of it.

#include <string>
#include <string_view>

namespace tenure::net::detail {

/// `s` with A-Z mapped to a-z and every other byte unchanged (field names
/// are ASCII tokens; a locale must never change how they compare).
inline std::string ascii_lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace tenure::net::detail
