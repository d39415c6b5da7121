#include "api/watch_hub.h"

#include <chrono>

#include "api/controller_api.h"
#include "api/json_body.h"
#include "api/views.h"

namespace tenure::api {

using controlplane::Revision;
using controlplane::WorkerId;

namespace {
uint64_t steady_ms() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}
constexpr uint64_t kProgressEveryMs = 5000;
}  // namespace

WatchHub::WatchHub(controller::RaftNode& node, prometheus::Registry& registry)
    : node_(node),
      open_streams_(prometheus::BuildGauge()
                        .Name("tenure_watch_streams")
                        .Help("Open watch streams on this member")
                        .Register(registry)
                        .Add({})) {}

void WatchHub::add_routes(ControllerApi& api) {
  api.router().add({"GET", "/v1/watch", Access::kOpen, false, [this, &api](const CallPtr& call) {
                      auto worker = call->req.query_param("worker");
                      if (worker && !controlplane::valid_worker_id(*worker)) {
                        return api.reply(call, bad_field("worker", "invalid worker id"));
                      }
                      std::optional<uint64_t> since;
                      if (auto s = call->req.query_param("since")) {
                        char* end = nullptr;
                        errno = 0;
                        unsigned long long v = std::strtoull(s->c_str(), &end, 10);
                        if (s->empty() || *end != '\0' || errno != 0 || (*s)[0] == '-') {
                          return api.reply(call, bad_field("since", "must be a revision (unsigned integer)"));
                        }
                        since = v;
                      }
                      node_.post([this, &api, call, worker, since] {
                        const auto& sm = node_.state();
                        Revision after = since ? Revision(*since) : sm.revision();
                        if (after < sm.compacted_revision()) {
                          auto r = net::json_error(410, "compacted",
                                                   "revision " + std::to_string(after.value()) +
                                                       " is older than the history kept; list and watch again");
                          auto body = nlohmann::json::parse(r.body);
                          body["compact_revision"] = sm.compacted_revision().value();
                          body["revision"] = sm.revision().value();
                          return api.reply(call, json_response(410, body));
                        }
                        api.reply_stream_started(call);
                        open(call->res, worker ? WorkerId(*worker) : WorkerId(), after);
                      });
                    }});
}

void WatchHub::open(const std::shared_ptr<net::Responder>& res, WorkerId worker, Revision after) {
  if (!res->start_stream(200, "application/x-ndjson")) return;
  uint64_t id = next_id_++;
  Watcher& w = watchers_[id];
  w.worker = std::move(worker);
  w.after = after;
  w.res = res;
  w.last_write_ms = steady_ms();
  open_streams_.Increment();
  // The stream ends when the client goes away: forget it then.
  res->on_close([this, id] {
    node_.post([this, id] {
      if (watchers_.erase(id)) open_streams_.Decrement();
    });
  });
  if (!flush(w)) close(id, w, "", "");
}

bool WatchHub::flush(Watcher& w) {
  const auto& sm = node_.state();
  if (w.res->closed()) return false;
  if (w.after < sm.compacted_revision()) return false;
  while (w.after < sm.revision()) {
    if (w.res->queued_bytes() > kMaxQueuedBytes) return false;
    auto events = sm.events_after(w.after, w.worker, kEventsPerPass);
    std::string lines;
    for (const auto& e : events) {
      lines += event_json(e).dump();
      lines.push_back('\n');
    }
    // Fewer than a full pass means we scanned to the end of the log.
    w.after = events.size() < kEventsPerPass ? sm.revision() : events.back().revision;
    if (!lines.empty()) {
      if (!w.res->write_chunk(std::move(lines))) return false;
      w.last_write_ms = steady_ms();
    }
  }
  return true;
}

void WatchHub::close(uint64_t id, Watcher& w, const std::string& error, const std::string& message) {
  if (!error.empty() && !w.res->closed()) {
    w.res->write_chunk(nlohmann::json{{"error", error}, {"message", message}, {"revision", w.after.value()}}.dump() +
                       "\n");
  }
  w.res->end_stream();
  if (watchers_.erase(id)) open_streams_.Decrement();
}

void WatchHub::on_applied() {
  const auto& sm = node_.state();
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    Watcher& w = it->second;
    uint64_t id = it->first;
    ++it;
    if (flush(w)) continue;
    if (w.res->closed()) {
      close(id, w, "", "");
    } else if (w.after < sm.compacted_revision()) {
      close(id, w, "compacted", "this watcher fell behind the history kept; list and watch again");
    } else {
      close(id, w, "too_slow", "this watcher fell too far behind and was cut off; watch again from its revision");
    }
  }
}

void WatchHub::on_tick() {
  uint64_t now = steady_ms();
  const auto& sm = node_.state();
  for (auto& [id, w] : watchers_) {
    if (now - w.last_write_ms < kProgressEveryMs) continue;
    // A progress line (type "progress") tells an idle consumer the stream is alive and how far it is.
    w.res->write_chunk(nlohmann::json{{"type", "progress"}, {"revision", sm.revision().value()}}.dump() + "\n");
    w.last_write_ms = now;
  }
}

}  // namespace tenure::api
