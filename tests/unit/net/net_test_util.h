#pragma once
// Helpers for the net/ tests: an io_context on background threads, a raw
// blocking TCP client with deadlines (to send exactly the bytes a test
// wants), and waiting on conditions with a deadline instead of sleeping.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "net/http_client.h"
#include "net/http_server.h"

namespace tenure::net::testing {

using namespace std::chrono_literals;

/// An io_context run by `threads` background threads until destruction.
class IoThreads {
 public:
  explicit IoThreads(int threads = 2);
  ~IoThreads();
  boost::asio::io_context& ioc() { return ioc_; }

 private:
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::vector<std::thread> threads_;
};

/// Polls `pred` until it holds or `timeout` passes; true if it held.
bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 5000ms);

/// A value set once from another thread, waited for with a deadline.
template <typename T>
class Slot {
 public:
  void set(T v) {
    std::lock_guard lock(mu_);
    value_ = std::move(v);
    cv_.notify_all();
  }
  std::optional<T> wait(std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, timeout, [&] { return value_.has_value(); });
    return value_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<T> value_;
};

/// A blocking TCP connection to 127.0.0.1 for hand-written requests.
class RawConn {
 public:
  explicit RawConn(uint16_t port);
  ~RawConn();
  bool connected() const { return fd_ >= 0; }
  /// Sends all of `data`; false on error.
  bool send(const std::string& data);
  /// Reads until `data()` contains `needle` n times, EOF, or the timeout.
  bool read_until(const std::string& needle, int times = 1, std::chrono::milliseconds timeout = 5000ms);
  /// Reads until the server closes (true) or the timeout (false).
  bool wait_closed(std::chrono::milliseconds timeout = 5000ms);
  const std::string& data() const { return data_; }
  bool eof() const { return eof_; }
  void close_now();

 private:
  /// One read with a deadline; false on timeout.
  bool read_some(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string data_;
  bool eof_ = false;
};

/// A port nothing listens on (bound, then released).
uint16_t unused_port();

/// Counts occurrences of `needle` in `hay`.
size_t count(const std::string& hay, const std::string& needle);

/// PEM files made with the openssl CLI in a fresh temp directory: a CA, a
/// server certificate for IP 127.0.0.1 signed by it, and a client
/// certificate signed by it.
struct TestCerts {
  std::string dir, ca_cert, server_cert, server_key, client_cert, client_key;
  /// A second, unrelated CA (a client cert it signed must be refused).
  std::string other_cert, other_key;
};
/// Empty dir on failure (the test then fails with the command's output).
TestCerts make_test_certs();

}  // namespace tenure::net::testing
