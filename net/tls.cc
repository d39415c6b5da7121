#include "net/detail/tls.h"

#include <openssl/ssl.h>

#include <map>
#include <mutex>
#include <set>
#include <openssl/x509v3.h>

#include <boost/system/system_error.hpp>

namespace tenure::net::detail {

namespace ssl = boost::asio::ssl;

namespace {

void configure_base(ssl::context& ctx) {
  ctx.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                  ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
}

std::shared_ptr<ssl::context> base_context(ssl::context::method method) {
  auto ctx = std::make_shared<ssl::context>(method);
  configure_base(*ctx);
  return ctx;
}

Error<TlsErrc> fail(const std::string& what, const boost::system::system_error& e) {
  return Error<TlsErrc>{TlsErrc::bad_files, what + ": " + e.code().message()};
}

std::string asn1_utf8(const ASN1_STRING* s) {
  unsigned char* out = nullptr;
  int n = ASN1_STRING_to_UTF8(&out, s);
  if (n < 0) return {};
  std::string text(reinterpret_cast<const char*>(out), static_cast<size_t>(n));
  OPENSSL_free(out);
  return text;
}

}  // namespace

std::shared_ptr<const ClientCertificate> verified_peer_certificate(ssl_st* ssl) {
  if (ssl == nullptr || SSL_get_verify_result(ssl) != X509_V_OK) return nullptr;
  X509* cert = SSL_get1_peer_certificate(ssl);
  if (cert == nullptr) return nullptr;
  // A resumed session carries the certificate verified when it began, up
  // to the ticket's lifetime ago: one that has expired since names nobody.
  if (X509_cmp_current_time(X509_get0_notAfter(cert)) <= 0) {
    X509_free(cert);
    return nullptr;
  }
  auto out = std::make_shared<ClientCertificate>();
  if (X509_NAME* subject = X509_get_subject_name(cert)) {
    int at = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (at >= 0) out->common_name = asn1_utf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, at)));
  }
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names != nullptr) {
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
      const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
      if (name->type == GEN_URI) out->uris.push_back(asn1_utf8(name->d.uniformResourceIdentifier));
    }
    GENERAL_NAMES_free(names);
  }
  X509_free(cert);
  return out;
}

Result<std::shared_ptr<ssl::context>, TlsErrc> make_server_tls(const std::string& cert_file,
                                                              const std::string& key_file,
                                                              const std::string& ca_file) {
  auto ctx = base_context(ssl::context::tls_server);
  try {
    ctx->use_certificate_chain_file(cert_file);
  } catch (const boost::system::system_error& e) {
    return fail("cannot load TLS certificate " + cert_file, e);
  }
  try {
    ctx->use_private_key_file(key_file, ssl::context::pem);
  } catch (const boost::system::system_error& e) {
    return fail("cannot load TLS key " + key_file, e);
  }
  if (!ca_file.empty()) {
    try {
      ctx->load_verify_file(ca_file);
    } catch (const boost::system::system_error& e) {
      return fail("cannot load TLS CA " + ca_file, e);
    }
    ctx->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
    // A client that resumes a session (a TLS 1.3 ticket: a fraction of a
    // full handshake's CPU) is let in only with a session id context when
    // client certificates are verified; without one OpenSSL ends its
    // handshake with a fatal internal_error alert.
    static const unsigned char kSessionContext[] = "tenure";
    SSL_CTX_set_session_id_context(ctx->native_handle(), kSessionContext, sizeof kSessionContext - 1);
  }
  // One ticket per handshake, not OpenSSL's two: a client resumes with the
  // newest it has (Tenure's keep one per server), and each costs a session
  // encoded, encrypted and sent.
  SSL_CTX_set_num_tickets(ctx->native_handle(), 1);
  return ctx;
}

namespace {
// The required server kind lives in the SSL_CTX (ex_data) so that every
// connection made from the context checks it, with no plumbing per dial.
int server_kind_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}
// The contexts' kinds; a context points at one of these, which live forever.
const std::string* intern_kind(const std::string& kind) {
  static const std::string kController = "controller";
  if (kind == kController) return &kController;
  static std::mutex mu;
  static std::set<std::string> others;
  std::lock_guard lock(mu);
  return &*others.insert(kind).first;
}

// The sessions a client context's connections may resume: the newest each
// server (host:port) issued. A TLS 1.3 server sends its tickets after the
// handshake, so they arrive through the new-session callback while the
// first answer is read. Bounded: a client talks to a few servers.
class ClientSessions {
 public:
  ClientSessions() = default;
  ClientSessions(const ClientSessions&) = delete;
  ClientSessions& operator=(const ClientSessions&) = delete;
  ~ClientSessions() {
    for (auto& entry : by_server_) SSL_SESSION_free(entry.second);
  }
  /// Takes `session` over, in place of the server's previous one.
  void keep(const std::string& server, SSL_SESSION* session) {
    std::lock_guard lock(mu_);
    auto it = by_server_.find(server);
    if (it != by_server_.end()) {
      SSL_SESSION_free(it->second);
      it->second = session;
      return;
    }
    if (by_server_.size() >= kMaxServers) {
      SSL_SESSION_free(by_server_.begin()->second);
      by_server_.erase(by_server_.begin());
    }
    by_server_.emplace(server, session);
  }
  /// The server's session with a reference for the caller, or null.
  SSL_SESSION* get(const std::string& server) {
    std::lock_guard lock(mu_);
    auto it = by_server_.find(server);
    if (it == by_server_.end()) return nullptr;
    SSL_SESSION_up_ref(it->second);
    return it->second;
  }
  void forget(const std::string& server) {
    std::lock_guard lock(mu_);
    auto it = by_server_.find(server);
    if (it == by_server_.end()) return;
    SSL_SESSION_free(it->second);
    by_server_.erase(it);
  }

 private:
  static constexpr size_t kMaxServers = 256;
  std::mutex mu_;
  std::map<std::string, SSL_SESSION*> by_server_;
};

// A client context and its sessions, freed together by C++ (OpenSSL's
// ex_data free callbacks do not run for a context freed after
// OPENSSL_cleanup, at exit). Every connection holds the context, so the
// sessions outlive every callback.
struct ClientContext {
  explicit ClientContext(ssl::context::method method) : ctx(method) {}
  ClientSessions sessions;
  ssl::context ctx;
};

int client_sessions_index() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

/// The server a client connection dials, as offer_session() named it (the
/// caller's string).
int dialed_server_index() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

ClientSessions* client_sessions(SSL* ssl) {
  return static_cast<ClientSessions*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), client_sessions_index()));
}

// The cache keeps copies, and offers copies. A connection's own session
// object is marked not resumable when the connection is freed without a
// TLS close_notify (OpenSSL's ssl_clear_bad_session), which is how
// connections end here: a shared object would be spoiled for the next.
int on_new_client_session(SSL* ssl, SSL_SESSION* session) {
  auto* sessions = client_sessions(ssl);
  auto* server = static_cast<std::string*>(SSL_get_ex_data(ssl, dialed_server_index()));
  if (sessions == nullptr || server == nullptr || !SSL_SESSION_is_resumable(session)) return 0;
  if (SSL_SESSION* copy = SSL_SESSION_dup(session)) sessions->keep(*server, copy);
  return 0;  // OpenSSL keeps its own reference to `session`
}

}  // namespace

void offer_session(ssl_st* ssl, const std::string* server) {
  auto* sessions = client_sessions(ssl);
  if (sessions == nullptr) return;
  SSL_set_ex_data(ssl, dialed_server_index(), const_cast<std::string*>(server));
  if (SSL_SESSION* cached = sessions->get(*server)) {
    if (SSL_SESSION* copy = SSL_SESSION_dup(cached)) {
      SSL_set_session(ssl, copy);  // takes its own reference
      SSL_SESSION_free(copy);
    }
    SSL_SESSION_free(cached);
  }
}

void forget_session(ssl_st* ssl) {
  auto* sessions = client_sessions(ssl);
  auto* server = static_cast<std::string*>(SSL_get_ex_data(ssl, dialed_server_index()));
  if (sessions != nullptr && server != nullptr) sessions->forget(*server);
}

std::string required_server_kind(ssl_st* ssl) {
  if (ssl == nullptr) return "";
  auto* kind = static_cast<const std::string*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), server_kind_index()));
  return kind == nullptr ? "" : *kind;
}

bool certificate_allows_kind(x509_st* cert, const std::string& kind) {
  auto* names = static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  if (names == nullptr) return true;
  const std::string scheme = "tenure://", wanted = scheme + kind + "/";
  bool any = false, match = false;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    std::string uri = asn1_utf8(name->d.uniformResourceIdentifier);
    any = any || uri.rfind(scheme, 0) == 0;
    match = match || (uri.size() > wanted.size() && uri.rfind(wanted, 0) == 0);
  }
  GENERAL_NAMES_free(names);
  return match || !any;
}

Result<std::shared_ptr<ssl::context>, TlsErrc> make_client_tls(const std::string& ca_file,
                                                              const std::string& cert_file,
                                                              const std::string& key_file,
                                                              const std::string& server_kind) {
  auto owner = std::make_shared<ClientContext>(ssl::context::tls_client);
  std::shared_ptr<ssl::context> ctx(owner, &owner->ctx);
  configure_base(*ctx);
  if (!server_kind.empty()) {
    SSL_CTX_set_ex_data(ctx->native_handle(), server_kind_index(),
                        const_cast<std::string*>(intern_kind(server_kind)));
  }
  try {
    if (ca_file.empty()) {
      ctx->set_default_verify_paths();
    } else {
      ctx->load_verify_file(ca_file);
    }
  } catch (const boost::system::system_error& e) {
    return fail("cannot load TLS CA " + ca_file, e);
  }
  ctx->set_verify_mode(ssl::verify_peer);
  // Sessions are kept per server for resumption (offer_session), outside
  // OpenSSL's own cache, which does not know which server a session is for.
  SSL_CTX_set_session_cache_mode(ctx->native_handle(), SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx->native_handle(), on_new_client_session);
  SSL_CTX_set_ex_data(ctx->native_handle(), client_sessions_index(), &owner->sessions);
  if (!cert_file.empty() || !key_file.empty()) {
    try {
      ctx->use_certificate_chain_file(cert_file);
      ctx->use_private_key_file(key_file, ssl::context::pem);
    } catch (const boost::system::system_error& e) {
      return fail("cannot load TLS client certificate " + cert_file + " / " + key_file, e);
    }
  }
  return ctx;
}

}  // namespace tenure::net::detail
