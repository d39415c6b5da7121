#include "tests/unit/net/net_test_util.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace tenure::net::testing {

IoThreads::IoThreads(int threads) : guard_(boost::asio::make_work_guard(ioc_)) {
  for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { ioc_.run(); });
}

IoThreads::~IoThreads() {
  guard_.reset();
  ioc_.stop();
  for (auto& t : threads_) t.join();
}

bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(1ms);  // polling with a deadline, not waiting for a state
  }
  return true;
}

RawConn::RawConn(uint16_t port) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

RawConn::~RawConn() { close_now(); }

void RawConn::close_now() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool RawConn::send(const std::string& data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool RawConn::read_some(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  if (left.count() <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) {
    eof_ = true;
    return true;
  }
  data_.append(buf, static_cast<size_t>(n));
  return true;
}

bool RawConn::read_until(const std::string& needle, int times, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (count(data_, needle) < static_cast<size_t>(times)) {
    if (eof_ || !read_some(deadline)) return false;
  }
  return true;
}

bool RawConn::wait_closed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!eof_) {
    if (!read_some(deadline)) return false;
  }
  return true;
}

uint16_t unused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);  // never listened on: connecting to it is refused
  return ntohs(addr.sin_port);
}

size_t count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = hay.find(needle); pos != std::string::npos; pos = hay.find(needle, pos + 1)) {
    ++n;
  }
  return n;
}

namespace {

bool run(const std::string& cmd) {
  std::string full = cmd + " >/dev/null 2>&1";
  if (std::system(full.c_str()) == 0) return true;
  std::fprintf(stderr, "command failed: %s\n", cmd.c_str());
  return false;
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

}  // namespace

TestCerts make_test_certs() {
  char tmpl[] = "/tmp/tenure-net-certs-XXXXXX";
  TestCerts c;
  if (::mkdtemp(tmpl) == nullptr) return c;
  std::string d = tmpl;
  const std::string ssl = "openssl ";
  auto self_signed = [&](const std::string& name, const std::string& cn) {
    return run(ssl + "req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + cn + " -keyout " +
               d + "/" + name + ".key -out " + d + "/" + name + ".pem");
  };
  auto signed_by_ca = [&](const std::string& name, const std::string& cn, const std::string& ext) {
    std::string base = d + "/" + name;
    return run(ssl + "req -newkey rsa:2048 -nodes -subj /CN=" + cn + " -keyout " + base +
               ".key -out " + base + ".csr") &&
           write_file(base + ".ext", ext) &&
           run(ssl + "x509 -req -in " + base + ".csr -CA " + d + "/ca.pem -CAkey " + d +
               "/ca.key -CAcreateserial -days 2 -extfile " + base + ".ext -out " + base + ".pem");
  };
  bool ok = self_signed("ca", "tenure-test-ca") &&
            signed_by_ca("server", "127.0.0.1",
                         "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n") &&
            signed_by_ca("client", "tenure-client", "extendedKeyUsage=clientAuth\n") &&
            self_signed("other", "other-ca");
  if (!ok) return c;
  c.dir = d;
  c.ca_cert = d + "/ca.pem";
  c.server_cert = d + "/server.pem";
  c.server_key = d + "/server.key";
  c.client_cert = d + "/client.pem";
  c.client_key = d + "/client.key";
  c.other_cert = d + "/other.pem";
  c.other_key = d + "/other.key";
  return c;
}

}  // namespace tenure::net::testing
