#pragma once
// The web console's files (ui/), built into the controller by
// cmake/embed_assets.cmake (the generated ui_assets.cc in the build tree).

#include <string_view>
#include <vector>

namespace tenure::api {

struct UiAsset {
  std::string_view name;  ///< the file's name in ui/, e.g. "console.js"
  std::string_view etag;  ///< a strong ETag, quoted: a digest of the bytes
  std::string_view body;
};

/// Every console file, in the order CMake listed them.
const std::vector<UiAsset>& ui_assets();

}  // namespace tenure::api
