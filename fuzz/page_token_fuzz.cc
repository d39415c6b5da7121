// Fuzzes the paged lists' `continue` token and `limit` (api/list_pages.cc):
// both come straight from a client's query string. Whatever the bytes,
// decoding must return nullopt or a token, a decoded token must be the
// canonical encoding of itself (one token, one spelling), and
// parse_page_query must answer a 400 or a query without throwing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "api/list_pages.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tenure::api;
  std::string text(reinterpret_cast<const char*>(data), size);
  auto token = decode_token(text);
  if (token && encode_token(*token) != text) std::abort();
  for (const char* key : {"continue", "limit"}) {
    tenure::net::HttpRequest req;
    req.query[key] = text;
    PageQuery q;
    auto err = parse_page_query(req, token ? token->list : "shards", token ? token->filter : "", q,
                                token ? token->prefix : "");
    if (err && err->status != 400) std::abort();
    if (!err && (q.limit < 1 || q.limit > kMaxPageLimit)) std::abort();
    if (!err && std::string(key) == "continue" && (!token || !q.after || *q.after != token->after)) std::abort();
  }
  return 0;
}
