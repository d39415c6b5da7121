#pragma once
// Plain value types shared by the HTTP server and client. No Boost here: this
// header is included by every handler in the program (DESIGN.md, house
// style 12), so it stays cheap to compile.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/result.h"

namespace tenure::net {

/// Header fields by lower-case name. A name received twice is joined with
/// ", " (RFC 9110 §5.3), so lookups see every value.
using HeaderMap = std::map<std::string, std::string>;

/// What a client's TLS certificate names, once the handshake verified it
/// against the listener's CA (mutual TLS). The API decides what it allows.
struct ClientCertificate {
  std::string common_name;        ///< the subject's CN (UTF-8), empty if none
  std::vector<std::string> uris;  ///< the subjectAltName URIs, in order
};

/// One parsed request, as handed to a Handler. Owns all its data.
struct HttpRequest {
  std::string method;  ///< "GET", "POST", ... as sent (upper case by convention)
  std::string target;  ///< the raw request-target, e.g. "/v1/shards?worker=w1"
  std::string path;    ///< target before '?', percent-decoded ('+' kept)
  /// The same, not decoded: routers split it at '/' and decode each
  /// segment, so an id holding "%2F" stays one segment.
  std::string raw_path;
  std::map<std::string, std::string> query;  ///< decoded; the last of repeated keys wins
  HeaderMap headers;   ///< lower-case names
  std::string body;    ///< at most ServerOptions::max_body_bytes
  std::string remote;  ///< peer "ip:port"
  bool tls = false;    ///< arrived over TLS
  /// The verified client certificate of the connection; null without one
  /// (plain HTTP, or a TLS listener that does not ask for certificates).
  std::shared_ptr<const ClientCertificate> client_cert;

  /// The header's value, or `fallback` when absent. `name` must be lower case.
  std::string header(std::string_view name, std::string_view fallback = {}) const;
  /// The query parameter's value, if present.
  std::optional<std::string> query_param(std::string_view name) const;
};

/// A complete response. The server adds Content-Length and Connection.
struct HttpResponse {
  int status = 200;
  std::string content_type = "application/json";  ///< omitted when empty
  std::string body;
  /// Extra header fields, in order (e.g. {"Retry-After", "1"}). Fields whose
  /// name or value contain CR or LF are dropped (header injection).
  std::vector<std::pair<std::string, std::string>> headers;
};

// The error answers of every Tenure server (controller and agent): one
// shape, {"error": CODE, "message": TEXT, ...} (CONTRACT.md), and one text
// for each common refusal, so a client sees the same words from both.

/// A response with the contract's error body {"error": code, "message": text}.
HttpResponse json_error(int status, std::string_view code, std::string_view message);

/// The same with more fields beside the two (e.g. {"current_epoch": 7}).
/// `extra` must be a JSON object; an "error" or "message" in it is replaced.
HttpResponse json_error(int status, std::string_view code, std::string_view message,
                        const nlohmann::json& extra);

/// 400 bad_request naming what was wrong with one field of a request (a
/// body key, a query parameter or a header): {"error": "bad_request",
/// "message": "field \"F\": problem", "field": "F"}.
HttpResponse bad_field(std::string_view field, std::string_view problem);

/// 400 bad_request: the body is not JSON at all.
HttpResponse malformed_json_body();
/// 400 bad_request: the body is JSON but not an object.
HttpResponse non_object_body();

/// 404 not_found: no route has this path ("no such path: P").
HttpResponse no_such_path(std::string_view path);
/// 405 method_not_allowed: the path exists for other methods, listed in
/// `allow` ("GET, PUT"), which also becomes the Allow field (RFC 9110 §15.5.6).
HttpResponse method_not_allowed(std::string_view method, std::string_view path, std::string_view allow);

/// A JSON response with the given status: `body` as json_text() plus a
/// final newline (curl and shells print it on a line of its own).
HttpResponse json_response(int status, const nlohmann::json& body);

/// Whether `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no
/// surrogates, nothing above U+10FFFF). Text that reaches a JSON encoder or a
/// log must pass this first; the server checks paths, queries and headers.
bool valid_utf8(std::string_view s);

/// `j` as compact JSON text (or indented with `indent` >= 0) that never
/// throws: a string holding invalid UTF-8 is written with U+FFFD in place of
/// the bad bytes. Every JSON dump that may see bytes from outside goes here.
std::string json_text(const nlohmann::json& j, int indent = -1);

/// The standard reason phrase of `status` ("Not Found"), "Unknown" otherwise.
std::string_view reason_phrase(int status);

/// Decodes %XX escapes; with `plus_as_space`, '+' becomes ' ' (query strings).
/// Malformed escapes are kept as they are.
std::string percent_decode(std::string_view in, bool plus_as_space);

/// Parses "a=1&b=x%20y" into decoded pairs; the last of repeated keys wins.
std::map<std::string, std::string> parse_query(std::string_view query);

/// Encodes everything but RFC 3986 unreserved characters, for query values.
std::string percent_encode(std::string_view in);

enum class AddressErrc { invalid };

/// A "host:port" split in two; IPv6 hosts are written "[::1]:7001".
struct HostPort {
  std::string host;  ///< without brackets
  uint16_t port = 0;
};

/// Parses "host:port", "[v6]:port"; the port must be 1..65535 (or 0 when
/// `allow_zero_port`, meaning "any free port" for listeners).
Result<HostPort, AddressErrc> parse_host_port(std::string_view text, bool allow_zero_port = false);

}  // namespace tenure::net
