#pragma once
// Internal to net/: how a server connection turns bytes into a request with
// Beast's parser, under the listener's limits. Kept apart from the
// connection's socket and timer code so that the http_router fuzz target
// (fuzz/) drives exactly these steps without a socket.

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include "net/http_server.h"

namespace tenure::net::detail {

using RequestMessage = boost::beast::http::request<boost::beast::http::string_body>;
using RequestParser = boost::beast::http::request_parser<boost::beast::http::string_body>;

/// Applies `opts`' header limit and default body limit to a new parser.
/// Not eager: put() stops after the header, so a body_limit error found
/// there is returned (Beast 1.74's eager mode can lose it).
void limit_parser(RequestParser& parser, const ServerOptions& opts);

/// The body limit of the request whose first buffered bytes are `buffered`:
/// nullopt until its request line is complete, then the first
/// ServerOptions::body_limits entry whose prefix its target has, else
/// max_body_bytes. Beast checks Content-Length against the limit as soon as
/// the header is parsed, so this must be applied before.
std::optional<size_t> body_limit_for(const ServerOptions& opts, std::string_view buffered);

/// The handler's view of a parsed request: path percent-decoded (an
/// absolute-form target routes on its path), query parsed, header names
/// lower-cased with repeated fields joined by ", ".
HttpRequest to_request(RequestMessage&& msg, const std::string& remote, bool tls,
                       const std::shared_ptr<const ClientCertificate>& cert);

/// What part of a parsed request is not UTF-8 ("" when all is): such text
/// would reach JSON encoders and logs, so it is refused at the edge, before
/// any handler runs (CONTRACT.md "Limits": refused requests change nothing).
std::string non_utf8_part(const HttpRequest& req);

/// A complete JSON error response that closes the connection.
std::string raw_error(int status, std::string_view code, std::string_view message);

/// The answer to a request the parser refused with `ec`: 413 past the body
/// limit, 431 past the header limit, 400 otherwise.
struct Refusal {
  std::string raw;
  bool too_large = false;  ///< 413 or 431 (ServerStats::too_large), else malformed
};
Refusal refusal(const boost::system::error_code& ec, size_t body_limit, size_t max_header_bytes);

}  // namespace tenure::net::detail
