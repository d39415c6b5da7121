#include "api/access.h"

namespace tenure::api {

namespace {

constexpr std::string_view kScheme = "tenure://";

Denial unauthorized(std::string reason, std::string message) {
  return Denial{401, "unauthorized", std::move(reason), std::move(message)};
}

Denial forbidden(std::string reason, std::string message) {
  return Denial{403, "forbidden", std::move(reason), std::move(message)};
}

std::string_view kind_name(CertKind kind) {
  switch (kind) {
    case CertKind::kController: return "controller";
    case CertKind::kWorker: return "worker";
    case CertKind::kAdmin: return "admin";
    case CertKind::kName: return "name";
    case CertKind::kNone: break;
  }
  return "";
}

bool valid_name(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string_view to_string(Role role) {
  switch (role) {
    case Role::kAdmin: return "admin";
    case Role::kAgent: return "agent";
    case Role::kPeer: return "peer";
    case Role::kReader: return "reader";
    case Role::kNone: break;
  }
  return "none";
}

TokenSet::TokenSet(std::string_view admin, std::string_view agent, std::string_view peer, std::string_view read) {
  if (!admin.empty()) admin_ = net::SecretDigest(admin);
  if (!agent.empty()) agent_ = net::SecretDigest(agent);
  if (!peer.empty()) peer_ = net::SecretDigest(peer);
  if (!read.empty()) read_ = net::SecretDigest(read);
}

Role TokenSet::role_of(std::string_view presented) const {
  const net::Sha256 d = net::sha256(presented);
  // No early exit: all four comparisons run whatever the outcome.
  bool admin = admin_.matches(d), agent = agent_.matches(d), peer = peer_.matches(d), read = read_.matches(d);
  if (admin) return Role::kAdmin;
  if (agent) return Role::kAgent;
  if (peer) return Role::kPeer;
  if (read) return Role::kReader;
  return Role::kNone;
}

std::string CertIdentity::str() const {
  if (kind == CertKind::kNone) return "";
  return std::string(kind_name(kind)) + "/" + name;
}

CertIdentity CertIdentity::parse(std::string_view text) {
  size_t slash = text.find('/');
  if (slash == std::string_view::npos) return {};
  std::string_view kind = text.substr(0, slash), name = text.substr(slash + 1);
  if (!valid_name(name)) return {};
  for (CertKind k : {CertKind::kController, CertKind::kWorker, CertKind::kAdmin, CertKind::kName}) {
    if (kind == kind_name(k)) return CertIdentity{k, std::string(name)};
  }
  return {};
}

CertIdentity cert_identity(const net::ClientCertificate* cert) {
  if (cert == nullptr) return {};
  for (const auto& uri : cert->uris) {
    if (uri.size() <= kScheme.size() || uri.compare(0, kScheme.size(), kScheme) != 0) continue;
    CertIdentity id = CertIdentity::parse(std::string_view(uri).substr(kScheme.size()));
    if (id.kind != CertKind::kNone && id.kind != CertKind::kName) return id;
  }
  if (valid_name(cert->common_name)) return CertIdentity{CertKind::kName, cert->common_name};
  return {};
}

std::optional<Denial> check_token(Access access, const TokenSet& tokens, std::optional<std::string_view> bearer,
                                  Role& role) {
  role = Role::kNone;
  if (access == Access::kPublic || !tokens.enabled()) return std::nullopt;
  if (access == Access::kOpen && !tokens.reads_closed()) return std::nullopt;
  if (!bearer) return unauthorized("missing_token", "this call needs Authorization: Bearer <token>");
  role = tokens.role_of(*bearer);
  if (role == Role::kNone) return unauthorized("unknown_token", "the bearer token is not valid");
  bool ok = false;
  switch (access) {
    case Access::kOpen: ok = true; break;
    case Access::kAdmin: ok = role == Role::kAdmin; break;
    case Access::kAgent: ok = role == Role::kAdmin || role == Role::kAgent; break;
    case Access::kPeer: ok = role == Role::kPeer; break;
    case Access::kPublic: ok = true; break;
  }
  if (ok) return std::nullopt;
  static constexpr const char* kNeeds[] = {"", "", "the admin token", "the agent or admin token", "the peer token"};
  return forbidden("wrong_role", "a " + std::string(to_string(role)) + " token may not make this call; it needs " +
                                     kNeeds[static_cast<int>(access)]);
}

std::optional<Denial> check_certificate(Access access, const CertIdentity& who, std::string_view worker) {
  if (access == Access::kPublic || access == Access::kOpen) return std::nullopt;
  const std::string shown = who.kind == CertKind::kNone ? "no identity" : "\"" + who.str() + "\"";
  switch (access) {
    case Access::kPeer:
      if (who.kind == CertKind::kController || who.kind == CertKind::kName) return std::nullopt;
      return forbidden("certificate", "peer calls need a controller's certificate; this one names " + shown);
    case Access::kAgent:
      if (who.kind == CertKind::kAdmin) return std::nullopt;
      if ((who.kind == CertKind::kWorker || who.kind == CertKind::kName) && who.name == worker) return std::nullopt;
      return forbidden("certificate", "a call for worker \"" + std::string(worker) +
                                          "\" needs that worker's certificate; this one names " + shown);
    case Access::kAdmin:
      if (who.kind == CertKind::kAdmin || who.kind == CertKind::kName) return std::nullopt;
      return forbidden("certificate", "operator calls need an admin certificate; this one names " + shown);
    case Access::kPublic:
    case Access::kOpen: break;
  }
  return std::nullopt;
}

}  // namespace tenure::api
