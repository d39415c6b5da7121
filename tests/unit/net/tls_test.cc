// HTTPS with certificates made at test time by the openssl CLI: server
// verification by the client, and client certificates required by a CA.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include <openssl/ssl.h>

#include <gtest/gtest.h>

#include "net/http_server.h"
#include "net/sync_http_client.h"
#include "tests/unit/net/net_test_util.h"

namespace tenure::net {
namespace {

using namespace testing;

class TlsFixture : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { certs_ = new TestCerts(make_test_certs()); }
  static void TearDownTestSuite() {
    if (!certs_->dir.empty()) std::filesystem::remove_all(certs_->dir);
    delete certs_;
  }
  void SetUp() override { ASSERT_FALSE(certs_->dir.empty()) << "openssl could not make test certificates"; }
  void start(bool require_client_cert) {
    start(require_client_cert, [this](HttpRequest req, std::shared_ptr<Responder> res) {
      calls_.fetch_add(1);
      res->reply(HttpResponse{200, "text/plain", req.tls ? "tls" : "plain", {}});
    });
  }
  void start(bool require_client_cert, Handler handler, size_t max_body_bytes = 1 << 20) {
    ServerOptions o;
    o.host = "127.0.0.1";
    o.tls_cert_file = certs_->server_cert;
    o.tls_key_file = certs_->server_key;
    o.max_body_bytes = max_body_bytes;
    if (read_timeout_ms_ != 0) o.read_timeout_ms = read_timeout_ms_;
    if (require_client_cert) o.tls_ca_file = certs_->ca_cert;
    server_ = std::make_unique<HttpServer>(io_.ioc(), o, std::move(handler));
    auto r = server_->start();
    ASSERT_TRUE(r.ok()) << r.error().message;
    addr_ = "127.0.0.1:" + std::to_string(server_->port());
  }
  void TearDown() override {
    if (server_) server_->stop();
  }
  /// A plain TCP connection to the server (-1 if it fails).
  int connect_raw() const {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(server_->port());
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  }
  ClientOptions client_options(bool with_cert) const {
    ClientOptions o;
    o.tls = true;
    o.tls_ca_file = certs_->ca_cert;
    if (with_cert) {
      o.tls_cert_file = certs_->client_cert;
      o.tls_key_file = certs_->client_key;
    }
    return o;
  }

  static TestCerts* certs_;
  IoThreads io_{2};
  std::unique_ptr<HttpServer> server_;
  std::string addr_;
  std::atomic<int> calls_{0};
  uint32_t read_timeout_ms_ = 0;  ///< ServerOptions::read_timeout_ms when set
};

TestCerts* TlsFixture::certs_ = nullptr;

TEST_F(TlsFixture, RoundTripWithKeepAlive) {
  start(false);
  SyncHttpClient client(client_options(false));
  ASSERT_FALSE(client.config_error());
  for (int i = 0; i < 3; ++i) {
    auto r = client.call(addr_, ClientRequest{"GET", "/"});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r.value().status, 200);
    EXPECT_EQ(r.value().body, "tls");
  }
  EXPECT_EQ(client.connections_opened(), 1u);
}

// Bodies of many TLS records each way: the server's reads finish record by
// record, and an 8 MiB answer fills the socket's send buffer, so its writes
// wait for the socket to be writable and go on (partial writes).
TEST_F(TlsFixture, LargeBodiesBothWaysOverOneConnection) {
  auto pattern = [](size_t n, char seed) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 % 251);
    return s;
  };
  const std::string upload = pattern(3 << 20, 'u');
  const std::string download = pattern(8 << 20, 'd');
  start(true,
        [&](HttpRequest req, std::shared_ptr<Responder> res) {
          calls_.fetch_add(1);
          if (req.body != upload && req.method == "POST") return res->reply(HttpResponse{400, "text/plain", "", {}});
          res->reply(HttpResponse{200, "application/octet-stream", req.method == "POST" ? "ok" : download, {}});
        },
        4 << 20);
  SyncHttpClient client(client_options(true));
  for (int i = 0; i < 2; ++i) {
    ClientRequest post{"POST", "/up"};
    post.body = upload;
    auto up = client.call(addr_, post);
    ASSERT_TRUE(up.ok()) << up.error().message;
    EXPECT_EQ(up.value().status, 200);
    auto down = client.call(addr_, ClientRequest{"GET", "/down"});
    ASSERT_TRUE(down.ok()) << down.error().message;
    EXPECT_EQ(down.value().status, 200);
    EXPECT_TRUE(down.value().body == download) << down.value().body.size() << " bytes";
  }
  EXPECT_EQ(client.connections_opened(), 1u);
  EXPECT_EQ(calls_.load(), 4);
}

// A client keeps the session a server issued and resumes it on its next
// connection there: no certificates sent or checked, no signature, the
// identity still the one verified when the session began. A server that
// cannot resume it (restarted: new ticket keys) gets a full handshake.
TEST_F(TlsFixture, ClientsResumeSessionsAndKeepTheirIdentity) {
  Handler who = [this](HttpRequest req, std::shared_ptr<Responder> res) {
    calls_.fetch_add(1);
    res->reply(HttpResponse{200, "text/plain", req.client_cert ? req.client_cert->common_name : "nobody", {}});
  };
  start(true, who);
  ClientOptions o = client_options(true);
  o.max_idle_per_host = 0;  // a new connection for every call
  SyncHttpClient client(o);
  for (int i = 0; i < 3; ++i) {
    auto r = client.call(addr_, ClientRequest{"GET", "/"});
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r.value().body, "tenure-client");
  }
  EXPECT_EQ(client.connections_opened(), 3u);
  auto stats = server_->stats();
  EXPECT_EQ(stats.tls_new_sessions, 1u);
  EXPECT_EQ(stats.tls_resumed, 2u);

  // Another server on the same port, once stop() has closed the listener
  // (it closes on the server's strand).
  ServerOptions again;
  again.host = "127.0.0.1";
  again.port = server_->port();
  again.tls_cert_file = certs_->server_cert;
  again.tls_key_file = certs_->server_key;
  again.tls_ca_file = certs_->ca_cert;
  server_->stop();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  do {
    server_ = std::make_unique<HttpServer>(io_.ioc(), again, who);
    if (server_->start().ok()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling interval
  } while (std::chrono::steady_clock::now() < deadline);
  auto r = client.call(addr_, ClientRequest{"GET", "/"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().body, "tenure-client");
  EXPECT_EQ(server_->stats().tls_new_sessions, 1u);
  EXPECT_EQ(server_->stats().tls_resumed, 0u);
}

// One ticket per full handshake (OpenSSL's default is two): a client
// resumes with one, and each costs the server a session encoded and
// encrypted. Counted with OpenSSL's own client, which reports each.
TEST_F(TlsFixture, AFullHandshakeIssuesOneTicket) {
  start(true);
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  ASSERT_TRUE(ctx);
  ASSERT_EQ(SSL_CTX_load_verify_locations(ctx, certs_->ca_cert.c_str(), nullptr), 1);
  ASSERT_EQ(SSL_CTX_use_certificate_chain_file(ctx, certs_->client_cert.c_str()), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey_file(ctx, certs_->client_key.c_str(), SSL_FILETYPE_PEM), 1);
  static std::atomic<int> tickets{0};
  tickets = 0;
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ctx, [](SSL*, SSL_SESSION*) {
    tickets.fetch_add(1);
    return 0;
  });
  int fd = connect_raw();
  ASSERT_GE(fd, 0);
  SSL* ssl = SSL_new(ctx);
  SSL_set_fd(ssl, fd);
  ASSERT_EQ(SSL_connect(ssl), 1);
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  ASSERT_EQ(SSL_write(ssl, request.data(), static_cast<int>(request.size())), static_cast<int>(request.size()));
  std::string answer;
  char buf[4096];
  for (int n; (n = SSL_read(ssl, buf, sizeof buf)) > 0;) answer.append(buf, static_cast<size_t>(n));
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  EXPECT_EQ(tickets.load(), 1);
  SSL_free(ssl);
  ::close(fd);
  SSL_CTX_free(ctx);
}

// A client that starts a handshake and stalls (half a TLS record, or
// nothing at all) holds no connection past the read timeout: the server's
// wait on the socket is cancelled and the connection freed.
TEST_F(TlsFixture, AStalledHandshakeIsClosedAtTheReadTimeout) {
  read_timeout_ms_ = 300;
  start(true);
  int silent = connect_raw();
  int partial = connect_raw();
  ASSERT_GE(silent, 0);
  ASSERT_GE(partial, 0);
  const unsigned char half_record[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};  // a ClientHello's header, 512 bytes owed
  ASSERT_EQ(::send(partial, half_record, sizeof half_record, 0), static_cast<ssize_t>(sizeof half_record));
  auto closed_by_server = [](int fd) {
    timeval wait{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
    char byte;
    return ::recv(fd, &byte, 1, 0) <= 0;  // EOF or reset; a 10 s timeout would be -1 too, hence the check below
  };
  auto started = std::chrono::steady_clock::now();
  EXPECT_TRUE(closed_by_server(silent));
  EXPECT_TRUE(closed_by_server(partial));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(8)) << "closed by our recv timeout";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (server_->stats().open_connections != 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling interval
  }
  EXPECT_EQ(server_->stats().open_connections, 0u);
  EXPECT_EQ(server_->stats().timeouts, 2u);
  EXPECT_EQ(server_->stats().tls_new_sessions + server_->stats().tls_resumed, 0u);
  ::close(silent);
  ::close(partial);
}

TEST_F(TlsFixture, UntrustedServerIsRefused) {
  start(false);
  ClientOptions o = client_options(false);
  o.tls_ca_file = certs_->other_cert;  // a CA that did not sign the server
  SyncHttpClient client(o);
  auto r = client.call(addr_, ClientRequest{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ClientErrc::tls_failed) << r.error().message;
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(TlsFixture, PlainHttpToATlsListenerGetsNoAnswer) {
  start(false);
  SyncHttpClient client;
  ClientRequest req;
  req.timeout_ms = 2000;
  auto r = client.call("http://" + addr_, req);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(calls_.load(), 0);
}

TEST_F(TlsFixture, ClientCertificateRequiredWhenACaIsSet) {
  start(true);
  {
    SyncHttpClient without(client_options(false));
    auto r = without.call(addr_, ClientRequest{});
    ASSERT_FALSE(r.ok());
    // TLS 1.3 may finish the client's handshake before the server checks
    // the certificate; its alert then breaks the first read instead.
    EXPECT_TRUE(r.code() == ClientErrc::tls_failed || r.code() == ClientErrc::io_error)
        << r.error().message;
  }
  {
    ClientOptions o = client_options(false);
    o.tls_cert_file = certs_->other_cert;  // self-signed, not by the CA
    o.tls_key_file = certs_->other_key;
    SyncHttpClient wrong(o);
    EXPECT_FALSE(wrong.call(addr_, ClientRequest{}).ok());
  }
  EXPECT_EQ(calls_.load(), 0);
  SyncHttpClient with(client_options(true));
  auto r = with.call(addr_, ClientRequest{});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r.value().body, "tls");
}

TEST_F(TlsFixture, MissingCertificateFileFailsStart) {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.tls_cert_file = certs_->dir + "/missing.pem";
  o.tls_key_file = certs_->server_key;
  HttpServer s(io_.ioc(), o, [](HttpRequest, std::shared_ptr<Responder>) {});
  auto r = s.start();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ServerErrc::tls_failed);
  EXPECT_NE(r.error().message.find("missing.pem"), std::string::npos) << r.error().message;
}

TEST_F(TlsFixture, BadClientTlsFilesAreReportedNotThrown) {
  ClientOptions o;
  o.tls = true;
  o.tls_ca_file = certs_->dir + "/nope.pem";
  SyncHttpClient client(o);
  ASSERT_TRUE(client.config_error());
  auto r = client.call("127.0.0.1:1", ClientRequest{});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.code(), ClientErrc::tls_failed);
}

}  // namespace
}  // namespace tenure::net
