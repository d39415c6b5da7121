// The receiving side of the peer transport: /raft/messages and chunked snapshots.
#include <mutex>

#include "api/controller_api.h"
#include "common/crc32c.h"
#include "controller/raft_wire.h"

namespace tenure::api {

namespace {
constexpr size_t kMaxSnapshotBytes = size_t(2) << 30;

net::HttpResponse no_content() {
  net::HttpResponse r;
  r.status = 204;
  r.content_type.clear();
  return r;
}

std::optional<uint64_t> parse_u64(const std::optional<std::string>& s) {
  if (!s || s->empty() || s->size() > 19) return std::nullopt;
  uint64_t v = 0;
  for (char c : *s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}
}  // namespace

/// Reassembles snapshots sent in chunks: one transfer per sending member.
struct SnapshotAssembler {
  struct Transfer {
    std::string id;
    std::string data;
  };
  std::mutex mu;
  std::map<std::string, Transfer> by_sender;
};

void ControllerApi::add_peer_routes() {
  auto assembler = std::make_shared<SnapshotAssembler>();
  router_.add({"POST", "/raft/messages", Access::kPeer, false, [this](const CallPtr& call) {
                 controller::WireError err = controller::WireError::kMalformed;
                 auto msgs = controller::decode_messages(call->req.body, &err);
                 if (!msgs) {
                   bool crc = err == controller::WireError::kChecksum;
                   node_.drops().count(crc ? controller::drop_reason::kChecksum : controller::drop_reason::kUndecodable,
                                       call->req.header("tenure-from"), "batch",
                                       "bytes=" + std::to_string(call->req.body.size()));
                   return reply(call, net::json_error(400, "bad_request",
                                                      crc ? "raft messages fail their CRC32C check"
                                                          : "undecodable raft messages"));
                 }
                 // Under mutual TLS a member speaks only for itself: one that
                 // could sign as another could vote or append in its name.
                 for (const auto& m : *msgs) {
                   if (!sender_matches(call, m.from.str())) return;
                 }
                 node_.step(std::move(*msgs));
                 reply(call, no_content());
               }});
  router_.add({"POST", "/raft/snapshot/chunk", Access::kPeer, false, [this, assembler](const CallPtr& call) {
                 auto transfer = call->req.query_param("transfer");
                 auto offset = parse_u64(call->req.query_param("offset"));
                 auto crc_param = call->req.query_param("crc");
                 auto crc = parse_u64(crc_param);
                 std::string from = call->req.header("tenure-from");
                 if (!transfer || !offset || from.empty() || (crc_param && !crc)) {
                   return reply(call, net::json_error(400, "bad_request", "need transfer, offset and Tenure-From"));
                 }
                 if (!sender_matches(call, from)) return;
                 if (crc && *crc != crc32c(call->req.body)) {
                   node_.drops().count(controller::drop_reason::kChecksum, from, "snapshot_chunk",
                                       "offset=" + std::to_string(*offset));
                   return reply(call, net::json_error(400, "bad_request", "snapshot chunk fails its CRC32C check"));
                 }
                 std::lock_guard<std::mutex> lock(assembler->mu);
                 auto& t = assembler->by_sender[from];
                 if (t.id != *transfer) {
                   if (*offset != 0) return reply(call, net::json_error(409, "conflict", "unknown transfer"));
                   t.id = *transfer;  // a newer transfer replaces an abandoned one
                   t.data.clear();
                 }
                 if (*offset != t.data.size() || t.data.size() + call->req.body.size() > kMaxSnapshotBytes) {
                   return reply(call, net::json_error(409, "conflict", "chunk out of order or snapshot too large"));
                 }
                 t.data += call->req.body;
                 reply(call, no_content());
               }});
  router_.add({"POST", "/raft/snapshot/done", Access::kPeer, false, [this, assembler](const CallPtr& call) {
                 auto transfer = call->req.query_param("transfer");
                 auto total = parse_u64(call->req.query_param("total"));
                 std::string from = call->req.header("tenure-from");
                 std::optional<uint32_t> data_crc;
                 auto m = controller::decode_snapshot_meta(call->req.body, &data_crc);
                 if (!transfer || !total || !m) return reply(call, net::json_error(400, "bad_request", "bad snapshot meta"));
                 if (!sender_matches(call, from) || !sender_matches(call, m->from.str())) return;
                 std::string data;
                 {
                   std::lock_guard<std::mutex> lock(assembler->mu);
                   auto it = assembler->by_sender.find(from);
                   if (it == assembler->by_sender.end() || it->second.id != *transfer || it->second.data.size() != *total) {
                     return reply(call, net::json_error(409, "conflict", "incomplete snapshot transfer"));
                   }
                   data = std::move(it->second.data);
                   assembler->by_sender.erase(it);
                 }
                 if (data_crc && *data_crc != crc32c(data)) {
                   node_.drops().count(controller::drop_reason::kChecksum, from, "snapshot",
                                       "bytes=" + std::to_string(data.size()));
                   return reply(call, net::json_error(400, "bad_request", "snapshot fails its CRC32C check"));
                 }
                 m->snapshot->data = std::make_shared<const std::string>(std::move(data));
                 std::vector<consensus::Message> msgs;
                 msgs.push_back(std::move(*m));
                 node_.step(std::move(msgs));
                 reply(call, no_content());
               }});
}

}  // namespace tenure::api
