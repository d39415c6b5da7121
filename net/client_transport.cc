// Client plumbing without Beast's HTTP code (only its iequals): endpoints, dialing (resolve, connect, TLS
// handshake) and request serialization.

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/beast/core/string.hpp>

#include "net/detail/client_shared.h"
#include "net/detail/tls.h"

namespace tenure::net::detail {

namespace ssl = asio::ssl;

Result<Endpoint, ClientErrc> parse_endpoint(const std::string& host_port, bool default_tls) {
  std::string_view text = host_port;
  Endpoint ep;
  ep.tls = default_tls;
  if (text.starts_with("https://")) {
    ep.tls = true;
    text.remove_prefix(8);
  } else if (text.starts_with("http://")) {
    ep.tls = false;
    text.remove_prefix(7);
  }
  while (!text.empty() && text.back() == '/') text.remove_suffix(1);
  auto hp = parse_host_port(text);
  if (!hp) return ClientError{ClientErrc::bad_address, hp.error().message};
  ep.hp = hp.value();
  ep.key = (ep.tls ? "https://" : "http://") + host_field(ep.hp);
  return ep;
}

std::string host_field(const HostPort& hp) {
  bool v6 = hp.host.find(':') != std::string::npos;
  return (v6 ? "[" + hp.host + "]" : hp.host) + ":" + std::to_string(hp.port);
}

Transport::Transport(asio::io_context& ioc, std::shared_ptr<ssl::context> tls)
    : strand_(asio::make_strand(ioc)), resolver_(strand_), socket_(strand_), ctx_(std::move(tls)) {
  if (ctx_) tls_.emplace(socket_, *ctx_);
}

void Transport::close() {
  boost::system::error_code ec;
  resolver_.cancel();
  socket_.shutdown(tcp::socket::shutdown_both, ec);
  socket_.close(ec);
}

namespace {

ClientError dial_error(ClientErrc code, const HostPort& hp, const char* what,
                       const boost::system::error_code& ec) {
  return ClientError{code, std::string(what) + " " + host_field(hp) + ": " + ec.message()};
}

}  // namespace

void Transport::connect(const HostPort& hp,
                        std::function<void(std::optional<ClientError>)> done) {
  auto handshake = [this, hp, done](const boost::system::error_code& ec) {
    if (ec) return done(dial_error(ClientErrc::connect_failed, hp, "cannot connect to", ec));
    boost::system::error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    if (!tls_) return done(std::nullopt);
    // SNI, and the certificate must name the host (RFC 6125; an IP literal
    // must appear as an IP SAN).
    if (!SSL_set_tlsext_host_name(tls_->native_handle(), hp.host.c_str())) {
      return done(ClientError{ClientErrc::tls_failed, "cannot set TLS server name " + hp.host});
    }
    std::string kind = required_server_kind(tls_->native_handle());
    tls_->set_verify_callback([host = hp.host, kind](bool preverified, ssl::verify_context& vc) {
      if (!ssl::host_name_verification(host)(preverified, vc)) return false;
      X509_STORE_CTX* store = vc.native_handle();
      if (kind.empty() || X509_STORE_CTX_get_error_depth(store) != 0) return true;
      return certificate_allows_kind(X509_STORE_CTX_get_current_cert(store), kind);
    });
    tls_server_ = host_field(hp);
    offer_session(tls_->native_handle(), &tls_server_);
    tls_->async_handshake(ssl::stream_base::client,
                          [this, hp, done](const boost::system::error_code& e) {
                            if (e) {
                              forget_session(tls_->native_handle());
                              return done(dial_error(ClientErrc::tls_failed, hp, "TLS handshake with", e));
                            }
                            done(std::nullopt);
                          });
  };
  boost::system::error_code ec;
  auto address = asio::ip::make_address(hp.host, ec);
  if (!ec) {
    socket_.async_connect(tcp::endpoint(address, hp.port), handshake);
    return;
  }
  resolver_.async_resolve(
      hp.host, std::to_string(hp.port),
      [this, hp, done, handshake](const boost::system::error_code& e,
                                  const tcp::resolver::results_type& results) {
        if (e) return done(dial_error(ClientErrc::resolve_failed, hp, "cannot resolve", e));
        asio::async_connect(socket_, results,
                            [handshake](const boost::system::error_code& ce, const tcp::endpoint&) {
                              handshake(ce);
                            });
      });
}

namespace {

using boost::beast::iequals;  // declarations only: Beast's one non-template compare

bool bad_text(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

}  // namespace

std::string serialize_request(const Endpoint& ep, const ClientRequest& req,
                              const ClientOptions& options) {
  std::string out;
  out.reserve(256 + req.body.size());
  out += bad_text(req.method) || req.method.empty() ? "GET" : req.method;
  out += ' ';
  out += bad_text(req.target) || req.target.empty() ? "/" : req.target;
  out += " HTTP/1.1\r\nHost: ";
  out += host_field(ep.hp);
  out += "\r\n";
  bool has_type = false, has_agent = false;
  for (const auto& [name, value] : req.headers) {
    if (name.empty() || bad_text(name) || bad_text(value)) continue;
    if (iequals(name, "host") || iequals(name, "content-length") ||
        iequals(name, "transfer-encoding") || iequals(name, "connection")) {
      continue;
    }
    has_type = has_type || iequals(name, "content-type");
    has_agent = has_agent || iequals(name, "user-agent");
    out += name;
    out += ": ";
    out += value;
    out += "\r\n";
  }
  if (!has_agent && !options.user_agent.empty()) out += "User-Agent: " + options.user_agent + "\r\n";
  bool sends_body = !req.body.empty() || req.method == "POST" || req.method == "PUT" ||
                    req.method == "PATCH";
  if (sends_body) {
    out += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
    if (!has_type && !req.body.empty()) out += "Content-Type: application/json\r\n";
  }
  out += "\r\n";
  out += req.body;
  return out;
}

}  // namespace tenure::net::detail
