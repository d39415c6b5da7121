#pragma once
// The web console's files (ui/), built into the controller by
// cmake/embed_assets.cmake (the generated ui_assets.cc in the build tree).

#include <string_view>
#include <vector>

#include "net/http_types.h"

namespace tenure::api {

struct UiAsset {
  std::string_view name;  ///< the file's name in ui/, e.g. "console.js"
  std::string_view etag;  ///< a strong ETag, quoted: a digest of the bytes
  std::string_view body;
};

/// Every console file, in the order CMake listed them.
const std::vector<UiAsset>& ui_assets();

/// The answer to GET /ui/{name} ("index.html" for /ui): the file with its
/// Content-Type, a strict Content-Security-Policy, Cache-Control: no-cache
/// and its ETag, or 304 when If-None-Match names that ETag; 404 JSON for a
/// name that is not a console file.
net::HttpResponse ui_response(std::string_view name, const net::HttpRequest& req);

}  // namespace tenure::api
