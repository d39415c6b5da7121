// The web console (docs/console.md): GET /ui and /ui/{file} serve the files
// of ui/, built into the binary (api/ui_assets.h, answered by ui_files.cc).
// Everything the console shows comes from the public REST API, read by the
// browser itself; nothing here touches replicated state.
#include "api/controller_api.h"
#include "api/ui_assets.h"

namespace tenure::api {

void ControllerApi::add_ui_routes() {
  // "/ui" and "/ui/" are one route (empty path segments are skipped); the
  // page names its script and style by absolute path, so both work. Public
  // like /healthz: the files hold no data, and a browser cannot send a
  // bearer token when it navigates; the page's own reads carry the token
  // typed into it (closed by auth.read_token like any read).
  router_.add({"GET", "/ui", Access::kPublic, false,
               [this](const CallPtr& call) { reply(call, ui_response("index.html", call->req)); }});
  router_.add({"GET", "/ui/{file}", Access::kPublic, false,
               [this](const CallPtr& call) { reply(call, ui_response(call->param("file"), call->req)); }});
}

}  // namespace tenure::api
