// The web console's files as built into the controller (api/ui_assets.h):
// the bytes are ui/'s, and GET /ui/{file} answers with the right type,
// security headers and cache validation.
#include <gtest/gtest.h>

#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "api/ui_assets.h"

namespace tenure::api {
namespace {

std::string read_source(const std::string& name) {
  std::ifstream in(std::string(TENURE_UI_DIR) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string header_of(const net::HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

net::HttpRequest get(const std::string& if_none_match = "") {
  net::HttpRequest req;
  req.method = "GET";
  if (!if_none_match.empty()) req.headers.emplace("if-none-match", if_none_match);
  return req;
}

TEST(UiAssetsTest, EmbedsEveryFileOfUiByteForByte) {
  std::set<std::string> names, etags;
  for (const auto& a : ui_assets()) {
    names.insert(std::string(a.name));
    etags.insert(std::string(a.etag));
    EXPECT_EQ(std::string(a.body), read_source(std::string(a.name))) << a.name;
    EXPECT_EQ(a.etag.size(), 18u) << a.etag;  // 16 hex digits, quoted
  }
  EXPECT_EQ(names, (std::set<std::string>{"index.html", "console.css", "console.js"}));
  EXPECT_EQ(etags.size(), names.size());
}

TEST(UiAssetsTest, ServesEachFileWithItsTypeAndAStrictPolicy) {
  const std::pair<const char*, const char*> types[] = {{"index.html", "text/html; charset=utf-8"},
                                                       {"console.css", "text/css; charset=utf-8"},
                                                       {"console.js", "text/javascript; charset=utf-8"}};
  for (const auto& [name, type] : types) {
    auto r = ui_response(name, get());
    EXPECT_EQ(r.status, 200) << name;
    EXPECT_EQ(r.content_type, type);
    EXPECT_EQ(r.body, read_source(name));
    std::string csp = header_of(r, "Content-Security-Policy");
    EXPECT_NE(csp.find("default-src 'none'"), std::string::npos) << csp;
    EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << csp;
    EXPECT_EQ(csp.find("unsafe"), std::string::npos) << csp;
    EXPECT_EQ(header_of(r, "X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(header_of(r, "Cache-Control"), "no-cache");
    EXPECT_FALSE(header_of(r, "ETag").empty());
  }
}

TEST(UiAssetsTest, AnswersNotModifiedOnlyForThisBuildsETag) {
  std::string etag = header_of(ui_response("console.js", get()), "ETag");
  for (const std::string& inm : {etag, "W/" + etag, "\"other\", " + etag, std::string("*")}) {
    auto r = ui_response("console.js", get(inm));
    EXPECT_EQ(r.status, 304) << inm;
    EXPECT_TRUE(r.body.empty());
    EXPECT_EQ(header_of(r, "ETag"), etag);
  }
  for (const std::string& inm : {std::string("\"other\""), etag.substr(1), header_of(ui_response("index.html", get()), "ETag")}) {
    EXPECT_EQ(ui_response("console.js", get(inm)).status, 200) << inm;
  }
}

// Data from the cluster goes into the page as text only (docs/console.md):
// the script has no way to turn a string into markup.
TEST(UiAssetsTest, ScriptNeverParsesStringsAsMarkup) {
  std::string js = read_source("console.js");
  ASSERT_FALSE(js.empty());
  for (const char* sink : {"innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                           "new Function", "DOMParser", "createContextualFragment"}) {
    EXPECT_EQ(js.find(sink), std::string::npos) << sink;
  }
  // And the page has no inline script or style for the CSP to forbid.
  std::string html = read_source("index.html");
  EXPECT_EQ(html.find("<script>"), std::string::npos);
  EXPECT_EQ(html.find("style="), std::string::npos);
  // No event-handler attribute (onclick= and the like): " on" + letters + "=".
  for (size_t at = html.find(" on"); at != std::string::npos; at = html.find(" on", at + 1)) {
    size_t end = at + 3;
    while (end < html.size() && std::isalpha(static_cast<unsigned char>(html[end]))) ++end;
    EXPECT_FALSE(end > at + 3 && end < html.size() && html[end] == '=') << html.substr(at, end - at + 1);
  }
}

TEST(UiAssetsTest, AnythingElseIsNotFound) {
  for (const char* name : {"", "nothing.js", "../index.html", "index.html.bak", "INDEX.HTML"}) {
    auto r = ui_response(name, get());
    EXPECT_EQ(r.status, 404) << name;
    EXPECT_NE(r.body.find("not_found"), std::string::npos);
  }
}

}  // namespace
}  // namespace tenure::api
