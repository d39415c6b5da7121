#pragma once
// Internal to net/: OpenSSL contexts for the server and the client.

#include <memory>
#include <string>

#include <boost/asio/ssl/context.hpp>

#include "common/result.h"
#include "net/http_types.h"

struct ssl_st;
struct x509_st;

namespace tenure::net::detail {

enum class TlsErrc { bad_files };

/// A TLS 1.2+ server context from PEM files; with `ca_file`, clients must
/// present a certificate signed by it.
Result<std::shared_ptr<boost::asio::ssl::context>, TlsErrc> make_server_tls(
    const std::string& cert_file, const std::string& key_file, const std::string& ca_file);

/// A TLS 1.2+ client context that verifies the server against `ca_file`
/// (the system store when empty) and presents cert/key when given. With
/// `server_kind`, see ClientOptions::tls_server_kind (kept in the context).
Result<std::shared_ptr<boost::asio::ssl::context>, TlsErrc> make_client_tls(
    const std::string& ca_file, const std::string& cert_file, const std::string& key_file,
    const std::string& server_kind = "");

/// Before a client handshake: names the server `ssl` dials (host:port) and,
/// if its context keeps sessions (every make_client_tls context does),
/// offers the newest session that server issued, so the handshake resumes
/// it (no certificates sent or checked, no signature) when the server still
/// can. Sessions the server issues on this connection are kept for the next.
/// `server` is the caller's and must outlive every operation on `ssl`.
void offer_session(ssl_st* ssl, const std::string* server);

/// After a failed client handshake: the server's session is not offered again.
void forget_session(ssl_st* ssl);

/// The server kind `ssl`'s context requires ("" when none).
std::string required_server_kind(ssl_st* ssl);

/// Whether `cert` names `kind` in a tenure://<kind>/ URI, or names no
/// tenure:// identity at all.
bool certificate_allows_kind(x509_st* cert, const std::string& kind);

/// What the peer certificate of a finished handshake names; null when the
/// peer sent none or it did not verify.
std::shared_ptr<const ClientCertificate> verified_peer_certificate(ssl_st* ssl);

}  // namespace tenure::net::detail
