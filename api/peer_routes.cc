// The receiving side of the peer transport: /raft/messages and chunked snapshots.
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include "api/controller_api.h"
#include "api/history_backfill.h"
#include "common/crc32c.h"
#include "peers/raft_wire.h"

#include <boost/asio/post.hpp>

namespace tenure::api {

namespace {
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
/// The index of the first entry of an append whose command does not decode.
std::optional<consensus::LogIndex> first_undecodable_entry(const std::vector<consensus::Message>& msgs) {
  for (const auto& m : msgs) {
    if (m.type != consensus::MessageType::kAppend) continue;
    for (const auto& e : m.entries) {
      if (e.type != consensus::EntryType::kNormal || e.data.empty()) continue;  // membership, leader no-op
      if (!controlplane::decode_command(e.data)) return e.index;
    }
  }
  return std::nullopt;
}

}  // namespace

void ControllerApi::add_peer_routes() {
  std::string dir = options_.snapshot_spool_dir;
  if (dir.empty()) dir = (std::filesystem::temp_directory_path() / ("tenure-snapshots-" + std::to_string(::getpid()))).string();
  auto inbox = std::make_shared<SnapshotInbox>(dir, options_.snapshot_limits);
  snapshot_transfers_ = &prometheus::BuildGauge()
                             .Name("tenure_raft_snapshot_transfers")
                             .Help("Snapshot transfers being received (spooled to disk; bounded)")
                             .Register(*registry_)
                             .Add({});
  snapshot_refusals_ = &prometheus::BuildCounter()
                            .Name("tenure_raft_snapshot_chunks_refused_total")
                            .Help("Snapshot chunks or completions refused, by reason")
                            .Register(*registry_);
  router_.add({"POST", "/raft/messages", Access::kPeer, false, [this](const CallPtr& call) {
                 peers::WireError err = peers::WireError::kMalformed;
                 auto msgs = peers::decode_messages(call->req.body, &err);
                 if (!msgs) {
                   bool crc = err == peers::WireError::kChecksum;
                   node_.drops().count(crc ? member::drop_reason::kChecksum : member::drop_reason::kUndecodable,
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
                 // Every command appended is one this build can apply: an
                 // entry that would not decode at apply time is refused here,
                 // before it can be stored, acknowledged and committed (then
                 // it could only stop the member). Off the strand.
                 if (auto bad = first_undecodable_entry(*msgs)) {
                   node_.drops().count(member::drop_reason::kBadEntryData, call->req.header("tenure-from"),
                                       "append", "index=" + std::to_string(bad->value()));
                   return reply(call, net::json_error(400, "bad_request",
                                                      "entry " + std::to_string(bad->value()) +
                                                          " is not a command this build can apply"));
                 }
                 node_.step(std::move(*msgs));
                 reply(call, no_content());
               }});
  // A member filling its history gap (api/history_backfill.h) reads pages
  // of this member's records. Off the strand: the store's writer reads.
  router_.add({"GET", "/raft/history", Access::kPeer, false, [this](const CallPtr& call) {
                 auto through = parse_u64(call->req.query_param("through"));
                 auto after_revision = parse_u64(call->req.query_param("after_revision").value_or("0"));
                 auto limit = parse_u64(call->req.query_param("limit").value_or("2000"));
                 std::string after = call->req.query_param("after").value_or("");
                 if (!through || !after_revision || !limit || *limit == 0 || *limit > 10000 ||
                     (!after.empty() && !controlplane::valid_shard_id(after))) {
                   return reply(call, net::json_error(400, "bad_request",
                                                      "need through, and a valid after, after_revision and limit "
                                                      "(1-10000)"));
                 }
                 member::HistoryStore* history = node_.history();
                 if (!history) return reply(call, net::json_error(503, "unavailable", "this member keeps no history"));
                 history->export_page(controlplane::Revision(*through), controlplane::ShardId(after),
                                      controlplane::Revision(*after_revision), *limit,
                                      [this, call, io = node_.io_executor()](member::HistoryStore::Page page) {
                                        boost::asio::post(io, [this, call, page = std::move(page)] {
                                          net::HttpResponse r;
                                          r.status = 200;
                                          r.body = encode_history_page(page);
                                          reply(call, std::move(r));
                                        });
                                      });
               }});
  router_.add({"POST", "/raft/snapshot/chunk", Access::kPeer, false, [this, inbox](const CallPtr& call) {
                 auto transfer = call->req.query_param("transfer");
                 auto offset = parse_u64(call->req.query_param("offset"));
                 auto crc_param = call->req.query_param("crc");
                 auto crc = parse_u64(crc_param);
                 std::string from = call->req.header("tenure-from");
                 if (!transfer || !offset || from.empty() || (crc_param && (!crc || *crc > 0xffffffffu))) {
                   return reply(call, net::json_error(400, "bad_request", "need transfer, offset and Tenure-From"));
                 }
                 if (!sender_matches(call, from)) return;
                 auto st = inbox->chunk(from, *transfer, *offset, call->req.body,
                                        crc ? std::optional<uint32_t>(static_cast<uint32_t>(*crc)) : std::nullopt);
                 reply_inbox(call, inbox, st, from, "snapshot_chunk");
               }});
  router_.add({"POST", "/raft/snapshot/done", Access::kPeer, false, [this, inbox](const CallPtr& call) {
                 auto transfer = call->req.query_param("transfer");
                 auto total = parse_u64(call->req.query_param("total"));
                 std::string from = call->req.header("tenure-from");
                 std::optional<uint32_t> data_crc;
                 peers::WireError err = peers::WireError::kMalformed;
                 auto m = peers::decode_snapshot_meta(call->req.body, &data_crc, &err);
                 if (!transfer || !total || from.empty() || !m) {
                   if (!m) {
                     node_.drops().count(err == peers::WireError::kChecksum ? member::drop_reason::kChecksum
                                                                                 : member::drop_reason::kUndecodable,
                                         from, "snapshot", "metadata");
                   }
                   return reply(call, net::json_error(400, "bad_request", "bad snapshot meta"));
                 }
                 if (!sender_matches(call, from) || !sender_matches(call, m->from.str())) return;
                 std::string data;
                 auto st = inbox->finish(from, *transfer, *total, data_crc, data);
                 if (st != SnapshotInbox::Status::kOk) return reply_inbox(call, inbox, st, from, "snapshot");
                 m->snapshot->data = std::make_shared<const std::string>(std::move(data));
                 std::vector<consensus::Message> msgs;
                 msgs.push_back(std::move(*m));
                 node_.step(std::move(msgs));
                 reply(call, no_content());
               }});
}

void ControllerApi::reply_inbox(const CallPtr& call, const std::shared_ptr<SnapshotInbox>& inbox,
                                SnapshotInbox::Status st, const std::string& from, const char* what) {
  using S = SnapshotInbox::Status;
  snapshot_transfers_->Set(static_cast<double>(inbox->active()));
  if (st == S::kOk) return reply(call, no_content());
  snapshot_refusals_->Add({{"reason", to_string(st)}}).Increment();
  if (st == S::kChecksum) node_.drops().count(member::drop_reason::kChecksum, from, what, "snapshot data");
  switch (st) {
    case S::kBusy: {
      auto r = net::json_error(503, "busy", "too many snapshot transfers in progress");
      r.headers.push_back({"Retry-After", "1"});
      return reply(call, std::move(r));
    }
    case S::kTooLarge: return reply(call, net::json_error(413, "too_large", "snapshot larger than the limit"));
    case S::kChecksum: return reply(call, net::json_error(400, "bad_request", "snapshot fails its CRC32C check"));
    case S::kIo: return reply(call, net::json_error(503, "busy", "cannot spool the snapshot"));
    default: return reply(call, net::json_error(409, "conflict", std::string("snapshot transfer: ") + to_string(st)));
  }
}

}  // namespace tenure::api
