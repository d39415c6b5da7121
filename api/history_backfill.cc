#include "api/history_backfill.h"

#include <boost/asio/post.hpp>
#include <nlohmann/json.hpp>

#include "common/log.h"

namespace tenure::api {

using controlplane::HistoryRecord;
using controlplane::Revision;
using controlplane::ShardId;
using controlplane::WorkerId;
using member::HistoryStore;

struct HistoryBackfill::Copy {
  Revision gap;           ///< the gap this copy fills
  std::string leader;     ///< the address pages come from
  ShardId after_shard;    ///< the cursor: the last record imported
  Revision after_revision;
  uint64_t records = 0;
  uint64_t pages = 0;
};

HistoryBackfill::HistoryBackfill(member::RaftNode& node, member::HistoryStore& store, net::HttpClient& client,
                                 std::string peer_token)
    : node_(node), store_(store), client_(client), peer_token_(std::move(peer_token)) {}

HistoryBackfill::~HistoryBackfill() { alive_->store(false); }

void HistoryBackfill::on_tick() {
  if (++ticks_ % 100 != 0 || running_.load() || store_.gap_through() == Revision(0)) return;
  auto s = node_.summary();
  if (s.is_leader || s.leader.empty() || s.leader_address.empty()) return;
  auto copy = std::make_shared<Copy>();
  copy->gap = store_.gap_through();
  copy->leader = s.leader_address;
  running_ = true;
  log_info("history", "event=backfill_start gap_through=" + std::to_string(copy->gap.value()) + " from=" +
                          s.leader.str());
  fetch(std::move(copy));
}

void HistoryBackfill::end(const std::shared_ptr<Copy>& copy, const std::string& why) {
  log_info("history", "event=backfill_end gap_through=" + std::to_string(copy->gap.value()) + " pages=" +
                          std::to_string(copy->pages) + " records=" + std::to_string(copy->records) + " " + why);
  running_ = false;
}

void HistoryBackfill::fetch(std::shared_ptr<Copy> copy) {
  net::ClientRequest req;
  req.target = "/raft/history?through=" + std::to_string(copy->gap.value()) + "&after=" + copy->after_shard.str() +
               "&after_revision=" + std::to_string(copy->after_revision.value()) +
               "&limit=" + std::to_string(kPageRecords);
  if (!peer_token_.empty()) req.headers["authorization"] = "Bearer " + peer_token_;
  req.headers["tenure-from"] = node_.id();
  auto io = node_.io_executor();
  auto alive = alive_;
  client_.request(copy->leader, std::move(req), [this, copy, io, alive](net::ClientResult r) {
    if (!alive->load()) return;
    if (!r.ok() || r.value().status != 200) {
      return end(copy, "result=failed error=" + (r.ok() ? "status_" + std::to_string(r.value().status)
                                                        : std::string(net::to_string(r.error().code))));
    }
    auto page = decode_history_page(r.value().body, copy->gap);
    if (!page) return end(copy, "result=failed error=malformed_page");
    if (page->gap_through >= copy->gap) return end(copy, "result=failed error=the_leader_has_the_same_gap");
    bool last = !page->more;
    if (!page->records.empty()) {
      copy->after_shard = page->records.back().first;
      copy->after_revision = page->records.back().second.revision;
    }
    copy->records += page->records.size();
    ++copy->pages;
    store_.import_page(copy->gap, std::move(*page), last, [this, copy, io, alive, last](bool ok) {
      // On the store's writer: hand the next step to an I/O thread.
      boost::asio::post(io, [this, copy, alive, last, ok] {
        if (!alive->load()) return;
        if (!ok) return end(copy, "result=failed error=gap_changed");
        if (last) return end(copy, "result=done");
        fetch(copy);
      });
    });
  });
}

std::string encode_history_page(const HistoryStore::Page& page) {
  nlohmann::json records = nlohmann::json::array();
  for (const auto& [shard, h] : page.records) {
    records.push_back({shard.str(), h.revision.value(), h.epoch.value(), h.from.str(), h.to.str(),
                       static_cast<int>(h.reason), h.at_ms, h.prepare_ms, h.drain_ms,
                       (h.prepare_timed_out ? 1 : 0) | (h.drain_timed_out ? 2 : 0) | (h.prepared ? 4 : 0)});
  }
  return nlohmann::json{{"records", std::move(records)}, {"more", page.more},
                        {"gap_through_revision", page.gap_through.value()}}
      .dump();
}

std::optional<HistoryStore::Page> decode_history_page(const std::string& body, Revision through) {
  auto j = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("records") || !j["records"].is_array() || !j.contains("more") ||
      !j["more"].is_boolean() || !j.contains("gap_through_revision") || !j["gap_through_revision"].is_number_unsigned()) {
    return std::nullopt;
  }
  HistoryStore::Page page;
  page.more = j["more"].get<bool>();
  page.gap_through = Revision(j["gap_through_revision"].get<uint64_t>());
  const auto& valid_worker = [](const std::string& w) { return w.empty() || controlplane::valid_worker_id(w); };
  for (const auto& r : j["records"]) {
    if (!r.is_array() || r.size() != 10 || !r[0].is_string() || !r[3].is_string() || !r[4].is_string()) {
      return std::nullopt;
    }
    for (size_t i : {1, 2, 5, 6, 7, 8, 9}) {
      if (!r[i].is_number_unsigned()) return std::nullopt;
    }
    std::string shard = r[0].get<std::string>(), from = r[3].get<std::string>(), to = r[4].get<std::string>();
    uint64_t reason = r[5].get<uint64_t>(), prepare_ms = r[7].get<uint64_t>(), drain_ms = r[8].get<uint64_t>(),
             flags = r[9].get<uint64_t>();
    HistoryRecord h;
    h.revision = Revision(r[1].get<uint64_t>());
    if (!controlplane::valid_shard_id(shard) || !valid_worker(from) || !valid_worker(to) ||
        reason > static_cast<uint64_t>(controlplane::ChangeReason::kReleased) || prepare_ms > UINT32_MAX ||
        drain_ms > UINT32_MAX || flags > 7 || h.revision > through || h.revision == Revision(0)) {
      return std::nullopt;
    }
    h.epoch = controlplane::Epoch(r[2].get<uint64_t>());
    h.from = WorkerId(std::move(from));
    h.to = WorkerId(std::move(to));
    h.reason = static_cast<controlplane::ChangeReason>(reason);
    h.at_ms = r[6].get<uint64_t>();
    h.prepare_ms = static_cast<uint32_t>(prepare_ms);
    h.drain_ms = static_cast<uint32_t>(drain_ms);
    h.prepare_timed_out = flags & 1;
    h.drain_timed_out = flags & 2;
    h.prepared = flags & 4;
    page.records.emplace_back(ShardId(std::move(shard)), std::move(h));
  }
  return page;
}

}  // namespace tenure::api
