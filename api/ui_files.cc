// The web console's files as HTTP answers (api/ui_assets.h): kept apart
// from the route registration (ui_routes.cc) so they can be tested without
// a controller.
#include <string>
#include <string_view>

#include "api/ui_assets.h"

namespace tenure::api {

namespace {

std::string_view content_type_of(std::string_view name) {
  auto ends_with = [&](std::string_view ext) {
    return name.size() >= ext.size() && name.substr(name.size() - ext.size()) == ext;
  };
  if (ends_with(".html")) return "text/html; charset=utf-8";
  if (ends_with(".css")) return "text/css; charset=utf-8";
  if (ends_with(".js")) return "text/javascript; charset=utf-8";
  return "application/octet-stream";
}

// The console runs only its own script and style, talks only to the
// controller that served it, and cannot be framed: an id that somehow
// carried markup could not load or send anything.
constexpr std::string_view kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

void add_security_headers(net::HttpResponse& r) {
  r.headers.push_back({"Content-Security-Policy", std::string(kContentSecurityPolicy)});
  r.headers.push_back({"X-Content-Type-Options", "nosniff"});
  r.headers.push_back({"X-Frame-Options", "DENY"});
  r.headers.push_back({"Referrer-Policy", "no-referrer"});
}

/// True when If-None-Match (`header`: "*" or a comma-separated list of
/// ETags, possibly weak) names `etag`.
bool etag_matches(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view item = header.substr(0, comma);
    header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (item.starts_with("W/")) item.remove_prefix(2);  // If-None-Match compares weakly (RFC 9110 13.1.2)
    if (item == "*" || item == etag) return true;
  }
  return false;
}

const UiAsset* find_asset(std::string_view name) {
  for (const auto& a : ui_assets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

}  // namespace

net::HttpResponse ui_response(std::string_view name, const net::HttpRequest& req) {
  const UiAsset* asset = find_asset(name);
  if (!asset) return net::json_error(404, "not_found", "no console file " + std::string(name));
  net::HttpResponse r;
  add_security_headers(r);
  // `no-cache` makes the browser ask every time (a 304 is cheap), so a
  // controller upgraded in place never serves a stale script with a new page.
  r.headers.push_back({"Cache-Control", "no-cache"});
  r.headers.push_back({"ETag", std::string(asset->etag)});
  if (etag_matches(req.header("if-none-match"), asset->etag)) {
    r.status = 304;
    r.content_type.clear();
    return r;
  }
  r.content_type = std::string(content_type_of(asset->name));
  r.body = std::string(asset->body);
  return r;
}

}  // namespace tenure::api
