#include "cli/client.h"

namespace tenure::cli {

CtlClient::CtlClient(std::vector<std::string> endpoints, std::string token, net::ClientOptions options)
    : endpoints_(std::move(endpoints)), token_(std::move(token)), http_(std::move(options)) {}

std::optional<Answer> CtlClient::call(const std::string& method, const std::string& target, const std::string& body,
                                      std::string& error) {
  for (const auto& ep : endpoints_) {
    net::ClientRequest req;
    req.method = method;
    req.target = target;
    req.body = body;
    req.timeout_ms = 10000;
    if (!body.empty()) req.headers["content-type"] = "application/json";
    if (!token_.empty()) req.headers["authorization"] = "Bearer " + token_;
    auto r = http_.call(ep, std::move(req));
    if (!r.ok()) {
      error = ep + ": " + std::string(net::to_string(r.code())) + " (" + r.error().message + ")";
      continue;  // try the next endpoint
    }
    // A member without a leader cannot help; another one may.
    if (r.value().status == 503 && &ep != &endpoints_.back()) {
      error = ep + ": no leader";
      continue;
    }
    Answer a;
    a.status = r.value().status;
    a.raw = r.value().body;
    a.body = nlohmann::json::parse(a.raw, nullptr, false);
    if (a.body.is_discarded()) a.body = nullptr;
    return a;
  }
  return std::nullopt;
}

}  // namespace tenure::cli
