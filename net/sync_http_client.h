#pragma once
// A blocking HTTP client for tools and tests (tenurectl, benchmarks): an
// HttpClient on an io_context of its own, run for the length of each call.

#include <memory>
#include <string>

#include "net/http_client.h"

namespace tenure::net {

/// Not thread-safe: one thread at a time. Keeps connections alive between
/// calls (the pool lives as long as the object).
class SyncHttpClient {
 public:
  explicit SyncHttpClient(ClientOptions options = {});
  ~SyncHttpClient();
  SyncHttpClient(const SyncHttpClient&) = delete;
  SyncHttpClient& operator=(const SyncHttpClient&) = delete;

  /// Sends `req` and waits for the response or the error (at most
  /// req.timeout_ms, plus scheduling).
  ClientResult call(const std::string& host_port, ClientRequest req);

  /// TCP connections opened so far.
  uint64_t connections_opened() const;
  /// Why the client cannot work (bad TLS files), if so.
  std::optional<ClientError> config_error() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tenure::net
