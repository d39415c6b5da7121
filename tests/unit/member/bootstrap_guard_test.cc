// controller/bootstrap_guard.cc: before a member bootstraps a group from an
// empty data_dir it asks its peers whether it took part already. Each case
// the guard decides, against real HTTP peers on 127.0.0.1 that answer
// GET /v1/members as a test scripts them.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include "member/bootstrap_guard.h"
#include "net/http_server.h"

namespace tenure::member {
namespace {

using Kind = BootstrapVerdict::Kind;

/// A peer whose GET /v1/members answer a test sets; it records the
/// Authorization field of each call.
class FakePeer {
 public:
  explicit FakePeer(boost::asio::io_context& ioc)
      : server_(ioc, net::ServerOptions{}, [this](net::HttpRequest req, std::shared_ptr<net::Responder> res) {
          std::lock_guard lock(mu_);
          ++calls_;
          last_authorization_ = req.header("authorization");
          net::HttpResponse r;
          r.status = req.path == "/v1/members" ? status_ : 404;
          r.body = body_;
          res->reply(std::move(r));
        }) {
    auto started = server_.start();
    EXPECT_TRUE(started.ok());
  }
  void answer(int status, std::string body) {
    std::lock_guard lock(mu_);
    status_ = status;
    body_ = std::move(body);
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server_.port()); }
  int calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }
  std::string last_authorization() {
    std::lock_guard lock(mu_);
    return last_authorization_;
  }

 private:
  std::mutex mu_;
  int status_ = 200;
  std::string body_ = R"({"members": []})";
  int calls_ = 0;
  std::string last_authorization_;
  net::HttpServer server_;  // last: stopped before the state its handler reads
};

/// A 127.0.0.1 port nothing listens on: a server bound it and closed.
std::string closed_address(boost::asio::io_context& ioc) {
  net::HttpServer s(ioc, net::ServerOptions{}, [](net::HttpRequest, std::shared_ptr<net::Responder>) {});
  EXPECT_TRUE(s.start().ok());
  std::string address = "127.0.0.1:" + std::to_string(s.port());
  s.stop();
  return address;
}

class BootstrapGuardTest : public ::testing::Test {
 protected:
  BootstrapGuardTest() : guard_(ioc_.get_executor()), thread_([this] { ioc_.run(); }) {}
  ~BootstrapGuardTest() override {
    guard_.reset();
    ioc_.stop();
    thread_.join();
  }

  config::ControllerConfig config(const std::vector<std::pair<std::string, std::string>>& others) {
    config::ControllerConfig c;
    c.node_id = "c1";
    c.data_dir = "/var/lib/tenure/c1";
    c.peers.push_back({"c1", "127.0.0.1:1"});  // itself: never asked
    for (const auto& [id, address] : others) c.peers.push_back({id, address});
    return c;
  }

  static std::string members(const std::string& json_members) { return R"({"members": [)" + json_members + "]}"; }

  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

TEST_F(BootstrapGuardTest, AGroupOfOneProceedsWithoutAsking) {
  auto v = check_bootstrap(config({}));
  EXPECT_EQ(v.kind, Kind::kProceed);
}

TEST_F(BootstrapGuardTest, PeersThatHaveNotStartedLetItBootstrap) {
  FakePeer c2(ioc_), c3(ioc_);  // a new group: nobody has a member list yet
  auto v = check_bootstrap(config({{"c2", c2.address()}, {"c3", c3.address()}}));
  EXPECT_EQ(v.kind, Kind::kProceed);
  EXPECT_EQ(c2.calls(), 1);
  EXPECT_EQ(c3.calls(), 1);
}

TEST_F(BootstrapGuardTest, APeerRunningAGroupWithoutThisMemberRefuses) {
  // c1 was removed from the group (chaos seeds 301 and 302: two removed
  // members restarted empty with their first config bootstrapped a group of
  // their own, and its leader's newer terms deposed the real group's).
  FakePeer c2(ioc_), c3(ioc_);
  c2.answer(200, members(R"({"id": "c2", "started": true}, {"id": "c4", "started": true})"));
  auto v = check_bootstrap(config({{"c2", c2.address()}, {"c3", c3.address()}}));
  ASSERT_EQ(v.kind, Kind::kRefuse);
  for (const char* part : {"data_dir /var/lib/tenure/c1 is empty", "peer c2 runs a group without member c1",
                           "members: c2, c4", "tenurectl members add c1"}) {
    EXPECT_NE(v.reason.find(part), std::string::npos) << part << " not in: " << v.reason;
  }
  EXPECT_EQ(v.reason.find('\n'), std::string::npos) << "one line";
}

TEST_F(BootstrapGuardTest, AMemberListedButNeverStartedMayBootstrap) {
  // An initial member that has not started yet is in the peers' list too.
  FakePeer c2(ioc_);
  c2.answer(200, members(R"({"id": "c1", "started": false}, {"id": "c2", "started": true})"));
  EXPECT_EQ(check_bootstrap(config({{"c2", c2.address()}})).kind, Kind::kProceed);
  c2.answer(200, members(R"({"id": "c1"})"));  // no "started": not started
  EXPECT_EQ(check_bootstrap(config({{"c2", c2.address()}})).kind, Kind::kProceed);
}

TEST_F(BootstrapGuardTest, APeerThatSawThisMemberStartRefusesAndSaysWhatToDo) {
  FakePeer c2(ioc_), c3(ioc_);
  c2.answer(200, members(R"({"id": "c1", "started": false}, {"id": "c2", "started": true})"));
  c3.answer(200, members(R"({"id": "c1", "started": true}, {"id": "c3", "started": true})"));
  auto v = check_bootstrap(config({{"c2", c2.address()}, {"c3", c3.address()}}));
  ASSERT_EQ(v.kind, Kind::kRefuse);
  for (const char* part : {"data_dir /var/lib/tenure/c1 is empty", "member c1 already took part", "peer c3",
                           "tenurectl members remove c1"}) {
    EXPECT_NE(v.reason.find(part), std::string::npos) << part << " not in: " << v.reason;
  }
  EXPECT_EQ(v.reason.find('\n'), std::string::npos) << "one line";
}

TEST_F(BootstrapGuardTest, TheRefusalNamesAFewMembersOfAHugeList) {
  // A peer listing 10,000 members with 128-character ids: one short line.
  FakePeer c2(ioc_);
  std::string many;
  for (int i = 0; i < 10000; ++i) {
    std::string id = std::string(123, 'x') + std::to_string(10000 + i);
    many += std::string(many.empty() ? "" : ", ") + R"({"id": ")" + id + R"(", "started": true})";
  }
  c2.answer(200, members(many));
  auto v = check_bootstrap(config({{"c2", c2.address()}}));
  ASSERT_EQ(v.kind, Kind::kRefuse);
  EXPECT_NE(v.reason.find("and 9992 more"), std::string::npos) << v.reason.substr(0, 200);
  EXPECT_LT(v.reason.size(), 1000u);
}

TEST_F(BootstrapGuardTest, OneRefusalWinsOverPeersThatAreDown) {
  FakePeer c3(ioc_);
  c3.answer(200, members(R"({"id": "c1", "started": true})"));
  auto v = check_bootstrap(config({{"c2", closed_address(ioc_)}, {"c3", c3.address()}}));
  EXPECT_EQ(v.kind, Kind::kRefuse);
}

TEST_F(BootstrapGuardTest, NoUsableAnswerMeansAskAgainNeverProceed) {
  // Down, an error status, or a body that is not a member list: none of
  // these vouches for anything, so the member must not bootstrap yet.
  EXPECT_EQ(check_bootstrap(config({{"c2", closed_address(ioc_)}})).kind, Kind::kNoAnswer);
  FakePeer c2(ioc_);
  for (auto [status, body] : std::vector<std::pair<int, std::string>>{
           {503, R"({"error": "no_leader", "message": "no leader known"})"},
           {401, R"({"error": "unauthorized", "message": "token"})"},
           {500, members("")},  // a member list under an error status is no answer either
           {200, "not json"},
           {200, R"({"members": "c1"})"},
           {200, R"({"nodes": []})"},
           {200, "[]"}}) {
    c2.answer(status, body);
    auto v = check_bootstrap(config({{"c2", c2.address()}, {"c3", closed_address(ioc_)}}));
    EXPECT_EQ(v.kind, Kind::kNoAnswer) << status << " " << body;
  }
  // One usable answer among failures is enough.
  c2.answer(200, members(""));
  EXPECT_EQ(check_bootstrap(config({{"c2", c2.address()}, {"c3", closed_address(ioc_)}})).kind, Kind::kProceed);
}

TEST_F(BootstrapGuardTest, ThePeerTokenIsSentWhenAuthIsOn) {
  FakePeer c2(ioc_);
  auto c = config({{"c2", c2.address()}});
  EXPECT_EQ(check_bootstrap(c).kind, Kind::kProceed);
  EXPECT_EQ(c2.last_authorization(), "");
  c.auth.admin_token = "admin-secret";
  c.auth.agent_token = "agent-secret";
  c.auth.peer_token = "peer-secret";
  EXPECT_EQ(check_bootstrap(c).kind, Kind::kProceed);
  EXPECT_EQ(c2.last_authorization(), "Bearer peer-secret");
}

}  // namespace
}  // namespace tenure::member
