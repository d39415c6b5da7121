// The whole agent in-process against a fake controller on 127.0.0.1:
// register -> re-list -> watch -> grant -> fence ok -> revoke -> release ->
// not_owner; worker_dead drops every grant; the heartbeat's revoked shards
// are dropped before the lease is extended; 410 and error lines re-list;
// shutdown leaves. The agent runs on a ManualClock that only the tests
// move, so its lease never lapses by accident.
#include <gtest/gtest.h>

#include <mutex>

#include "dataplane_agent/agent.h"
#include "dataplane_agent/grant_store.h"
#include "net/sync_http_client.h"
#include "tests/unit/agent/agent_test_util.h"
#include "tests/unit/agent/fake_controller.h"
#include "tests/unit/net/net_test_util.h"

namespace tenure::agent {
namespace {

using nlohmann::json;
using net::testing::IoThreads;
using net::testing::wait_until;
using testing::FakeController;
using testing::TempDir;
using namespace std::chrono_literals;

json shard(const std::string& id, uint64_t epoch, const std::string& state = "active") {
  return {{"id", id}, {"worker", "w1"}, {"epoch", epoch}, {"state", state}};
}
json event(uint64_t revision, const std::string& type, const std::string& shard_id, uint64_t epoch,
           int64_t at_ms = 0) {
  return {{"revision", revision}, {"type", type}, {"shard", shard_id}, {"worker", "w1"}, {"epoch", epoch},
          {"at_ms", at_ms}};
}

class AgentSessionTest : public ::testing::Test {
 protected:
  config::AgentConfig config() {
    config::AgentConfig c;
    c.worker_id = "w1";
    c.listen = {"127.0.0.1", 0};
    c.advertise = "127.0.0.1:9";
    c.controllers = {fake.address()};
    c.data_dir = dir.path();
    c.heartbeat_interval_ms = 20;
    c.auth.agent_token = "secret";
    return c;
  }
  void start(AgentOptions options = {}) {
    options.clock = &clock;
    agent = std::make_unique<Agent>(config(), std::move(options));
    auto started = agent->start();
    ASSERT_TRUE(started.ok()) << started.error().message;
  }
  net::ClientResult call(const std::string& method, const std::string& target, const std::string& body,
                         net::HeaderMap headers = {}) {
    net::ClientRequest req;
    req.method = method;
    req.target = target;
    req.body = body;
    req.headers = std::move(headers);
    return http.call("127.0.0.1:" + std::to_string(agent->port()), std::move(req));
  }
  bool holds(const std::string& s, uint64_t e) { return agent->fence(std::string_view(s), Epoch(e)).ok(); }

  IoThreads io{2};
  FakeController fake{io.ioc()};
  TempDir dir;
  ManualClock clock;
  net::SyncHttpClient http;
  std::unique_ptr<Agent> agent;
};

TEST_F(AgentSessionTest, RegisterWatchGrantFenceRevokeRelease) {
  fake.set_listing({{"revision", 10}, {"shards", json::array()}});
  start();
  ASSERT_TRUE(agent->wait_ready(5000ms));
  EXPECT_EQ(fake.last_authorization(), "Bearer secret");
  ASSERT_TRUE(wait_until([&] { return fake.watch_open(); }));
  EXPECT_EQ(fake.last_watch_target(), "/v1/watch?worker=w1&since=10");

  // A grant arrives on the watch, stamped 5 ms before "now".
  clock.set_wall_ms(1'700'000'000'005);
  ASSERT_TRUE(fake.push(event(11, "grant", "s-1", 1, 1'700'000'000'000)));
  ASSERT_TRUE(wait_until([&] { return holds("s-1", 1); }));
  EXPECT_EQ(agent->revision(), Revision(11));

  // Over HTTP: the fence and the fenced store.
  auto ok = call("POST", "/v1/fence", R"({"shard":"s-1","epoch":1})");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok.value().status, 200);
  EXPECT_EQ(json::parse(ok.value().body), (json{{"ok", true}}));
  auto put = call("PUT", "/v1/data/s-1/k", "hello", {{"tenure-epoch", "1"}});
  ASSERT_TRUE(put.ok());
  EXPECT_EQ(put.value().status, 200) << put.value().body;
  auto get = call("GET", "/v1/data/s-1/k", "");
  ASSERT_TRUE(get.ok());
  EXPECT_EQ(get.value().body, "hello");
  auto grants = json::parse(call("GET", "/v1/grants", "").value().body);
  EXPECT_EQ(grants, (json{{"worker", "w1"}, {"lease_valid", true}, {"revision", 11},
                          {"grants", json::array({{{"shard", "s-1"}, {"epoch", 1}}})}}));

  // The revoke: dropped, then released, then refused.
  ASSERT_TRUE(fake.push(event(12, "revoke", "s-1", 1)));
  ASSERT_TRUE(wait_until([&] { return !fake.releases().empty(); }));
  EXPECT_EQ(fake.releases()[0], (json{{"shards", json::array({{{"shard", "s-1"}, {"epoch", 1}}})}}));
  EXPECT_FALSE(holds("s-1", 1));
  auto refused = call("POST", "/v1/fence", R"({"shard":"s-1","epoch":1})");
  EXPECT_EQ(refused.value().status, 421);
  EXPECT_EQ(json::parse(refused.value().body)["error"], "not_owner");
  auto late_put = call("PUT", "/v1/data/s-1/k", "again", {{"tenure-epoch", "1"}});
  EXPECT_EQ(late_put.value().status, 421);

  std::string metrics = agent->metrics_text();
  EXPECT_NE(metrics.find("tenure_agent_grant_delay_seconds_count 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("tenure_agent_grant_delay_seconds_bucket{le=\"0.005\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("tenure_agent_fence_checks_total{result=\"not_owner\"}"), std::string::npos);
  EXPECT_NE(metrics.find("tenure_agent_lease_valid 1"), std::string::npos);
  EXPECT_NE(metrics.find("tenure_agent_grants 0"), std::string::npos);
  EXPECT_NE(metrics.find("tenure_agent_heartbeats_total{result=\"ok\"}"), std::string::npos);
}

TEST_F(AgentSessionTest, NoWriteBeforeRegisteredAndRelisted) {
  // Held before a restart, remembered on disk: not served until re-listed.
  {
    auto store = GrantStore::open(dir.file("agent.db"), WorkerId("w1"));
    ASSERT_TRUE(store.ok());
    GrantTable t;
    GrantChanges c(t);
    c.grant(ShardId("a"), Epoch(4));
    ASSERT_TRUE(store.value()->save(c).ok());
  }
  fake.set_heartbeat_mode(FakeController::HeartbeatMode::kUnavailable);
  fake.set_listing({{"revision", 3}, {"shards", json::array({shard("a", 4)})}});
  // The controllers are unreachable at first: nothing may be accepted.
  config::AgentConfig c = config();
  c.controllers = {"127.0.0.1:1"};
  agent = std::make_unique<Agent>(c, AgentOptions{&clock});
  ASSERT_TRUE(agent->start().ok());
  EXPECT_EQ(agent->fence(std::string_view("a"), Epoch(4)).code, FenceCode::kLeaseExpired);
  EXPECT_EQ(agent->fence(std::string_view("a"), Epoch(3)).code, FenceCode::kLeaseExpired);
  EXPECT_FALSE(agent->ready());
  agent->shutdown(100ms);
  // With the controllers reachable, it registers, re-lists, then serves.
  fake.set_heartbeat_mode(FakeController::HeartbeatMode::kOk);
  start();
  ASSERT_TRUE(agent->wait_ready(5000ms));
  EXPECT_GE(fake.registers(), 1);
  EXPECT_GE(fake.listings(), 1);
  EXPECT_TRUE(holds("a", 4));
}

TEST_F(AgentSessionTest, RelistFollowsEveryPageAndWatchesFromTheFirstPagesRevision) {
  fake.set_page_limit(2);
  fake.set_listing({{"revision", 40},
                    {"shards", json::array({shard("a", 1), shard("b", 2), shard("c", 3), shard("d", 4),
                                            shard("e", 5, "handoff")})}});
  start();
  ASSERT_TRUE(agent->wait_ready(5000ms));
  EXPECT_EQ(fake.listings(), 3);  // pages of 2, 2 and 1
  for (auto [s, e] : {std::pair{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}}) EXPECT_TRUE(holds(s, e)) << s;
  EXPECT_FALSE(holds("e", 5));  // listed in handoff: revoked
  // Later pages were read at revisions 41 and 42: the watch starts from the
  // first page's, so nothing changed while they were read is missed.
  ASSERT_TRUE(wait_until([&] { return fake.watch_open(); }));
  EXPECT_NE(fake.last_watch_target().find("since=40"), std::string::npos) << fake.last_watch_target();
  // A replayed grant of the listed epoch changes nothing; a shard revoked
  // meanwhile (seen on a later page only as its event) is dropped.
  ASSERT_TRUE(fake.push(event(41, "grant", "a", 1)));
  ASSERT_TRUE(fake.push(event(42, "revoke", "c", 3)));
  ASSERT_TRUE(wait_until([&] { return !holds("c", 3); }));
  EXPECT_TRUE(holds("a", 1));
}

TEST_F(AgentSessionTest, WorkerDeadDropsEveryGrantDurablyAndRegistersAgain) {
  fake.set_listing({{"revision", 5}, {"shards", json::array({shard("a", 2), shard("b", 7)})}});
  start();
  ASSERT_TRUE(agent->wait_ready(5000ms));
  ASSERT_TRUE(holds("a", 2) && holds("b", 7));
  // Declared dead: its shards went elsewhere; the re-list after registering
  // again shows none of them.
  fake.set_listing({{"revision", 9}, {"shards", json::array()}});
  fake.set_heartbeat_mode(FakeController::HeartbeatMode::kWorkerDeadOnce);
  ASSERT_TRUE(wait_until([&] { return fake.registers() >= 2 && fake.listings() >= 2; }));
  ASSERT_TRUE(wait_until([&] { return agent->ready(); }));
  EXPECT_TRUE(agent->grants().empty());
  EXPECT_EQ(agent->fence(std::string_view("a"), Epoch(2)).code, FenceCode::kNotOwner);
  EXPECT_EQ(agent->fence(std::string_view("b"), Epoch(6)).code, FenceCode::kStaleEpoch);
  EXPECT_TRUE(fake.releases().empty());  // nothing to confirm: the controllers moved them
  agent->shutdown();
  agent.reset();
  auto store = GrantStore::open(dir.file("agent.db"), WorkerId("w1"));
  ASSERT_TRUE(store.ok());
  auto loaded = store.value()->load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded.value().records.at("a"), (ShardRecord{Epoch(2), Epoch(2), false}));
  EXPECT_EQ(loaded.value().records.at("b"), (ShardRecord{Epoch(7), Epoch(7), false}));
}

TEST_F(AgentSessionTest, NotRegisteredHeartbeatRegistersAgain) {
  fake.set_listing({{"revision", 5}, {"shards", json::array({shard("a", 2)})}});
  start();
  ASSERT_TRUE(agent->wait_ready(5000ms));
  fake.set_heartbeat_mode(FakeController::HeartbeatMode::kNotRegisteredOnce);
  ASSERT_TRUE(wait_until([&] { return fake.registers() >= 2 && fake.listings() >= 2; }));
  ASSERT_TRUE(wait_until([&] { return agent->ready(); }));
  EXPECT_TRUE(holds("a", 2));  // listed again: held again
}

TEST_F(AgentSessionTest, HeartbeatRevokesBeforeItExtendsTheLease) {
  // Record, at every install and lease extension, whether "a" is still held.
  std::mutex mu;
  std::vector<std::pair<std::string, bool>> trace;
  Agent* raw = nullptr;
  AgentOptions options;
  options.trace = [&](std::string_view what) {
    bool held = false;
    for (const auto& g : raw->grants()) held = held || g.shard == ShardId("a");
    std::lock_guard lock(mu);
    trace.emplace_back(std::string(what), held);
  };
  fake.set_listing({{"revision", 5}, {"shards", json::array({shard("a", 2)})}});
  options.clock = &clock;
  agent = std::make_unique<Agent>(config(), options);
  raw = agent.get();
  ASSERT_TRUE(agent->start().ok());
  ASSERT_TRUE(agent->wait_ready(5000ms));
  ASSERT_TRUE(holds("a", 2));

  // From the first answer that lists "a" as revoked, record where the trace was.
  size_t mark = SIZE_MAX;
  fake.on_revoking_answer([&] {
    std::lock_guard lock(mu);
    if (mark == SIZE_MAX) mark = trace.size();
  });
  fake.set_revoked(json::array({{{"shard", "a"}, {"epoch", 2}}}));
  ASSERT_TRUE(wait_until([&] { return !fake.releases().empty(); }));
  ASSERT_TRUE(wait_until([&] {
    std::lock_guard lock(mu);
    return trace.size() > mark + 1;
  }));
  std::lock_guard lock(mu);
  // Every earlier answer completed before the revoking one was requested
  // (one heartbeat in flight at a time), so what follows `mark` is its work:
  // first the durable drop, then the extension, never with "a" held.
  EXPECT_EQ(trace[mark], (std::pair<std::string, bool>("install", false)));
  for (size_t i = mark; i < trace.size(); ++i) {
    if (trace[i].first == "extend_lease") {
      EXPECT_FALSE(trace[i].second) << "extended at trace[" << i << "] with a held";
    }
  }
  EXPECT_EQ(fake.releases()[0], (json{{"shards", json::array({{{"shard", "a"}, {"epoch", 2}}})}}));
}

TEST_F(AgentSessionTest, LeaseWaitsForTheWatchToReachTheWorkerRevision) {
  // The leader's state has an event of ours at revision 9 (a grant taken
  // from us while our watch lagged, say) that the watch has not brought:
  // answered heartbeats must not keep the lease over a table without it.
  fake.set_listing({{"revision", 5}, {"shards", json::array({shard("a", 2), shard("b", 4)})}});
  start();
  ASSERT_TRUE(agent->wait_ready(5000ms));
  ASSERT_TRUE(wait_until([&] { return fake.watch_open(); }));
  fake.set_worker_revision(9);
  int seen = fake.heartbeats();
  ASSERT_TRUE(wait_until([&] { return fake.heartbeats() >= seen + 3; }));
  // Every answer since needs revision 9; the ones before have run out.
  clock.advance(2750ms);
  EXPECT_EQ(agent->fence(std::string_view("b"), Epoch(4)).code, FenceCode::kLeaseExpired);
  auto r = call("PUT", "/v1/data/b/k", "v", {{"tenure-epoch", "4"}});
  EXPECT_EQ(r.value().status, 503);
  // The watch brings the event: "a" was revoked. The lease comes back, for "b" only.
  ASSERT_TRUE(fake.push(event(9, "revoke", "a", 2)));
  ASSERT_TRUE(wait_until([&] { return holds("b", 4); }));
  EXPECT_EQ(agent->fence(std::string_view("a"), Epoch(2)).code, FenceCode::kNotOwner);
  EXPECT_EQ(agent->revision(), Revision(9));
  std::string metrics = agent->metrics_text();
  EXPECT_NE(metrics.find("tenure_agent_lease_extensions_deferred_total "), std::string::npos) << metrics;
  EXPECT_EQ(metrics.find("tenure_agent_lease_extensions_deferred_total 0\n"), std::string::npos) << metrics;
}

TEST_F(AgentSessionTest, LeaseLapsesWithoutAnsweredHeartbeats) {
  fake.set_listing({{"revision", 5}, {"shards", json::array({shard("a", 2)})}});
  start();
  ASSERT_TRUE(agent->wait_ready(5000ms));
  fake.set_heartbeat_mode(FakeController::HeartbeatMode::kUnavailable);
  // Let any answer already on its way land, then move time past the lease:
  // 3000 ms * 0.95 - 100 ms = 2750 ms after the last acknowledged send.
  int seen = fake.heartbeats();
  ASSERT_TRUE(wait_until([&] { return fake.heartbeats() >= seen + 2; }));
  clock.advance(2750ms);
  EXPECT_EQ(agent->fence(std::string_view("a"), Epoch(2)).code, FenceCode::kLeaseExpired);
  auto r = call("PUT", "/v1/data/a/k", "v", {{"tenure-epoch", "2"}});
  EXPECT_EQ(r.value().status, 503);
  EXPECT_EQ(json::parse(r.value().body)["error"], "lease_expired");
  // Renewed: accepted again.
  fake.set_heartbeat_mode(FakeController::HeartbeatMode::kOk);
  ASSERT_TRUE(wait_until([&] { return holds("a", 2); }));
}

TEST_F(AgentSessionTest, CompactedWatchRelists) {
  fake.set_listing({{"revision", 5}, {"shards", json::array({shard("z", 3)})}});
  fake.fail_next_watch(410, R"({"error":"compacted","message":"gone"})");
  start();
  // The first watch is refused with 410: the agent lists again, then watches.
  ASSERT_TRUE(wait_until([&] { return fake.listings() >= 2 && fake.watch_open(); }));
  EXPECT_EQ(fake.last_watch_target(), "/v1/watch?worker=w1&since=5");
  EXPECT_TRUE(holds("z", 3));
}

TEST_F(AgentSessionTest, ErrorLineRelistsAndEndedStreamReconnects) {
  fake.set_listing({{"revision", 5}, {"shards", json::array()}});
  start();
  ASSERT_TRUE(wait_until([&] { return fake.watch_open(); }));
  ASSERT_TRUE(fake.push(event(6, "grant", "g", 1)));
  ASSERT_TRUE(wait_until([&] { return holds("g", 1); }));
  // A progress line moves the revision; a clean end makes it reconnect from there.
  ASSERT_TRUE(fake.push({{"type", "progress"}, {"revision", 8}}));
  ASSERT_TRUE(wait_until([&] { return agent->revision() == Revision(8); }));
  fake.end_watch();
  ASSERT_TRUE(wait_until([&] { return fake.last_watch_target() == "/v1/watch?worker=w1&since=8" && fake.watch_open(); }));
  // An error line: the events in between may be lost, so list again.
  fake.set_listing({{"revision", 20}, {"shards", json::array()}});
  ASSERT_TRUE(fake.push({{"error", "too_slow"}, {"message", "cut off"}, {"revision", 8}}));
  ASSERT_TRUE(wait_until([&] { return fake.last_watch_target() == "/v1/watch?worker=w1&since=20"; }));
  EXPECT_FALSE(holds("g", 1));  // not in the new listing: dropped
  EXPECT_GE(fake.listings(), 2);
}

TEST_F(AgentSessionTest, ShutdownStopsWritesAndLeaves) {
  fake.set_listing({{"revision", 5}, {"shards", json::array({shard("a", 2)})}});
  start();
  ASSERT_TRUE(agent->wait_ready(5000ms));
  agent->shutdown();
  EXPECT_EQ(fake.leaves(), 1);
  EXPECT_EQ(agent->fence(std::string_view("a"), Epoch(2)).code, FenceCode::kLeaseExpired);
  agent.reset();
  auto store = GrantStore::open(dir.file("agent.db"), WorkerId("w1"));
  ASSERT_TRUE(store.ok());
  auto loaded = store.value()->load();
  ASSERT_TRUE(loaded.ok());
  EXPECT_FALSE(loaded.value().records.at("a").held);  // left: nothing held after a restart
  EXPECT_EQ(loaded.value().records.at("a").max_epoch, Epoch(2));
}

/// An embedding program: records every callback; holds a drain until told.
class RecordingHandler final : public ProgramHandler {
 public:
  void on_grant(const ShardId& s, Epoch e, const std::string& reason) override {
    add("grant:" + s.str() + "@" + std::to_string(e.value()) + ":" + reason);
  }
  void on_drain(const ShardId& s, Epoch e, std::function<void()> done) override {
    std::lock_guard lock(mu_);
    drain_done_ = std::move(done);
    calls_.push_back("drain:" + s.str() + "@" + std::to_string(e.value()));
  }
  void on_revoke(const ShardId& s, Epoch e, const std::string& reason) override {
    add("revoke:" + s.str() + "@" + std::to_string(e.value()) + ":" + reason);
  }
  void on_lease_lost() override { add("lease_lost"); }
  void on_prepare(const ShardId& s, Epoch e, std::function<void()> done) override {
    std::lock_guard lock(mu_);
    prepare_done_ = std::move(done);
    calls_.push_back("prepare:" + s.str() + "@" + std::to_string(e.value()));
  }
  void finish_prepare() {
    std::function<void()> done;
    {
      std::lock_guard lock(mu_);
      done = std::move(prepare_done_);
    }
    if (done) done();
  }
  /// The position of `call` among the calls so far (their count if absent).
  size_t index(const std::string& call) {
    std::lock_guard lock(mu_);
    return static_cast<size_t>(std::find(calls_.begin(), calls_.end(), call) - calls_.begin());
  }
  bool has(const std::string& call) {
    std::lock_guard lock(mu_);
    return std::find(calls_.begin(), calls_.end(), call) != calls_.end();
  }
  void finish_drain() {
    std::function<void()> done;
    {
      std::lock_guard lock(mu_);
      done = std::move(drain_done_);
    }
    if (done) done();
  }

 private:
  void add(std::string call) {
    std::lock_guard lock(mu_);
    calls_.push_back(std::move(call));
  }
  std::mutex mu_;
  std::vector<std::string> calls_;
  std::function<void()> drain_done_;
  std::function<void()> prepare_done_;
};

TEST_F(AgentSessionTest, AHandlerHearsPreparesGrantsDrainsRevokesAndALostLease) {
  fake.set_listing({{"revision", 5}, {"shards", json::array({shard("a", 2)})}});
  auto handler = std::make_shared<RecordingHandler>();
  AgentOptions options;
  options.handler = handler;
  start(std::move(options));
  ASSERT_TRUE(agent->wait_ready(5000ms));
  ASSERT_TRUE(wait_until([&] { return handler->has("grant:a@2:granted"); }));
  ASSERT_TRUE(wait_until([&] { return fake.watch_open(); }));
  // A planned move: the handler drains first, the fence admits meanwhile.
  ASSERT_TRUE(fake.push(event(6, "revoke", "a", 2)));
  ASSERT_TRUE(wait_until([&] { return handler->has("drain:a@2"); }));
  EXPECT_TRUE(holds("a", 2)) << "served while the program drains";
  EXPECT_TRUE(fake.releases().empty()) << "released before the drain finished";
  handler->finish_drain();
  ASSERT_TRUE(wait_until([&] { return !fake.releases().empty(); }));
  ASSERT_TRUE(wait_until([&] { return handler->has("revoke:a@2:handoff"); }));
  EXPECT_FALSE(holds("a", 2));
  // The target of a planned move: the handler prepares, the controllers
  // hear "prepared" only once it answered, and the grant comes after.
  EXPECT_EQ(fake.last_register().value("prepares", false), true) << "an agent with a program says it prepares";
  ASSERT_TRUE(fake.push(event(7, "prepare", "b", 4)));
  ASSERT_TRUE(wait_until([&] { return handler->has("prepare:b@4"); }));
  EXPECT_FALSE(holds("b", 4)) << "prepared is not granted";
  EXPECT_TRUE(fake.prepareds().empty()) << "reported before the program answered";
  handler->finish_prepare();
  ASSERT_TRUE(wait_until([&] { return !fake.prepareds().empty(); }));
  EXPECT_EQ(fake.prepareds()[0]["shards"][0]["shard"], "b");
  EXPECT_EQ(fake.prepareds()[0]["shards"][0]["epoch"], 4);
  ASSERT_TRUE(fake.push(event(8, "grant", "b", 4)));
  ASSERT_TRUE(wait_until([&] { return handler->has("grant:b@4:granted"); }));
  EXPECT_LT(handler->index("prepare:b@4"), handler->index("grant:b@4:granted"));
  EXPECT_TRUE(holds("b", 4));
  // The lease lapses: told once.
  fake.set_heartbeat_mode(FakeController::HeartbeatMode::kUnavailable);
  int seen = fake.heartbeats();
  ASSERT_TRUE(wait_until([&] { return fake.heartbeats() >= seen + 2; }));
  clock.advance(2750ms);
  ASSERT_TRUE(wait_until([&] { return handler->has("lease_lost"); }));
}

}  // namespace
}  // namespace tenure::agent
