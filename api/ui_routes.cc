// The web console (docs/console.md): GET /ui and /ui/{file} serve the files
// of ui/, built into the binary (api/ui_assets.h). Everything the console
// shows comes from the public REST API, read by the browser itself; nothing
// here touches replicated state.
#include <string>
#include <string_view>

#include "api/controller_api.h"
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

/// The file's answer: 200 with the bytes, or 304 when the browser's copy
/// (If-None-Match) is this build's. `no-cache` makes it ask every time, so a
/// controller upgraded in place never serves a stale script with a new page.
net::HttpResponse asset_response(const UiAsset& asset, const net::HttpRequest& req) {
  net::HttpResponse r;
  add_security_headers(r);
  r.headers.push_back({"Cache-Control", "no-cache"});
  r.headers.push_back({"ETag", std::string(asset.etag)});
  if (req.header("if-none-match") == asset.etag) {
    r.status = 304;
    r.content_type.clear();
    return r;
  }
  r.content_type = std::string(content_type_of(asset.name));
  r.body = std::string(asset.body);
  return r;
}

const UiAsset* find_asset(std::string_view name) {
  for (const auto& a : ui_assets()) {
    if (a.name == name) return &a;
  }
  return nullptr;
}

}  // namespace

void ControllerApi::add_ui_routes() {
  // "/ui" and "/ui/" are one route (empty path segments are skipped); the
  // page names its script and style by absolute path, so both work.
  router_.add({"GET", "/ui", Access::kOpen, false, [this](const CallPtr& call) {
                 const UiAsset* index = find_asset("index.html");
                 if (!index) return reply(call, net::json_error(404, "not_found", "the console is not built in"));
                 reply(call, asset_response(*index, call->req));
               }});
  router_.add({"GET", "/ui/{file}", Access::kOpen, false, [this](const CallPtr& call) {
                 const UiAsset* asset = find_asset(call->param("file"));
                 if (!asset) {
                   return reply(call, net::json_error(404, "not_found", "no console file " + call->param("file")));
                 }
                 reply(call, asset_response(*asset, call->req));
               }});
}

}  // namespace tenure::api
