#include "api/watch_hub.h"
#include "common/steady_clock.h"

#include <chrono>

#include "api/controller_api.h"
#include "api/json_body.h"
#include "api/views.h"

namespace tenure::api {

using controlplane::Revision;
using controlplane::WorkerId;

namespace {
constexpr uint64_t kProgressEveryMs = 5000;
}  // namespace

WatchHub::WatchHub(member::RaftNode& node, prometheus::Registry& registry)
    : node_(node),
      open_streams_(prometheus::BuildGauge()
                        .Name("tenure_watch_streams")
                        .Help("Open watch streams on this member")
                        .Register(registry)
                        .Add({})),
      max_streams_gauge_(prometheus::BuildGauge()
                             .Name("tenure_watch_streams_max")
                             .Help("Open watch streams allowed on this member (limits.max_watch_streams)")
                             .Register(registry)
                             .Add({})),
      refused_(prometheus::BuildCounter()
                   .Name("tenure_watch_streams_refused_total")
                   .Help("Watches refused with 503 busy: limits.max_watch_streams were open")
                   .Register(registry)
                   .Add({})) {
  max_streams_gauge_.Set(static_cast<double>(max_streams_));
}

void WatchHub::set_max_streams(size_t max_streams) {
  max_streams_ = max_streams;
  max_streams_gauge_.Set(static_cast<double>(max_streams));
}

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
                          return api.reply(
                              call, net::json_error(410, "compacted",
                                                    "revision " + std::to_string(after.value()) +
                                                        " is older than the history kept; list and watch again",
                                                    {{"compact_revision", sm.compacted_revision().value()},
                                                     {"revision", sm.revision().value()}}));
                        }
                        if (watchers_.size() >= max_streams_) {
                          // Bounded (issue 8 §5): each stream holds a connection and a
                          // share of the strand's work after every apply.
                          refused_.Increment();
                          auto r = net::json_error(503, "busy",
                                                   std::to_string(max_streams_) +
                                                       " watch streams are open on this member "
                                                       "(limits.max_watch_streams); retry, or watch through another member");
                          r.headers.push_back({"Retry-After", "1"});
                          return api.reply(call, std::move(r));
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
  pump(id);
}

void WatchHub::pump(uint64_t id) {
  auto it = watchers_.find(id);
  if (it == watchers_.end() || it->second.pass_pending) return;
  Watcher& w = it->second;
  const auto& sm = node_.state();
  if (w.res->closed()) return close(id, w, "", "");
  if (w.after < sm.compacted_revision()) {
    return close(id, w, "compacted", "this watcher fell behind the history kept; list and watch again");
  }
  if (w.after >= sm.revision()) return;
  size_t queued = w.res->queued_bytes();
  if (queued > kMaxQueuedBytes) {
    return close(id, w, "too_slow", "this watcher fell too far behind and was cut off; watch again from its revision");
  }
  if (queued > kPaceBytes) return;  // on_tick() tries again once the socket took some
  Revision scanned_to;
  auto events = sm.events_window(w.after, w.worker, kEventsPerPass, scanned_to);
  w.after = scanned_to;
  w.pass_pending = true;
  if (events.empty()) {
    // A filtered pass found nothing: the next one is a fresh strand task too.
    return node_.post([this, id] { resume(id); });
  }
  // The lines are made on an I/O thread; the next pass runs only once they
  // are queued, so passes stay in order and each strand task stays short.
  node_.post_off_strand([this, id, res = w.res, events = std::move(events)] {
    std::string lines;
    for (const auto& e : events) {
      lines += net::json_text(event_json(e));
      lines.push_back('\n');
    }
    res->write_chunk(std::move(lines));
    node_.post([this, id] {
      auto it = watchers_.find(id);
      if (it != watchers_.end()) it->second.last_write_ms = steady_ms();
      resume(id);
    });
  });
}

void WatchHub::resume(uint64_t id) {
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return;
  it->second.pass_pending = false;
  pump(id);
}
void WatchHub::close(uint64_t id, Watcher& w, const std::string& error, const std::string& message) {
  if (!error.empty() && !w.res->closed()) {
    w.res->write_chunk(net::json_text({{"error", error}, {"message", message}, {"revision", w.after.value()}}) + "\n");
  }
  w.res->end_stream();
  if (watchers_.erase(id)) open_streams_.Decrement();
}

void WatchHub::on_applied() {
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    uint64_t id = it->first;
    ++it;  // pump() may erase this watcher, never another
    pump(id);
  }
}

void WatchHub::on_tick() {
  uint64_t now = steady_ms();
  const auto& sm = node_.state();
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    uint64_t id = it->first;
    Watcher& w = it->second;
    ++it;
    if (w.pass_pending) continue;
    if (w.after < sm.revision()) {
      pump(id);  // a paced catch-up resumes here
      continue;
    }
    if (now - w.last_write_ms < kProgressEveryMs) continue;
    // A progress line (type "progress") tells an idle consumer the stream is
    // alive and how far it is; only once every event before it was written.
    w.res->write_chunk(net::json_text({{"type", "progress"}, {"revision", sm.revision().value()}}) + "\n");
    w.last_write_ms = now;
  }
}

}  // namespace tenure::api
