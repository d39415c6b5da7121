#include "api/json_body.h"

namespace tenure::api {

net::HttpResponse bad_field(const std::string& field, const std::string& problem) {
  net::HttpResponse r = net::json_error(400, "bad_request", "field \"" + field + "\": " + problem);
  return r;
}

net::HttpResponse json_response(int status, const nlohmann::json& body) {
  net::HttpResponse r;
  r.status = status;
  r.body = net::json_text(body);
  r.body.push_back('\n');
  return r;
}

JsonBody parse_object(const std::string& body, const std::set<std::string>& allowed, bool empty_ok) {
  JsonBody out;
  if (body.empty() && empty_ok) {
    out.value = nlohmann::json::object();
    return out;
  }
  out.value = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (out.value.is_discarded()) {
    out.error = net::json_error(400, "bad_request", "body is not valid JSON");
    return out;
  }
  if (!out.value.is_object()) {
    out.error = net::json_error(400, "bad_request", "body must be a JSON object");
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
