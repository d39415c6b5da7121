#include "api/json_body.h"

namespace tenure::api {

JsonBody parse_object(const std::string& body, const std::set<std::string>& allowed, bool empty_ok) {
  JsonBody out;
  if (body.empty() && empty_ok) {
    out.value = nlohmann::json::object();
    return out;
  }
  out.value = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (out.value.is_discarded()) {
    out.error = net::malformed_json_body();
    return out;
  }
  if (!out.value.is_object()) {
    out.error = net::non_object_body();
    return out;
  }
  for (const auto& [key, v] : out.value.items()) {
    if (!allowed.count(key)) {
      out.error = bad_field(key, "unknown field");
      return out;
    }
  }
  return out;
}

}  // namespace tenure::api
