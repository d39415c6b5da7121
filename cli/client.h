#pragma once
// tenurectl's view of the cluster: tries each endpoint in turn until one
// answers, and turns HTTP answers into JSON or a one-line error.

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "net/sync_http_client.h"

namespace tenure::cli {

struct Answer {
  int status = 0;
  nlohmann::json body;  ///< null when the body was not JSON
  std::string raw;
};

class CtlClient {
 public:
  CtlClient(std::vector<std::string> endpoints, std::string token, net::ClientOptions options);
  /// The answer of the first endpoint that answers at all; nullopt (and
  /// `error` set) when none does.
  std::optional<Answer> call(const std::string& method, const std::string& target, const std::string& body,
                             std::string& error);
  const std::vector<std::string>& endpoints() const { return endpoints_; }
  const std::string& token() const { return token_; }

 private:
  std::vector<std::string> endpoints_;
  std::string token_;
  net::SyncHttpClient http_;
};

}  // namespace tenure::cli
