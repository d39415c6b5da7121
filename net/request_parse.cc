#include "net/detail/request_parse.h"

#include "net/detail/ascii.h"

namespace tenure::net::detail {

namespace http = boost::beast::http;

void limit_parser(RequestParser& parser, const ServerOptions& opts) {
  parser.header_limit(static_cast<std::uint32_t>(opts.max_header_bytes));
  parser.body_limit(opts.max_body_bytes);
}

std::optional<size_t> body_limit_for(const ServerOptions& opts, std::string_view buffered) {
  size_t eol = buffered.find('\n');
  if (eol == std::string_view::npos) return std::nullopt;
  std::string_view line = buffered.substr(0, eol);
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return opts.max_body_bytes;
  std::string_view target = line.substr(sp + 1);
  target = target.substr(0, target.find(' '));
  for (const auto& l : opts.body_limits) {
    if (target.substr(0, l.path_prefix.size()) == l.path_prefix) return l.max_bytes;
  }
  return opts.max_body_bytes;
}

HttpRequest to_request(RequestMessage&& msg, const std::string& remote, bool tls,
                       const std::shared_ptr<const ClientCertificate>& cert) {
  HttpRequest req;
  req.method = std::string(msg.method_string());
  req.target = std::string(msg.target());
  std::string_view target = req.target;
  // absolute-form ("http://host/path", RFC 9112 §3.2.2): route on the path.
  if (target.starts_with("http://") || target.starts_with("https://")) {
    size_t slash = target.find('/', target.find("//") + 2);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  size_t q = target.find('?');
  req.raw_path = std::string(target.substr(0, q));
  req.path = percent_decode(req.raw_path, false);
  if (q != std::string_view::npos) req.query = parse_query(target.substr(q + 1));
  for (const auto& field : msg) {
    std::string name = ascii_lower(field.name_string());
    auto [it, inserted] = req.headers.try_emplace(std::move(name), field.value());
    if (!inserted) {
      it->second += ", ";
      it->second += field.value();
    }
  }
  req.body = std::move(msg.body());
  req.remote = remote;
  req.tls = tls;
  req.client_cert = cert;
  return req;
}

std::string non_utf8_part(const HttpRequest& req) {
  if (!valid_utf8(req.path)) return "the path";
  for (const auto& [key, value] : req.query) {
    if (!valid_utf8(key) || !valid_utf8(value)) return "the query";
  }
  for (const auto& [name, value] : req.headers) {
    if (!valid_utf8(value)) return "header " + name;
  }
  return {};
}

std::string raw_error(int status, std::string_view code, std::string_view message) {
  HttpResponse r = json_error(status, code, message);
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) +
                    "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(r.body.size()) +
                    "\r\nConnection: close\r\n\r\n";
  return out + r.body;
}

Refusal refusal(const boost::system::error_code& ec, size_t body_limit, size_t max_header_bytes) {
  if (ec == http::error::body_limit) {
    return {raw_error(413, "too_large", "request body exceeds " + std::to_string(body_limit) + " bytes"), true};
  }
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    return {raw_error(431, "header_too_large", "request header exceeds " + std::to_string(max_header_bytes) + " bytes"),
            true};
  }
  return {raw_error(400, "bad_request", "malformed HTTP request: " + ec.message()), false};
}

}  // namespace tenure::net::detail
