#pragma once
// A fake controller on 127.0.0.1 (a real net::HttpServer) speaking the
// agent endpoints of api/agent_routes.cc, api/shard_routes.cc and
// api/watch_hub.cc, scripted by the test: what GET /v1/shards returns, what
// heartbeats answer, and watch lines pushed by hand.

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "net/http_server.h"

namespace tenure::agent::testing {

class FakeController {
 public:
  enum class HeartbeatMode { kOk, kWorkerDeadOnce, kNotRegisteredOnce, kUnavailable };

  explicit FakeController(boost::asio::io_context& io);
  ~FakeController();
  uint16_t port() const { return server_->port(); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port()); }

  // --- Scripting (any thread) ---
  void set_listing(nlohmann::json listing);
  /// Pages the listing `limit` shards at a time (0: one answer, no
  /// `continue`); page k carries the listing's revision + k, as a real
  /// controller's later pages may.
  void set_page_limit(size_t limit);
  void set_heartbeat_mode(HeartbeatMode mode);
  /// Shards every later heartbeat answer lists as revoked.
  void set_revoked(nlohmann::json revoked);
  /// The worker_revision every later lease answer carries (none by default:
  /// the agent then takes the answer's revision).
  void set_worker_revision(uint64_t revision);
  /// Called (under no lock) when a heartbeat answer carrying a revoked list
  /// is about to be sent.
  void on_revoking_answer(std::function<void()> fn);
  /// The first watch request (only) gets this status and body instead of a stream.
  void fail_next_watch(int status, std::string body);
  /// Writes one ndjson line to the open watch stream; false if none is open.
  bool push(const nlohmann::json& line);
  /// Ends the open watch stream.
  void end_watch();

  // --- Observations (any thread) ---
  int registers() const;
  int heartbeats() const;
  int listings() const;
  int leaves() const;
  bool watch_open() const;
  std::string last_watch_target() const;
  std::vector<nlohmann::json> releases() const;
  /// Bodies of POST .../prepared, and of the last register.
  std::vector<nlohmann::json> prepareds() const;
  nlohmann::json last_register() const;
  /// Authorization header of the last agent call.
  std::string last_authorization() const;

 private:
  void handle(net::HttpRequest req, std::shared_ptr<net::Responder> res);
  net::HttpResponse lease_answer(bool include_revoked);

  mutable std::mutex mu_;
  std::unique_ptr<net::HttpServer> server_;
  nlohmann::json listing_ = {{"revision", 1}, {"shards", nlohmann::json::array()}};
  nlohmann::json revoked_ = nlohmann::json::array();
  size_t page_limit_ = 0;
  std::optional<uint64_t> worker_revision_;
  HeartbeatMode mode_ = HeartbeatMode::kOk;
  std::function<void()> on_revoking_;
  int watch_fail_status_ = 0;
  std::string watch_fail_body_;
  std::shared_ptr<net::Responder> watch_;
  std::string watch_target_;
  int registers_ = 0, heartbeats_ = 0, listings_ = 0, leaves_ = 0;
  std::vector<nlohmann::json> releases_;
  std::vector<nlohmann::json> prepareds_;
  nlohmann::json last_register_;
  std::string authorization_;
};

}  // namespace tenure::agent::testing
