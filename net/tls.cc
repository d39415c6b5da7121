#include "net/detail/tls.h"

#include <openssl/ssl.h>

#include <mutex>
#include <set>
#include <openssl/x509v3.h>

#include <boost/system/system_error.hpp>

namespace tenure::net::detail {

namespace ssl = boost::asio::ssl;

namespace {

std::shared_ptr<ssl::context> base_context(ssl::context::method method) {
  auto ctx = std::make_shared<ssl::context>(method);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                   ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                   ssl::context::single_dh_use);
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
}  // namespace

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
  auto ctx = base_context(ssl::context::tls_client);
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
