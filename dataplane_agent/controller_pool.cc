#include "dataplane_agent/controller_pool.h"

#include <memory>

namespace tenure::agent {

struct ControllerPool::Attempt {
  std::string method;
  std::string target;
  std::string body;
  uint32_t timeout_ms = 0;
  size_t tried = 0;
  std::function<void(PoolReply)> done;
};

ControllerPool::ControllerPool(net::HttpClient& client, std::vector<std::string> endpoints, std::string agent_token,
                               const Clock& clock)
    : client_(client), endpoints_(std::move(endpoints)), token_(std::move(agent_token)), clock_(clock) {}

std::string ControllerPool::current() const { return endpoints_[current_.load() % endpoints_.size()]; }

void ControllerPool::rotate() { current_.fetch_add(1); }

net::HeaderMap ControllerPool::auth_headers() const {
  net::HeaderMap h;
  if (!token_.empty()) h["authorization"] = "Bearer " + token_;
  return h;
}

void ControllerPool::call(const std::string& method, const std::string& target, std::string body,
                          uint32_t timeout_ms, std::function<void(PoolReply)> done) {
  auto a = std::make_shared<Attempt>();
  a->method = method;
  a->target = target;
  a->body = std::move(body);
  a->timeout_ms = timeout_ms;
  a->done = std::move(done);
  attempt(std::move(a));
}

void ControllerPool::attempt(std::shared_ptr<Attempt> a) {
  size_t index = current_.load();
  std::string endpoint = endpoints_[index % endpoints_.size()];
  net::ClientRequest req;
  req.method = a->method;
  req.target = a->target;
  req.body = a->body;
  req.headers = auth_headers();
  req.timeout_ms = a->timeout_ms;
  ++a->tried;
  SteadyTime sent = clock_.now();
  client_.request(endpoint, std::move(req), [this, a, index, sent, endpoint](net::ClientResult r) {
    // A 503 (no leader, overloaded) or no answer at all: another member may do better.
    bool retry = !r.ok() ? r.code() != net::ClientErrc::shut_down : r.value().status == 503;
    if (retry) {
      size_t expected = index;
      current_.compare_exchange_strong(expected, index + 1);  // unless someone moved it already
      if (a->tried < endpoints_.size()) return attempt(a);
    }
    a->done(PoolReply{std::move(r), sent, endpoint});
  });
}

}  // namespace tenure::agent
