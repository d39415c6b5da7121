// Fuzzes raw HTTP request bytes through the server's parser into the
// routers: the bytes are read as a connection reads them (Beast's request
// parser under the controller listener's limits, in 16 KiB reads, pipelined
// requests one after the other; net/detail/request_parse.h holds the steps
// both share), and each complete request goes to the real ControllerApi of
// a single-member group and to a real agent HttpApi (fuzz/api_harness.h).
// Whatever the bytes: no crash, no exception, no hang; every answer is one
// well-formed HTTP/1.1 response with a status below 500 (503 only with a
// code the contract allows), whose JSON body parses, an error is
// {"error", "message"}, and a request the controller refused (4xx) left
// its revision as it was.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

#include <boost/beast/core/flat_buffer.hpp>

#include "peers/wire_limits.h"
#include "fuzz/api_harness.h"
#include "net/detail/request_parse.h"

namespace {
using namespace tenure;
namespace http = boost::beast::http;

constexpr size_t kReadChunkBytes = 16 << 10;  // as net/server_connection.cc reads
constexpr size_t kMaxShards = 20000;          // past this the group is made anew (memory)

std::unique_ptr<fuzzing::ControllerHarness> g_controller;
std::unique_ptr<fuzzing::AgentHarness> g_agent;

/// The controller's listener options (controller/controller_app.cc).
net::ServerOptions listener_options() {
  net::ServerOptions o;
  o.body_limits = {net::BodyLimit{"/raft/", peers::kPeerMaxBodyBytes}};
  return o;
}

void answer_refusal(const boost::system::error_code& ec, size_t body_limit, const net::ServerOptions& o) {
  net::detail::Refusal r = net::detail::refusal(ec, body_limit, o.max_header_bytes);
  int status = fuzzing::check_answer({r.raw, false}, false, "refused by the parser: " + ec.message());
  if (status != 400 && status != 413 && status != 431) fuzzing::fail("refusal with " + r.raw, ec.message());
}

/// One complete request, as ServerConnection::dispatch hands it on.
void dispatch(net::detail::RequestMessage&& msg) {
  net::HttpRequest req = net::detail::to_request(std::move(msg), "127.0.0.1:40000", false, nullptr);
  if (std::string bad = net::detail::non_utf8_part(req); !bad.empty()) return;  // 400 at the edge
  net::HttpRequest copy = req;
  std::string context = req.method + " " + req.target;
  g_controller->ensure_leader();
  uint64_t before = g_controller->revision();
  int status = g_controller->call(std::move(req)).status;
  // CONTRACT.md "Limits": a refused request changes nothing.
  if (status >= 400 && status < 500 && g_controller->revision() != before) {
    fuzzing::fail("a refused request (" + std::to_string(status) + ") changed the revision", context);
  }
  g_agent->call(std::move(copy));
}
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_controller = std::make_unique<fuzzing::ControllerHarness>();
  g_agent = std::make_unique<fuzzing::AgentHarness>();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const net::ServerOptions opts = listener_options();
  boost::beast::flat_buffer buffer(opts.max_header_bytes + kReadChunkBytes);
  std::optional<net::detail::RequestParser> parser;
  size_t body_limit = opts.max_body_bytes;
  bool limit_chosen = false;
  size_t offset = 0;
  // net/server_connection.cc's process_input and maybe_read, minus the socket.
  while (true) {
    while (buffer.size() > 0) {
      if (!parser) {
        parser.emplace();
        net::detail::limit_parser(*parser, opts);
        body_limit = opts.max_body_bytes;
        limit_chosen = opts.body_limits.empty();
      }
      if (!parser->is_header_done() && !limit_chosen) {
        auto in = buffer.data();
        auto limit = net::detail::body_limit_for(opts, {static_cast<const char*>(in.data()), in.size()});
        if (limit) {
          limit_chosen = true;
          body_limit = *limit;
          parser->body_limit(*limit);
        }
      }
      boost::beast::error_code ec;
      size_t n = parser->put(buffer.data(), ec);
      buffer.consume(n);
      if (ec == http::error::need_more) break;
      if (ec) {
        answer_refusal(ec, body_limit, opts);
        return 0;  // the connection closes after a refusal
      }
      if (parser->is_done()) {
        auto msg = parser->release();
        parser.reset();
        bool keep_alive = msg.keep_alive();
        dispatch(std::move(msg));
        if (!keep_alive) return 0;  // nothing is read after "Connection: close"
        continue;
      }
      if (n == 0) break;
    }
    if (offset == size) break;  // the client's EOF: a partial request gets no answer
    size_t room = buffer.max_size() - buffer.size();
    if (room == 0) {
      answer_refusal(http::error::header_limit, body_limit, opts);
      return 0;
    }
    size_t take = std::min({room, kReadChunkBytes, size - offset});
    auto space = buffer.prepare(take);
    std::memcpy(space.data(), data + offset, take);
    buffer.commit(take);
    offset += take;
  }
  if (g_controller->shards() > kMaxShards) g_controller = std::make_unique<fuzzing::ControllerHarness>();
  return 0;
}
