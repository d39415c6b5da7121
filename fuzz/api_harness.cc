#include "fuzz/api_harness.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <nlohmann/json.hpp>
#include <prometheus/registry.h>

#include "api/controller_api.h"
#include "api/watch_hub.h"
#include "member/metrics.h"
#include "replication/peer_sender.h"
#include "member/raft_node.h"
#include "member/supervisor.h"
#include "dataplane_agent/clock.h"
#include "dataplane_agent/data_store.h"
#include "dataplane_agent/fence_state.h"
#include "dataplane_agent/grant_table.h"
#include "dataplane_agent/http_api.h"
#include "dataplane_agent/metrics.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "storage/raft_storage.h"

namespace tenure::fuzzing {

namespace {
using Clock = std::chrono::steady_clock;
constexpr auto kAnswerDeadline = std::chrono::seconds(5);

/// A directory of our own, on tmpfs when there is one (an fsync per write).
std::filesystem::path fresh_dir(const char* what) {
  static std::atomic<int> counter{0};
  std::filesystem::path base = std::filesystem::exists("/dev/shm") ? std::filesystem::path("/dev/shm")
                                                                    : std::filesystem::temp_directory_path();
  auto dir = base / ("tenure-fuzz-" + std::string(what) + "-" + std::to_string(::getpid()) + "-" +
                     std::to_string(counter++));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// A single-member group sends nothing; forged messages to other ids go nowhere.
class NoPeers final : public replication::PeerSender {
 public:
  void send(std::vector<consensus::Message>) override {}
  void set_peer_address(const consensus::NodeId&, const std::string&) override {}
  bool peer_healthy(const consensus::NodeId&) const override { return false; }
  void probe(const consensus::NodeId&, std::function<void(bool)> done) override { done(false); }
};

/// The responder a connection would make, and the handler's copy of it
/// (whose last reference answers 500 if the handler never did), as
/// ServerConnection::dispatch does.
struct Exchange {
  std::shared_ptr<net::Responder> strong;
  std::shared_ptr<net::Responder> handed;
  explicit Exchange(const net::HttpRequest& req) {
    net::Responder::Init init;
    init.keep_alive = true;
    init.head = req.method == "HEAD";
    init.max_queued_bytes = net::ServerOptions{}.max_stream_queued_bytes;
    init.seq = 0;
    strong = std::make_shared<net::Responder>(std::move(init));
    auto s = strong;
    handed = std::shared_ptr<net::Responder>(strong.get(), [s](net::Responder*) { s->released_by_handler(); });
  }
  /// Takes what was answered; a stream is then closed, as by a client leaving.
  Answer finish() {
    Answer a;
    net::Responder::Taken t = strong->take_output(a.raw);
    a.stream = !t.finished;
    if (auto on_close = strong->finish()) on_close();
    return a;
  }
};

const std::set<std::string> kRetryable503 = {"no_leader", "busy", "timeout", "not_ready", "lease_expired",
                                             "overloaded"};
}  // namespace

void fail(const std::string& what, const std::string& context) {
  std::fprintf(stderr, "api fuzz: %s\n  while: %s\n", what.c_str(), context.substr(0, 2000).c_str());
  std::abort();
}

int check_answer(const Answer& a, bool head, const std::string& context) {
  namespace http = boost::beast::http;
  http::response_parser<http::string_body> parser;
  parser.eager(true);
  parser.body_limit(64 << 20);
  if (head) parser.skip(true);
  boost::beast::error_code ec;
  size_t used = parser.put(boost::asio::buffer(a.raw), ec);
  if (a.stream) {
    if (ec && ec != http::error::need_more) fail("malformed stream head: " + ec.message() + "\n" + a.raw, context);
    if (!parser.is_header_done()) fail("stream without a complete head:\n" + a.raw, context);
    if (parser.get().result_int() != 200) fail("a stream that is not 200:\n" + a.raw, context);
    return 200;
  }
  if (ec || !parser.is_done() || used != a.raw.size()) {
    fail("not one well-formed response (" + ec.message() + ", " + std::to_string(used) + " of " +
             std::to_string(a.raw.size()) + " bytes):\n" + a.raw,
         context);
  }
  const auto& res = parser.get();
  int status = static_cast<int>(res.result_int());
  bool json = res[http::field::content_type].starts_with("application/json");
  nlohmann::json body;
  if (json && !head) {
    body = nlohmann::json::parse(res.body(), nullptr, /*allow_exceptions=*/false);
    if (body.is_discarded()) fail("a JSON body that does not parse:\n" + a.raw, context);
  }
  if (status >= 400 && !head) {
    if (!json || !body.is_object() || !body.contains("error") || !body["error"].is_string() ||
        !body.contains("message") || !body["message"].is_string()) {
      fail("an error without {\"error\", \"message\"}:\n" + a.raw, context);
    }
  }
  if (status >= 500) {
    bool allowed = status == 503 && !head && kRetryable503.count(body["error"].get<std::string>()) > 0;
    if (!allowed) fail("status " + std::to_string(status) + ":\n" + a.raw, context);
  }
  return status;
}

net::HttpRequest make_request(const std::string& method, const std::string& target, std::string body) {
  net::HttpRequest req;
  req.method = method;
  req.target = target;
  size_t q = target.find('?');
  req.raw_path = target.substr(0, q);
  req.path = net::percent_decode(req.raw_path, false);
  if (q != std::string::npos) req.query = net::parse_query(std::string_view(target).substr(q + 1));
  req.headers["host"] = "127.0.0.1";
  if (!body.empty()) req.headers["content-type"] = "application/json";
  req.body = std::move(body);
  req.remote = "127.0.0.1:40000";
  return req;
}

// ---- the controller ----

struct ControllerHarness::Parts {
  std::filesystem::path dir = fresh_dir("controller");
  boost::asio::io_context io;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<storage::RaftStorage> storage;
  std::unique_ptr<member::HistoryStore> history;
  NoPeers peers;
  std::unique_ptr<net::HttpClient> client;
  std::unique_ptr<member::RaftMetrics> metrics;
  std::unique_ptr<member::RaftNode> node;
  std::unique_ptr<member::Supervisor> supervisor;
  std::unique_ptr<api::ControllerApi> api;

  /// Runs the io_context until `done()` or the deadline.
  template <typename Done>
  bool run_until(Done done, Clock::duration limit = kAnswerDeadline) {
    auto deadline = Clock::now() + limit;
    while (!done()) {
      if (Clock::now() >= deadline) return false;
      io.run_one_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  /// Runs `fn` on the strand with this member's state, and waits for it.
  void read_state(const std::function<void(const controlplane::StateMachine&)>& fn) {
    bool done = false;
    node->read_stale([&](const controlplane::StateMachine& sm) {
      fn(sm);
      done = true;
    });
    if (!run_until([&done] { return done; })) fail("the strand did not run within 5 s", "read_state");
  }
};

ControllerHarness::ControllerHarness() : p_(std::make_unique<Parts>()) {
  Parts& p = *p_;
  p.storage = storage::RaftStorage::open((p.dir / "data").string());
  // Forwarding goes to the only member's own address: never used while it
  // leads, and refused at once (port 1) while a forged message deposed it.
  p.client = std::make_unique<net::HttpClient>(p.io);
  p.metrics = std::make_unique<member::RaftMetrics>(*p.registry);
  member::NodeOptions o;
  o.id = consensus::NodeId("c1");
  o.tick_ms = 5;  // coarse: each tick is work on the fuzzing thread; elections still take ~60 ms
  o.heartbeat_ticks = 2;
  o.election_ticks = 10;
  o.election_jitter_ticks = 2;
  o.snapshot_threshold_entries = 1000;
  o.snapshot_keep_entries = 100;
  o.request_timeout_ms = 2000;
  o.configured_addresses[o.id] = "127.0.0.1:1";
  o.bootstrap_voters = {o.id};
  o.limits.events_kept = 1000;
  p.history = std::make_unique<member::HistoryStore>((p.dir / "data").string(), o.limits.history_per_shard);
  p.node = std::make_unique<member::RaftNode>(p.io, o, *p.storage, p.peers, *p.metrics, p.history.get());
  // The fleet policy is not ticked: no lease runs out and nothing is moved
  // between two requests, so a refused request must leave the revision as it was.
  controlplane::FleetPolicyOptions sup;
  sup.lease_ms = 3600 * 1000;
  p.supervisor = std::make_unique<member::Supervisor>(*p.node, sup, *p.registry);
  api::ApiOptions aopts;
  aopts.snapshot_spool_dir = (p.dir / "snapshot-inbox").string();
  aopts.forward_timeout_ms = 1000;
  p.api = std::make_unique<api::ControllerApi>(*p.node, *p.supervisor, *p.client, aopts, p.registry);
  p.node->set_apply_hook([&p] { p.api->watches().on_applied(); });
  p.node->set_every_tick_hook([&p] { p.api->watches().on_tick(); });
  p.api->watches().set_max_streams(64);
  p.node->start();
  ensure_leader();
}

ControllerHarness::~ControllerHarness() {
  p_->node->stop();
  p_->io.poll();
  p_->api.reset();
  p_->supervisor.reset();
  p_->node.reset();
  p_->storage.reset();
  std::error_code ec;
  std::filesystem::remove_all(p_->dir, ec);
}

void ControllerHarness::ensure_leader() {
  if (!p_->run_until([this] { return p_->node->is_leader(); }, std::chrono::seconds(5))) {
    fail("the single member did not lead within 5 s", "ensure_leader");
  }
}

Answer ControllerHarness::call(net::HttpRequest req) {
  std::string context = req.method + " " + req.target + " body=" + req.body;
  bool head = req.method == "HEAD";
  Exchange ex(req);
  p_->api->handle(std::move(req), std::move(ex.handed));
  if (!p_->run_until([&ex] { return ex.strong->queued_bytes() > 0; })) fail("no answer within 5 s", context);
  Answer a = ex.finish();
  a.status = check_answer(a, head, context);
  return a;
}

uint64_t ControllerHarness::revision() {
  uint64_t rev = 0;
  p_->read_state([&rev](const controlplane::StateMachine& sm) { rev = sm.revision().value(); });
  return rev;
}

size_t ControllerHarness::shards() {
  size_t n = 0;
  p_->read_state([&n](const controlplane::StateMachine& sm) { n = sm.shards().size(); });
  return n;
}

// ---- the agent ----

struct AgentHarness::Parts {
  std::filesystem::path dir = fresh_dir("agent");
  agent::ManualClock clock;
  agent::FenceState fence{clock};
  agent::AgentMetrics metrics{fence};
  std::unique_ptr<agent::DataStore> data;
  std::unique_ptr<agent::HttpApi> api;
};

AgentHarness::AgentHarness() : p_(std::make_unique<Parts>()) {
  Parts& p = *p_;
  agent::GrantChanges c(p.fence.table_for_planning());
  c.grant(agent::ShardId("s-1"), agent::Epoch(3));
  c.grant(agent::ShardId("s-2"), agent::Epoch(1));
  c.advance_revision(agent::Revision(42));
  p.fence.install(c);
  p.fence.extend_lease(p.clock.now() + std::chrono::hours(24));
  auto d = agent::DataStore::open((p.dir / "data.db").string(), p.fence);
  if (!d.ok()) fail("cannot open the agent's data store: " + d.error().message, "AgentHarness");
  p.data = std::move(d.value());
  p.api = std::make_unique<agent::HttpApi>(agent::WorkerId("w1"), p.fence, *p.data, p.metrics, [] { return true; });
}

AgentHarness::~AgentHarness() {
  p_->api.reset();
  p_->data.reset();
  std::error_code ec;
  std::filesystem::remove_all(p_->dir, ec);
}

Answer AgentHarness::call(net::HttpRequest req) {
  std::string context = "agent " + req.method + " " + req.target + " body=" + req.body;
  bool head = req.method == "HEAD";
  Exchange ex(req);
  p_->api->handle(std::move(req), std::move(ex.handed));
  auto deadline = Clock::now() + kAnswerDeadline;
  // The writer thread answers a PUT: poll, with a deadline, for its answer.
  while (ex.strong->queued_bytes() == 0) {
    if (Clock::now() >= deadline) fail("no answer within 5 s", context);
    std::this_thread::yield();
  }
  Answer a = ex.finish();
  a.status = check_answer(a, head, context);
  return a;
}

}  // namespace tenure::fuzzing
