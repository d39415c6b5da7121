#include "net/sync_http_client.h"

#include <boost/asio/io_context.hpp>

namespace tenure::net {

struct SyncHttpClient::Impl {
  explicit Impl(ClientOptions options) : client(ioc, std::move(options)) {}
  boost::asio::io_context ioc;
  HttpClient client;
};

SyncHttpClient::SyncHttpClient(ClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

SyncHttpClient::~SyncHttpClient() = default;

ClientResult SyncHttpClient::call(const std::string& host_port, ClientRequest req) {
  std::optional<ClientResult> result;
  impl_->client.request(host_port, std::move(req),
                        [&result](ClientResult r) { result.emplace(std::move(r)); });
  impl_->ioc.restart();
  // run() returns once nothing is pending: the callback ran and its
  // deadline timer was cancelled; idle pooled connections wait on nothing.
  while (!result) {
    if (impl_->ioc.run_one() == 0) break;
  }
  if (!result) {
    return ClientError{ClientErrc::io_error, "request ended without a result"};
  }
  return std::move(*result);
}

uint64_t SyncHttpClient::connections_opened() const { return impl_->client.connections_opened(); }

std::optional<ClientError> SyncHttpClient::config_error() const {
  return impl_->client.config_error();
}

}  // namespace tenure::net
