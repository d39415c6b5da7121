#include "tests/unit/agent/fake_controller.h"

namespace tenure::agent::testing {

using nlohmann::json;

namespace {
net::HttpResponse json_reply(int status, const json& body) {
  net::HttpResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}
}  // namespace

FakeController::FakeController(boost::asio::io_context& io) {
  server_ = std::make_unique<net::HttpServer>(io, net::ServerOptions{}, [this](net::HttpRequest req, std::shared_ptr<net::Responder> res) {
    handle(std::move(req), std::move(res));
  });
  if (!server_->start().ok()) std::abort();
}

FakeController::~FakeController() { server_->stop(); }

void FakeController::set_page_limit(size_t limit) {
  std::lock_guard<std::mutex> lock(mu_);
  page_limit_ = limit;
}

void FakeController::set_listing(json listing) {
  std::lock_guard lock(mu_);
  listing_ = std::move(listing);
}
void FakeController::set_heartbeat_mode(HeartbeatMode mode) {
  std::lock_guard lock(mu_);
  mode_ = mode;
}
void FakeController::set_revoked(json revoked) {
  std::lock_guard lock(mu_);
  revoked_ = std::move(revoked);
}
void FakeController::on_revoking_answer(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  on_revoking_ = std::move(fn);
}
void FakeController::fail_next_watch(int status, std::string body) {
  std::lock_guard lock(mu_);
  watch_fail_status_ = status;
  watch_fail_body_ = std::move(body);
}

bool FakeController::push(const json& line) {
  std::shared_ptr<net::Responder> w;
  {
    std::lock_guard lock(mu_);
    w = watch_;
  }
  return w && w->write_chunk(line.dump() + "\n");
}

void FakeController::end_watch() {
  std::shared_ptr<net::Responder> w;
  {
    std::lock_guard lock(mu_);
    w = std::move(watch_);
  }
  if (w) w->end_stream();
}

int FakeController::registers() const {
  std::lock_guard lock(mu_);
  return registers_;
}
int FakeController::heartbeats() const {
  std::lock_guard lock(mu_);
  return heartbeats_;
}
int FakeController::listings() const {
  std::lock_guard lock(mu_);
  return listings_;
}
int FakeController::leaves() const {
  std::lock_guard lock(mu_);
  return leaves_;
}
bool FakeController::watch_open() const {
  std::lock_guard lock(mu_);
  return watch_ && !watch_->closed();
}
std::string FakeController::last_watch_target() const {
  std::lock_guard lock(mu_);
  return watch_target_;
}
std::vector<json> FakeController::prepareds() const {
  std::lock_guard lock(mu_);
  return prepareds_;
}

json FakeController::last_register() const {
  std::lock_guard lock(mu_);
  return last_register_;
}

std::vector<json> FakeController::releases() const {
  std::lock_guard lock(mu_);
  return releases_;
}
std::string FakeController::last_authorization() const {
  std::lock_guard lock(mu_);
  return authorization_;
}

net::HttpResponse FakeController::lease_answer(bool include_revoked) {
  // Called with mu_ held.
  json revoked = include_revoked ? revoked_ : json::array();
  json answer = {{"worker", "w1"}, {"lease_ms", 3000}, {"revision", listing_["revision"]}, {"revoked", revoked}};
  if (worker_revision_) answer["worker_revision"] = *worker_revision_;
  return json_reply(200, answer);
}

void FakeController::set_worker_revision(uint64_t revision) {
  std::lock_guard lock(mu_);
  worker_revision_ = revision;
}

void FakeController::handle(net::HttpRequest req, std::shared_ptr<net::Responder> res) {
  std::unique_lock lock(mu_);
  if (req.path.rfind("/v1/workers/", 0) == 0) authorization_ = req.header("authorization");
  if (req.method == "POST" && req.path == "/v1/workers/w1/register") {
    ++registers_;
    last_register_ = json::parse(req.body, nullptr, false);
    return res->reply(lease_answer(false));
  }
  if (req.method == "POST" && req.path == "/v1/workers/w1/heartbeat") {
    ++heartbeats_;
    switch (mode_) {
      case HeartbeatMode::kWorkerDeadOnce:
        mode_ = HeartbeatMode::kOk;
        return res->reply(json_reply(409, {{"error", "worker_dead"}, {"message", "declared dead"}}));
      case HeartbeatMode::kNotRegisteredOnce:
        mode_ = HeartbeatMode::kOk;
        return res->reply(json_reply(404, {{"error", "not_found"}, {"message", "not registered"}}));
      case HeartbeatMode::kUnavailable:
        return res->reply(json_reply(503, {{"error", "no_leader"}, {"message", "none"}}));
      case HeartbeatMode::kOk: break;
    }
    bool revoking = !revoked_.empty();
    auto answer = lease_answer(true);
    auto hook = revoking ? on_revoking_ : nullptr;
    lock.unlock();
    if (hook) hook();
    return res->reply(std::move(answer));
  }
  if (req.method == "POST" && req.path == "/v1/workers/w1/release") {
    releases_.push_back(json::parse(req.body));
    return res->reply(json_reply(200, {{"released", 1}, {"revision", listing_["revision"]}}));
  }
  if (req.method == "POST" && req.path == "/v1/workers/w1/prepared") {
    prepareds_.push_back(json::parse(req.body));
    return res->reply(json_reply(200, {{"prepared", 1}, {"revision", listing_["revision"]}}));
  }
  if (req.method == "POST" && req.path == "/v1/workers/w1/leave") {
    ++leaves_;
    return res->reply(json_reply(200, {{"left", true}, {"moved", 0}, {"revision", listing_["revision"]}}));
  }
  if (req.method == "GET" && req.path == "/v1/shards") {
    ++listings_;
    if (page_limit_ == 0) return res->reply(json_reply(200, listing_));
    // The token is the page's index: opaque to the agent, as a real one is.
    size_t page = req.query.count("continue") ? std::stoul(req.query.at("continue")) : 0;
    const auto& all = listing_["shards"];
    json body{{"revision", listing_["revision"].get<uint64_t>() + page}, {"shards", json::array()}};
    for (size_t i = page * page_limit_; i < all.size() && i < (page + 1) * page_limit_; ++i) {
      body["shards"].push_back(all[i]);
    }
    body["continue"] = (page + 1) * page_limit_ < all.size() ? json(std::to_string(page + 1)) : json(nullptr);
    return res->reply(json_reply(200, body));
  }
  if (req.method == "GET" && req.path == "/v1/watch") {
    watch_target_ = req.target;
    if (watch_fail_status_ != 0) {
      int status = std::exchange(watch_fail_status_, 0);
      return res->reply(json_reply(status, json::parse(watch_fail_body_)));
    }
    if (watch_) watch_->end_stream();
    watch_ = res;
    res->start_stream(200, "application/x-ndjson");
    return;
  }
  res->reply(json_reply(404, {{"error", "not_found"}, {"message", req.path}}));
}

}  // namespace tenure::agent::testing
