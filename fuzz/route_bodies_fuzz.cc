// Structure-aware: the JSON (or wire) body of each controller and agent
// route that reads one. The first byte picks the route, the rest is the
// body, handed to the real ControllerApi of a single-member group (which
// holds shards s-1..s-3 and workers w1, w2) or to a real agent HttpApi
// (fuzz/api_harness.h), so it goes through the routes' own parsing and
// validation (api/json_body.cc and the handlers) and, when accepted, is
// proposed and applied. Whatever the body: no crash, no exception, no hang,
// a well-formed answer below 500 (503 only with a code the contract allows)
// whose JSON parses, and a refused body (4xx) changes nothing: the
// revision is the same before and after.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "fuzz/api_harness.h"

namespace {
using namespace tenure;

struct RouteCase {
  const char* method;
  const char* target;
  bool agent = false;
};

// Every route whose handler reads the body. Ids name what the harness made.
constexpr RouteCase kRoutes[] = {
    {"POST", "/v1/shards"},
    {"POST", "/v1/shards/s-1/move"},
    {"POST", "/v1/shards/s-2/move"},
    {"POST", "/v1/workers/w1/drain"},
    {"POST", "/v1/workers/w2/undrain"},
    {"POST", "/v1/workers/w3/register"},
    {"POST", "/v1/workers/w1/register"},
    {"POST", "/v1/workers/w1/heartbeat"},
    {"POST", "/v1/workers/w1/release"},
    {"POST", "/v1/workers/w2/release"},
    {"POST", "/v1/workers/w1/prepared"},
    {"POST", "/v1/members"},
    {"POST", "/v1/members/transfer-leadership"},
    {"POST", "/raft/messages"},
    {"POST", "/raft/snapshot/chunk?transfer=t1&offset=0"},
    {"POST", "/raft/snapshot/done?transfer=t1&total=0"},
    {"POST", "/v1/fence", true},
    {"PUT", "/v1/data/s-1/k", true},
    {"PUT", "/v1/data/s-2/k", true},
};
constexpr size_t kRouteCount = sizeof(kRoutes) / sizeof(kRoutes[0]);
constexpr size_t kMaxShards = 20000;  // past this the group is made anew (memory)

std::unique_ptr<fuzzing::ControllerHarness> g_controller;
std::unique_ptr<fuzzing::AgentHarness> g_agent;

void expect_status(const fuzzing::Answer& a, int want, const std::string& what) {
  int got = a.status;
  if (got != want) fuzzing::fail("setup answered " + std::to_string(got) + ", not " + std::to_string(want), what);
}

/// A group holding shards s-1..s-3, s-1 on w1, and workers w1 and w2.
std::unique_ptr<fuzzing::ControllerHarness> make_controller() {
  auto c = std::make_unique<fuzzing::ControllerHarness>();
  expect_status(c->call(fuzzing::make_request("POST", "/v1/shards", R"({"ids": ["s-1", "s-2", "s-3"]})")), 201,
                "create");
  for (const char* w : {"w1", "w2"}) {
    expect_status(c->call(fuzzing::make_request("POST", std::string("/v1/workers/") + w + "/register",
                                                 R"({"address": "127.0.0.1:8101", "zone": "z1"})")),
                  200, "register");
  }
  expect_status(c->call(fuzzing::make_request("POST", "/v1/shards/s-1/move", R"({"to": "w1"})")), 202, "move");
  return c;
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_controller = make_controller();
  g_agent = std::make_unique<fuzzing::AgentHarness>();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const RouteCase& route = kRoutes[data[0] % kRouteCount];
  std::string body(reinterpret_cast<const char*>(data + 1), size - 1);
  net::HttpRequest req = fuzzing::make_request(route.method, route.target, std::move(body));
  if (route.agent) {
    req.headers["tenure-epoch"] = "3";
    g_agent->call(std::move(req));
    return 0;
  }
  req.headers["tenure-from"] = "c2";
  std::string context = std::string(route.method) + " " + route.target + " body=" + req.body;
  g_controller->ensure_leader();
  uint64_t before = g_controller->revision();
  int status = g_controller->call(std::move(req)).status;
  if (status >= 400 && status < 500) {
    uint64_t after = g_controller->revision();
    if (after != before) {
      fuzzing::fail("a refused body (" + std::to_string(status) + ") changed the revision " + std::to_string(before) +
                        " -> " + std::to_string(after),
                    context);
    }
  }
  if (g_controller->shards() > kMaxShards) g_controller = make_controller();
  return 0;
}
