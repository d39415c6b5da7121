// Fuzzes what a caller controls in authentication: the Authorization header
// (net::bearer_token), a client certificate's names (api::cert_identity)
// and the forwarded identity header (CertIdentity::parse), then the access
// rules on the result. Whatever the bytes: no crash, a parsed bearer token
// is a non-empty part of the header without surrounding spaces, an identity
// survives str()/parse(), and a refusal is 401 or 403.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "api/access.h"

namespace {
using namespace tenure;

void check_identity(const api::CertIdentity& id) {
  if (id.kind == api::CertKind::kNone) return;
  api::CertIdentity again = api::CertIdentity::parse(id.str());
  if (again.kind != id.kind || again.name != id.name) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  net::HttpRequest req;
  req.headers["authorization"] = text;
  auto token = net::bearer_token(req);
  if (token) {
    if (token->empty() || token->front() == ' ' || token->back() == ' ') std::abort();
    if (text.find(*token) == std::string::npos) std::abort();
  }
  check_identity(api::CertIdentity::parse(text));
  // The certificate: CN, then one SAN URI per line.
  net::ClientCertificate cert;
  size_t nl = text.find('\n');
  cert.common_name = text.substr(0, nl);
  while (nl != std::string::npos) {
    size_t next = text.find('\n', nl + 1);
    cert.uris.push_back(text.substr(nl + 1, next == std::string::npos ? std::string::npos : next - nl - 1));
    nl = next;
  }
  api::CertIdentity who = api::cert_identity(&cert);
  check_identity(who);
  static const api::TokenSet tokens("admin-token", "agent-token", "peer-token", "read-token");
  for (auto access : {api::Access::kPublic, api::Access::kOpen, api::Access::kAdmin, api::Access::kAgent,
                      api::Access::kPeer}) {
    api::Role role;
    auto denial = api::check_token(access, tokens, token, role);
    if (denial && denial->status != 401 && denial->status != 403) std::abort();
    auto bound = api::check_certificate(access, who, who.name);
    if (bound && bound->status != 403) std::abort();
  }
  return 0;
}
