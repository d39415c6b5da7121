#pragma once
// The real controller and agent HTTP APIs without sockets, for the
// http_router and route_bodies fuzz targets: a single-member controller
// group (RaftNode on SQLite in a temp dir, Supervisor, ControllerApi) and an
// agent's HttpApi (FenceState, DataStore), each answering requests through a
// net::Responder whose output is read back as the bytes a connection would
// write. Everything runs on the calling thread (the io_context is run until
// the answer is complete), except the storage's own writer threads.

#include <cstdint>
#include <memory>
#include <string>

#include "net/http_types.h"

namespace tenure::fuzzing {

/// One answer: the raw HTTP/1.1 bytes, as the server would write them.
struct Answer {
  std::string raw;
  bool stream = false;  ///< a stream was started: `raw` is its head and first chunks
  int status = 0;       ///< set by the harnesses' call(), once check_answer passed
};

/// Aborts with `what` and the input's context (a finding).
[[noreturn]] void fail(const std::string& what, const std::string& context);

/// Checks that `a` is one well-formed HTTP/1.1 response (a stream: a
/// well-formed head) with a status below 500, or 503 with one of the codes
/// the contract allows; that a JSON body parses, and that an error body is
/// {"error", "message"}. Returns the status.
int check_answer(const Answer& a, bool head, const std::string& context);

class ControllerHarness {
 public:
  ControllerHarness();
  ~ControllerHarness();
  ControllerHarness(const ControllerHarness&) = delete;
  ControllerHarness& operator=(const ControllerHarness&) = delete;

  /// Hands `req` to ControllerApi::handle as the server does, and runs the
  /// node until the answer is complete (a stream: started, then closed as a
  /// client leaving would). No answer within 5 s is a finding.
  Answer call(net::HttpRequest req);
  /// Runs the node until it leads (a forged peer message may depose it).
  void ensure_leader();
  /// The applied revision and the number of shards, read on the strand.
  uint64_t revision();
  size_t shards();

 private:
  struct Parts;
  std::unique_ptr<Parts> p_;
};

class AgentHarness {
 public:
  /// The agent holds s-1 at epoch 3 and s-2 at epoch 1 with a valid lease.
  AgentHarness();
  ~AgentHarness();
  AgentHarness(const AgentHarness&) = delete;
  AgentHarness& operator=(const AgentHarness&) = delete;

  /// Hands `req` to HttpApi::handle and waits for the answer (a PUT is
  /// answered from the store's writer thread). No answer within 5 s is a finding.
  Answer call(net::HttpRequest req);

 private:
  struct Parts;
  std::unique_ptr<Parts> p_;
};

/// A request as a client would send it (method, target, body), with the
/// path and query decoded as the server does.
net::HttpRequest make_request(const std::string& method, const std::string& target, std::string body);

}  // namespace tenure::fuzzing
