#pragma once
// Strict decoding of JSON request bodies: malformed JSON, a non-object, an
// unknown field or a field of the wrong type is a 400 whose message names
// the problem. nlohmann's exceptions stop here (DESIGN.md, house style 4).

#include <optional>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "net/http_types.h"

namespace tenure::api {

/// A decoded body, or the 400 response to send instead.
struct JsonBody {
  nlohmann::json value;
  std::optional<net::HttpResponse> error;
};

/// Parses `body` as a JSON object whose keys are all in `allowed`.
/// An empty body counts as {} when `empty_ok`.
JsonBody parse_object(const std::string& body, const std::set<std::string>& allowed, bool empty_ok = false);

// The shared answers of net/http_types.h, used unqualified by the routes.
using net::bad_field;
using net::json_response;

}  // namespace tenure::api
