#pragma once
// Who may call what on the controller (CONTRACT.md "Security",
// docs/security.md). Pure functions of the configured tokens, the presented
// bearer token and the client certificate's identity, so the whole policy is
// unit-tested without a server.

#include <optional>
#include <string>
#include <string_view>

#include "net/auth.h"

namespace tenure::api {

/// What a route needs when tokens are configured.
enum class Access {
  kPublic,  ///< /healthz, /readyz, /metrics: always open
  kOpen,    ///< a read: open unless auth.read_token is set, then any role's token
  kAdmin,   ///< the operator's mutating calls: the admin token
  kAgent,   ///< the agents' calls under /v1/workers/{id}/: the agent or admin token
  kPeer,    ///< Raft traffic: the peer token and nothing else
};

/// The role a presented token proves.
enum class Role { kNone, kAdmin, kAgent, kPeer, kReader };
std::string_view to_string(Role role);

/// The configured tokens, kept only as digests.
class TokenSet {
 public:
  TokenSet() = default;  ///< auth off
  TokenSet(std::string_view admin, std::string_view agent, std::string_view peer, std::string_view read);
  /// Whether tokens are required at all (config: all three or none).
  bool enabled() const { return admin_.set(); }
  bool reads_closed() const { return read_.set(); }
  /// The role `presented` proves, kNone when it matches no token. Every
  /// configured digest is compared, whatever matched, so the time taken
  /// tells nothing about which role (if any) it is.
  Role role_of(std::string_view presented) const;

 private:
  net::SecretDigest admin_, agent_, peer_, read_;
};

/// What a client certificate names (docs/security.md "Certificates"): the
/// first subjectAltName URI `tenure://<kind>/<name>` of a known kind, else
/// the subject CN (kind kName: any role, matched by name).
enum class CertKind { kNone, kController, kWorker, kAdmin, kName };
struct CertIdentity {
  CertKind kind = CertKind::kNone;
  std::string name;
  /// "controller/c1", "worker/w1", "admin/ops", "name/x"; "" for kNone.
  std::string str() const;
  /// The inverse of str(); kNone for anything else.
  static CertIdentity parse(std::string_view text);
};
CertIdentity cert_identity(const net::ClientCertificate* cert);

/// A refused call: its status, error code, metric reason and message. The
/// message never contains a token.
struct Denial {
  int status = 401;
  std::string code;    ///< "unauthorized" or "forbidden"
  std::string reason;  ///< metric label: missing_token, unknown_token, wrong_role, certificate
  std::string message;
};

/// The token rule. `bearer` is the presented token (nullopt: none). Sets
/// `role` to what the token proved (kNone when none or unchecked).
std::optional<Denial> check_token(Access access, const TokenSet& tokens, std::optional<std::string_view> bearer,
                                  Role& role);

/// The certificate rule under mutual TLS. `who` is the caller's identity;
/// `worker` is the {id} of an agent route (empty otherwise). A worker's
/// certificate acts only for that worker (as a kubelet only for its Node);
/// a controller's only on peer routes; peer routes only for controllers.
std::optional<Denial> check_certificate(Access access, const CertIdentity& who, std::string_view worker);

}  // namespace tenure::api
