#include "api/watch_hub.h"
#include "common/steady_clock.h"

#include <algorithm>
#include <chrono>

#include "api/controller_api.h"
#include "api/json_body.h"
#include "api/views.h"

namespace tenure::api {

using controlplane::Revision;
using controlplane::WorkerId;

namespace {
constexpr uint64_t kProgressEveryMs = 5000;

/// A stream's idle time before its progress line: 4 to 5 s, fixed per
/// stream by its id. Streams that last wrote together (a grant delivered
/// to every worker at once, a fleet's registrations) would otherwise all
/// be due in the same round: 10,000 lines at once stalled every member's
/// strand and io threads for 200-400 ms every 5 s (fleet_load).
uint64_t progress_after_ms(uint64_t watcher_id) { return kProgressEveryMs - (watcher_id * 2654435761u) % 1000; }
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
  if (!dispatched_set_) {
    dispatched_ = node_.state().revision();
    dispatched_set_ = true;
  }
  uint64_t id = next_id_++;
  Watcher& w = watchers_[id];
  w.worker = std::move(worker);
  w.after = after;
  w.res = res;
  w.last_write_ms = steady_ms();
  if (w.worker.empty()) {
    unfiltered_.insert(id);
  } else {
    by_worker_[w.worker.str()].push_back(id);
    worker_logs_.try_emplace(w.worker.str(), WorkerLog{dispatched_, {}});
  }
  open_streams_.Increment();
  // The stream ends when the client goes away: forget it then.
  res->on_close([this, id] {
    node_.post([this, id] { forget(id); });
  });
  pump(id);
}

void WatchHub::forget(uint64_t id) {
  auto it = watchers_.find(id);
  if (it == watchers_.end()) return;
  if (it->second.worker.empty()) {
    unfiltered_.erase(id);
  } else if (auto b = by_worker_.find(it->second.worker.str()); b != by_worker_.end()) {
    auto& ids = b->second;
    ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
    if (ids.empty()) {
      worker_logs_.erase(b->first);
      by_worker_.erase(b);
    }
  }
  watchers_.erase(it);
  paced_.erase(id);
  open_streams_.Decrement();
}

Revision WatchHub::position(const Watcher& w) const { return w.in_sync ? std::max(w.after, dispatched_) : w.after; }

void WatchHub::pump(uint64_t id) {
  auto it = watchers_.find(id);
  if (it == watchers_.end() || it->second.pass_pending) return;
  Watcher& w = it->second;
  const auto& sm = node_.state();
  if (w.res->closed()) return close(id, w, "", "");
  w.after = position(w);
  w.in_sync = false;
  if (w.after < sm.compacted_revision()) {
    return close(id, w, "compacted", "this watcher fell behind the history kept; list and watch again");
  }
  if (w.after >= sm.revision()) {
    w.in_sync = true;
    return;
  }
  size_t queued = w.res->queued_bytes();
  if (queued > kMaxQueuedBytes) {
    return close(id, w, "too_slow", "this watcher fell too far behind and was cut off; watch again from its revision");
  }
  if (queued > kPaceBytes) {
    paced_.insert(id);  // on_tick() tries again once the socket took some
    return;
  }
  if (!w.worker.empty() && pump_from_log(id, w)) return;
  Revision scanned_to;
  auto events = sm.events_window(w.after, w.worker, kEventsPerPass, scanned_to);
  if (events.empty()) {
    // A filtered pass found nothing: the next one is a fresh strand task too.
    w.after = scanned_to;
    w.pass_pending = true;
    return node_.post([this, id] { resume(id); });
  }
  send(id, w, std::make_shared<const std::vector<controlplane::Event>>(std::move(events)), scanned_to);
}

bool WatchHub::pump_from_log(uint64_t id, Watcher& w) {
  auto found = worker_logs_.find(w.worker.str());
  if (found == worker_logs_.end() || dispatched_ < node_.state().revision()) return false;
  // Trimmed first: past kWorkerLogMax the log drops events this watcher
  // has not had, and then it no longer reaches back to the watcher.
  trim_log(found->second, lowest_position(found->first));
  if (w.after < found->second.from) return false;
  auto& log = found->second.events;
  auto first = std::upper_bound(log.begin(), log.end(), w.after,
                                [](Revision r, const controlplane::Event& e) { return r < e.revision; });
  if (first == log.end()) {
    // Nothing of this worker's after its position, up to everything applied.
    w.after = dispatched_;
    w.in_sync = true;
    return true;
  }
  auto last = first + static_cast<std::ptrdiff_t>(std::min<size_t>(kEventsPerPass, static_cast<size_t>(log.end() - first)));
  Revision to = last == log.end() ? dispatched_ : std::prev(last)->revision;
  send(id, w, std::make_shared<const std::vector<controlplane::Event>>(first, last), to);
  return true;
}

Revision WatchHub::lowest_position(const std::string& worker) const {
  Revision lowest = dispatched_;
  for (uint64_t id : by_worker_.at(worker)) lowest = std::min(lowest, position(watchers_.at(id)));
  return lowest;
}

void WatchHub::trim_log(WorkerLog& log, Revision lowest) {
  // What every watcher of the worker has passed is not needed again, nor
  // the oldest past kWorkerLogMax.
  size_t drop = log.events.size() > kWorkerLogMax ? log.events.size() - kWorkerLogMax : 0;
  while (drop < log.events.size() && log.events[drop].revision <= lowest) ++drop;
  if (drop == 0) return;
  log.from = log.events[drop - 1].revision;
  log.events.erase(log.events.begin(), log.events.begin() + static_cast<std::ptrdiff_t>(drop));
}

void WatchHub::extend_log(const std::string& worker, const std::vector<controlplane::Event>& fresh) {
  WorkerLog& log = worker_logs_.at(worker);
  const Revision lowest = lowest_position(worker);  // one walk of the worker's watchers
  if (lowest >= dispatched_) {
    // Every stream of the worker took the batch at once (the common case):
    // nothing is kept, nothing copied.
    log.events.clear();
    log.from = dispatched_;
    return;
  }
  // Of a batch larger than the log keeps (a worker granted 50,000 shards
  // at once), only its tail is copied.
  size_t skip = fresh.size() > kWorkerLogMax ? fresh.size() - kWorkerLogMax : 0;
  if (skip > 0) {
    log.events.clear();
    log.from = fresh[skip - 1].revision;
  }
  log.events.insert(log.events.end(), fresh.begin() + static_cast<std::ptrdiff_t>(skip), fresh.end());
  trim_log(log, lowest);
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
  forget(id);
}

void WatchHub::on_applied() {
  const auto& sm = node_.state();
  Revision from = dispatched_;
  bool known = dispatched_set_;
  dispatched_ = sm.revision();
  dispatched_set_ = true;
  if (watchers_.empty() || (known && from >= dispatched_)) return;
  // A watcher in sync had nothing up to `from`: it resumes from there.
  std::vector<uint64_t> due;
  auto wake = [&](uint64_t id) {
    Watcher& w = watchers_.at(id);
    if (w.in_sync) {
      w.after = std::max(w.after, from);
      w.in_sync = false;
    }
    due.push_back(id);
  };
  if (!known || from < sm.compacted_revision()) {
    // The new events are gone already (a snapshot installed, or more
    // applied at once than the events kept): every watcher looks, and the
    // workers' logs start again from here.
    for (auto& entry : watchers_) wake(entry.first);
    for (auto& [worker, log] : worker_logs_) log = WorkerLog{dispatched_, {}};
  } else {
    for (uint64_t id : unfiltered_) wake(id);
    // The new events of each watched worker, gathered in one pass: a
    // watcher in sync gets exactly these, without scanning the events of
    // the others (a placement pass grants thousands of shards to thousands
    // of workers; a scan per watcher was O(watchers × events)).
    std::unordered_map<std::string, std::vector<controlplane::Event>> fresh;
    sm.visit_events_after(from, [&](const controlplane::Event& e) {
      if (e.worker.empty() || !by_worker_.count(e.worker.str())) return;
      fresh[e.worker.str()].push_back(e);
    });
    for (auto& [worker, events] : fresh) {
      auto shared = std::make_shared<const std::vector<controlplane::Event>>(std::move(events));
      for (uint64_t id : by_worker_.at(worker)) {
        Watcher& w = watchers_.at(id);
        // (A watcher whose `since` lies ahead of `from` takes the scan: these
        // events may be older than it asked for.)
        if (w.in_sync && w.after <= from && !w.pass_pending && !w.res->closed() &&
            w.res->queued_bytes() <= kPaceBytes) {
          send(id, w, shared, dispatched_);
        } else {
          wake(id);
        }
      }
      extend_log(worker, *shared);
    }
    std::sort(due.begin(), due.end());
    due.erase(std::unique(due.begin(), due.end()), due.end());
  }
  for (uint64_t id : due) pump(id);  // pump() may erase this watcher, never another
}

void WatchHub::send(uint64_t id, Watcher& w, std::shared_ptr<const std::vector<controlplane::Event>> events,
                    Revision to) {
  w.in_sync = false;
  w.after = to;
  w.pass_pending = true;
  // The lines are made on an I/O thread; the next pass runs only once they
  // are queued, so passes stay in order and each strand task stays short.
  node_.post_off_strand([this, id, res = w.res, events = std::move(events)] {
    std::string lines;
    for (const auto& e : *events) {
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

void WatchHub::on_tick() {
  // Paced catch-ups resume here at every tick (pump() puts back those still
  // paced). Every watcher is looked at only every 5 ticks, for progress
  // lines (each is due once in 4-5 s) and, as a safety net, for a catch-up
  // that stalled: a walk of 10,000 watchers at every tick held the leader's
  // strand ~1 ms of each 10 (fleet_load).
  if (!paced_.empty()) {
    auto paced = std::move(paced_);
    paced_.clear();
    for (uint64_t id : paced) pump(id);
  }
  if (++ticks_ % 5 != 0) return;
  uint64_t now = steady_ms();
  const auto& sm = node_.state();
  for (auto it = watchers_.begin(); it != watchers_.end();) {
    uint64_t id = it->first;
    Watcher& w = it->second;
    ++it;
    if (w.pass_pending) continue;
    if (!w.in_sync && w.after < sm.revision()) {
      pump(id);  // the safety net: a catch-up nobody resumed
      continue;
    }
    if (now - w.last_write_ms < progress_after_ms(id)) continue;
    // A progress line (type "progress") tells an idle consumer the stream is
    // alive and how far it is; only once every event before it was written.
    w.res->write_chunk(net::json_text({{"type", "progress"}, {"revision", sm.revision().value()}}) + "\n");
    w.last_write_ms = now;
  }
}

}  // namespace tenure::api
