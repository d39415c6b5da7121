// ProgramLink: per-shard ordered calls to the data-plane program, over
// HTTP (app.url) or the embedding program's handler.
#include "dataplane_agent/program_link.h"

#include <algorithm>
#include <atomic>
#include <deque>
#include <map>
#include <mutex>
#include <set>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "common/log.h"
#include "dataplane_agent/metrics.h"
#include "net/http_client.h"

namespace tenure::agent {

namespace asio = boost::asio;
using SysSteady = std::chrono::steady_clock;
using std::chrono::milliseconds;

namespace {
constexpr size_t kMaxInflight = 32;
constexpr milliseconds kRetryBase{100};
constexpr milliseconds kRetryMax{5000};
constexpr milliseconds kCallTimeout{5000};

/// A drain's completion, run once (by the answer or by its budget's end).
struct Once {
  explicit Once(std::function<void()> f) : fn(std::move(f)) {}
  bool fire() {
    if (fired.exchange(true)) return false;
    fn();
    return true;
  }
  std::atomic<bool> fired{false};
  std::function<void()> fn;
};

/// Splits "http://host:port/prefix" into the client's address and the path prefix.
std::pair<std::string, std::string> split_url(const std::string& url) {
  size_t scheme = url.find("://");
  size_t host_start = scheme == std::string::npos ? 0 : scheme + 3;
  size_t slash = url.find('/', host_start);
  if (slash == std::string::npos) return {url, ""};
  std::string prefix = url.substr(slash);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  return {url.substr(0, slash), prefix};
}
}  // namespace

struct ProgramLink::Impl : std::enable_shared_from_this<Impl> {
  struct Item {
    std::string call;  ///< "prepare", "grant", "drain" or "revoke"
    ShardId shard;
    Epoch epoch;
    std::string reason;
    SysSteady::time_point queued;
    SysSteady::time_point deadline;  ///< prepare and drain only
    std::shared_ptr<Once> done;  ///< prepare and drain only
    int attempt = 0;
  };

  Impl(asio::io_context& io_, net::HttpClient& client_, AgentMetrics& metrics_, ProgramLinkOptions o)
      : io(io_), client(client_), metrics(metrics_), options(std::move(o)) {
    std::tie(address, prefix) = split_url(options.url);
  }

  bool enabled() const { return options.handler || !options.url.empty(); }

  void enqueue(Item item) {
    {
      std::lock_guard lock(mu);
      if (stopped) return;
      auto& q = queues[item.shard.str()];
      q.push_back(std::move(item));
      if (q.size() == 1) ready.push_back(q.front().shard.str());
    }
    pump();
  }

  /// Sends the head of each ready shard's queue, within the in-flight bound.
  void pump() {
    std::vector<Item> to_send;
    {
      std::lock_guard lock(mu);
      while (!stopped && inflight < kMaxInflight && !ready.empty()) {
        std::string shard = std::move(ready.front());
        ready.pop_front();
        auto it = queues.find(shard);
        if (it == queues.end() || it->second.empty()) continue;
        Item& head = it->second.front();
        if (head.done && head.done->fired) {  // a drain whose budget ran out while it waited
          pop_locked(it);
          continue;
        }
        ++inflight;
        to_send.push_back(head);
      }
    }
    for (auto& item : to_send) send(std::move(item));
  }

  /// Removes the head of `it`'s queue; the next one (if any) becomes ready.
  void pop_locked(std::map<std::string, std::deque<Item>>::iterator it) {
    it->second.pop_front();
    if (it->second.empty()) {
      queues.erase(it);
    } else {
      ready.push_back(it->first);
    }
  }

  void send(Item item) {
    auto self = shared_from_this();
    if (options.handler) {
      // Off the caller's thread: the session's strand never runs program code.
      asio::post(io, [self, item] {
        auto& h = *self->options.handler;
        if (item.call == "grant") {
          h.on_grant(item.shard, item.epoch, item.reason);
          self->finished(item, true);
        } else if (item.call == "revoke") {
          h.on_revoke(item.shard, item.epoch, item.reason);
          self->finished(item, true);
        } else {
          auto once = std::make_shared<std::atomic<bool>>(false);
          auto done = [self, item, once] {
            if (!once->exchange(true)) self->finished(item, true);
          };
          if (item.call == "prepare") {
            h.on_prepare(item.shard, item.epoch, std::move(done));
          } else {
            h.on_drain(item.shard, item.epoch, std::move(done));
          }
        }
      });
      return;
    }
    net::ClientRequest req;
    req.method = "POST";
    req.target = prefix + "/tenure/v1/" + item.call;
    req.body = nlohmann::json{{"shard", item.shard.str()}, {"epoch", item.epoch.value()}, {"reason", item.reason}}.dump();
    req.timeout_ms = static_cast<uint32_t>(kCallTimeout.count());
    if (!options.token.empty()) req.headers["authorization"] = "Bearer " + options.token;
    if (item.done) {
      auto left = std::chrono::duration_cast<milliseconds>(item.deadline - SysSteady::now()).count();
      req.timeout_ms = static_cast<uint32_t>(std::clamp<int64_t>(left, 1, kCallTimeout.count()));
    }
    client.request(address, std::move(req), [self, item](net::ClientResult r) {
      bool ok = r.ok() && r.value().status / 100 == 2;
      if (!ok && self->warn_once(item.call)) {
        log_warn("program", "event=program_call_failed call=" + item.call + " shard=" + item.shard.str() +
                                " url=" + self->options.url + " " +
                                (r.ok() ? "status=" + std::to_string(r.value().status)
                                        : "error=" + std::string(net::to_string(r.code()))) +
                                " action=retry");
      }
      self->finished(item, ok);
    });
  }

  /// Logs the first failure of a streak only (a program that is down would flood the log).
  bool warn_once(const std::string& call) {
    std::lock_guard lock(mu);
    return failing.insert(call).second;
  }

  void finished(const Item& sent, bool ok) {
    double waited = std::chrono::duration<double>(SysSteady::now() - sent.queued).count();
    std::unique_lock lock(mu);
    --inflight;
    auto it = queues.find(sent.shard.str());
    if (stopped || it == queues.end() || it->second.empty()) return;
    Item& head = it->second.front();
    if (ok) {
      failing.erase(sent.call);
      lock.unlock();
      metrics.program_call(sent.call, "ok");
      metrics.program_wait(sent.call, waited);
      if (sent.done) sent.done->fire();
      lock.lock();
      it = queues.find(sent.shard.str());
      if (it != queues.end()) pop_locked(it);
    } else {
      metrics.program_call(sent.call, "error");
      if (head.done && (head.done->fired || SysSteady::now() >= head.deadline)) {
        pop_locked(it);  // its budget is spent: the timer finished it
      } else {
        // Retried in order: nothing behind it for this shard goes first.
        auto delay = head.done ? kRetryBase : std::min(kRetryMax, kRetryBase * (1 << std::min(head.attempt, 6)));
        ++head.attempt;
        retry_after(head.shard.str(), delay);
      }
    }
    lock.unlock();
    pump();
  }

  void retry_after(const std::string& shard, milliseconds delay) {
    auto timer = std::make_shared<asio::steady_timer>(io, delay);
    auto self = shared_from_this();
    timer->async_wait([self, timer, shard](const boost::system::error_code&) {
      {
        std::lock_guard lock(self->mu);
        if (self->stopped) return;
        self->ready.push_back(shard);
      }
      self->pump();
    });
  }

  /// A call the move waits for (prepare, drain), within `limit`.
  void bounded(const char* call, const ShardEpoch& s, std::chrono::nanoseconds limit, std::function<void()> done) {
    auto once = std::make_shared<Once>(std::move(done));
    if (limit <= std::chrono::nanoseconds(0)) {
      asio::post(io, [once] { once->fire(); });
      return;
    }
    Item item{call, s.shard, s.epoch, "handoff", SysSteady::now(), SysSteady::now() + limit, once, 0};
    auto timer = std::make_shared<asio::steady_timer>(io, limit);
    auto self = shared_from_this();
    timer->async_wait([self, timer, once, call = item.call, queued = item.queued, shard = s.shard](
                          const boost::system::error_code&) {
      if (!once->fire()) return;
      self->metrics.program_call(call, "timeout");
      self->metrics.program_wait(call, std::chrono::duration<double>(SysSteady::now() - queued).count());
      log_warn("program", "event=" + call + "_timeout shard=" + shard.str() +
                              (call == "drain" ? " action=release" : " action=report_prepared"));
    });
    enqueue(std::move(item));
  }

  void shutdown() {
    std::vector<std::shared_ptr<Once>> drains;
    {
      std::lock_guard lock(mu);
      stopped = true;
      for (auto& [shard, q] : queues) {
        for (auto& i : q) {
          if (i.done) drains.push_back(i.done);
        }
      }
      queues.clear();
      ready.clear();
    }
    for (auto& d : drains) d->fire();
  }

  size_t pending() const {
    std::lock_guard lock(mu);
    size_t n = 0;
    for (const auto& [shard, q] : queues) n += q.size();
    return n;
  }

  asio::io_context& io;
  net::HttpClient& client;
  AgentMetrics& metrics;
  const ProgramLinkOptions options;
  std::string address, prefix;

  mutable std::mutex mu;
  bool stopped = false;
  std::map<std::string, std::deque<Item>> queues;  ///< by shard; the head is out or waiting
  std::deque<std::string> ready;                   ///< shards whose head may be sent now
  size_t inflight = 0;
  std::set<std::string> failing;  ///< calls whose last attempt failed (logged once)
};

ProgramLink::ProgramLink(asio::io_context& io, net::HttpClient& client, AgentMetrics& metrics, ProgramLinkOptions o)
    : impl_(std::make_shared<Impl>(io, client, metrics, std::move(o))) {}

ProgramLink::~ProgramLink() { impl_->shutdown(); }

bool ProgramLink::enabled() const { return impl_->enabled(); }

void ProgramLink::changes(const std::vector<ProgramChange>& changes) {
  if (!enabled()) return;
  auto now = SysSteady::now();
  for (const auto& c : changes) {
    impl_->enqueue({to_string(c.kind), c.shard, c.epoch, c.reason, now, {}, nullptr, 0});
  }
}

void ProgramLink::drain(const ShardEpoch& s, std::chrono::nanoseconds budget, std::function<void()> done) {
  impl_->bounded("drain", s, std::min<std::chrono::nanoseconds>(budget, impl_->options.drain_timeout), std::move(done));
}

void ProgramLink::prepare(const ShardEpoch& s, std::function<void()> done) {
  impl_->bounded("prepare", s, impl_->options.prepare_timeout, std::move(done));
}

void ProgramLink::lease_lost() {
  auto handler = impl_->options.handler;
  if (!handler) return;
  asio::post(impl_->io, [handler] { handler->on_lease_lost(); });
}

size_t ProgramLink::pending() const { return impl_->pending(); }

void ProgramLink::shutdown() { impl_->shutdown(); }

}  // namespace tenure::agent
