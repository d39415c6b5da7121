#include "net/detail/tls.h"

#include <openssl/ssl.h>
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
  }
  return ctx;
}

Result<std::shared_ptr<ssl::context>, TlsErrc> make_client_tls(const std::string& ca_file,
                                                              const std::string& cert_file,
                                                              const std::string& key_file) {
  auto ctx = base_context(ssl::context::tls_client);
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
