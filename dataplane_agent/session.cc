#include "dataplane_agent/session.h"

#include <boost/asio/post.hpp>

#include "common/log.h"
#include "dataplane_agent/lease.h"
#include "dataplane_agent/messages.h"
#include "dataplane_agent/session_impl.h"

namespace tenure::agent {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {
constexpr uint32_t kRegisterTimeoutMs = 5000;
constexpr uint32_t kListTimeoutMs = 10000;
/// Shards per page of the relist: the controllers' maximum (api/list_pages.h).
constexpr size_t kListPageLimit = 10000;
constexpr uint32_t kReleaseTimeoutMs = 5000;
constexpr int kReleaseAttempts = 4;
/// Shards per release call: keeps bodies far below the controllers' 1 MiB limit.
constexpr size_t kReleaseChunk = 2000;
}  // namespace

std::chrono::milliseconds heartbeat_timeout(milliseconds interval) { return std::max(interval, milliseconds(500)); }

std::chrono::milliseconds Backoff::next() {
  auto d = base_ * (int64_t{1} << std::min(attempt_, 20));
  if (d > max_) d = max_;
  ++attempt_;
  std::uniform_int_distribution<int64_t> pick(d.count() / 2, d.count());
  return milliseconds(pick(rng_));
}

Session::Impl::Impl(asio::io_context& io_, net::HttpClient& client_, ControllerPool& pool_, GrantStore& store_,
                    FenceState& fence_, AgentMetrics& metrics_, const Clock& clock_, SessionConfig config_)
    : io(io_),
      strand(asio::make_strand(io_)),
      client(client_),
      pool(pool_),
      store(store_),
      fence(fence_),
      metrics(metrics_),
      clock(clock_),
      config(std::move(config_)),
      tick_timer(strand),
      relist_timer(strand),
      watch_timer(strand) {}

std::string Session::Impl::worker_path(const char* action) const {
  return "/v1/workers/" + config.worker.str() + "/" + action;
}

void Session::Impl::start() {
  asio::post(strand, [this] {
    log_info("agent", "event=starting worker=" + config.worker.str() + " advertise=" + config.advertise +
                          " controllers=" + pool.current());
    send_register();
    schedule_tick();
  });
}

void Session::Impl::schedule_tick() {
  tick_timer.expires_after(config.heartbeat_interval);
  tick_timer.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping) return;
    tick();
    schedule_tick();
  });
}

void Session::Impl::tick() {
  if (!registered) {
    if (!register_inflight) send_register();
  } else if (!heartbeat_inflight) {
    send_heartbeat();
  }
}

void Session::Impl::send_register() {
  register_inflight = true;
  uint64_t gen = session_gen;
  pool.call("POST", worker_path("register"), register_body(config.advertise, config.zone, config.capacity),
            kRegisterTimeoutMs, [this, gen](PoolReply r) {
              asio::post(strand, [this, gen, r = std::move(r)] {
                register_inflight = false;
                if (gen != session_gen || stopping) return;
                handle_lease_reply(r, /*is_register=*/true);
              });
            });
}

void Session::Impl::send_heartbeat() {
  heartbeat_inflight = true;
  uint64_t gen = session_gen;
  auto timeout = static_cast<uint32_t>(heartbeat_timeout(config.heartbeat_interval).count());
  pool.call("POST", worker_path("heartbeat"), "{}", timeout, [this, gen](PoolReply r) {
    asio::post(strand, [this, gen, r = std::move(r)] {
      heartbeat_inflight = false;
      if (gen != session_gen || stopping) return;
      handle_lease_reply(r, /*is_register=*/false);
    });
  });
}

void Session::Impl::handle_lease_reply(const PoolReply& r, bool is_register) {
  const char* what = is_register ? "register" : "heartbeat";
  if (!r.result.ok() || (r.status() != 200 && r.status() != 404 && r.status() != 409)) {
    metrics.heartbeat("error");
    if (!heartbeat_failing) {
      std::string why = r.result.ok() ? "status=" + std::to_string(r.status()) + " error=" + error_code_of(r.result.value().body)
                                      : "error=" + std::string(net::to_string(r.result.code()));
      log_warn("agent", std::string("event=") + what + "_failed endpoint=" + r.endpoint + " " + why);
    }
    heartbeat_failing = true;
    return;
  }
  const auto& resp = r.result.value();
  if (r.status() == 404 && !is_register) {
    metrics.heartbeat("not_registered");
    // Not (yet) known to the member that answered, e.g. a new leader that
    // has not applied our registration: stop serving, but forget nothing;
    // the re-list after registering says what is still ours.
    return lost_registration("not_registered", /*drop_grants=*/false);
  }
  if (r.status() == 409 && error_code_of(resp.body) == "worker_dead") {
    metrics.heartbeat("worker_dead");
    // Declared dead: every shard of ours was granted elsewhere at a newer
    // epoch. Those grants are over for good.
    return lost_registration("worker_dead", /*drop_grants=*/true);
  }
  if (r.status() != 200) {
    metrics.heartbeat("error");
    log_warn("agent", std::string("event=") + what + "_refused status=" + std::to_string(r.status()) +
                          " error=" + error_code_of(resp.body));
    return;
  }
  auto parsed = parse_lease_answer(resp.body);
  if (!parsed.value) {
    metrics.heartbeat("bad_answer");
    log_warn("agent", std::string("event=") + what + "_bad_answer endpoint=" + r.endpoint + " problem=\"" +
                          parsed.error + "\"");
    return;
  }
  if (heartbeat_failing) log_info("agent", std::string("event=") + what + "_recovered endpoint=" + r.endpoint);
  heartbeat_failing = false;
  metrics.heartbeat("ok");
  apply_lease_answer(r, *parsed.value, is_register);
}

void Session::Impl::apply_lease_answer(const PoolReply& r, const LeaseAnswer& a, bool is_register) {
  // 1. Stop serving what is being handed off, durably, before anything else.
  GrantChanges c(fence.table_for_planning());
  for (const auto& s : a.revoked) c.revoke_for_release(s);
  if (!commit(c)) return;
  // 2. Only then extend the lease: a heartbeat that arrived after a handoff
  //    began must never lengthen the time its shards are served.
  if (lease_ms != a.lease_ms) {
    auto validity = lease_validity(milliseconds(a.lease_ms), config.heartbeat_interval);
    if (validity <= config.heartbeat_interval) {
      log_error("agent", "event=lease_too_short lease_ms=" + std::to_string(a.lease_ms) + " heartbeat_interval_ms=" +
                             std::to_string(config.heartbeat_interval.count()) + " validity_ms=" +
                             std::to_string(std::chrono::duration_cast<milliseconds>(validity).count()) +
                             " hint=\"lower heartbeat_interval_ms or raise the controllers' worker_lease_ms\"");
    }
    lease_ms = a.lease_ms;
  }
  //    And only over a table that knows every grant we lost up to the
  //    answer's state (LeaseLedger): at once if the watch got there first,
  //    else once it does.
  leases.add(lease_deadline(r.sent, milliseconds(a.lease_ms), config.heartbeat_interval), a.worker_revision);
  if (fence.revision() < a.worker_revision) metrics.lease_deferred();
  refresh_lease();
  // 3. Confirm the handoffs so the new owners need not wait out the lease.
  send_release(c.to_release());
  if (is_register && !registered) {
    registered = true;
    log_info("agent", "event=registered worker=" + config.worker.str() + " endpoint=" + r.endpoint +
                          " lease_ms=" + std::to_string(a.lease_ms) + " revision=" + std::to_string(a.revision.value()));
    start_relist();
  }
  check_watch_lag(a.revision, a.worker_revision);
}

void Session::Impl::lost_registration(const std::string& reason, bool drop_grants) {
  ++session_gen;
  registered = false;
  synced = false;
  relist_inflight = false;
  leases.clear();
  fence.invalidate_lease();
  stop_watch();
  relist_timer.cancel();
  // The controllers moved every shard of ours: nothing to release.
  GrantChanges c(fence.table_for_planning());
  if (drop_grants) c.drop_all();
  log_warn("agent", "event=registration_lost reason=" + reason + " dropped=" + std::to_string(c.dropped()) +
                        " action=register_again");
  if (!commit(c)) return;
  send_register();
}

void Session::Impl::start_relist() {
  if (relist_inflight || stopping) return;
  relist_inflight = true;
  stop_watch();
  relist_pages = ShardList();
  relist_page_count = 0;
  fetch_relist_page("");
}

void Session::Impl::fetch_relist_page(const std::string& token) {
  uint64_t gen = session_gen;
  std::string target = "/v1/shards?worker=" + net::percent_encode(config.worker.str()) +
                       "&limit=" + std::to_string(kListPageLimit);
  if (!token.empty()) target += "&continue=" + net::percent_encode(token);
  pool.call("GET", target, "", kListTimeoutMs, [this, gen](PoolReply r) {
    asio::post(strand, [this, gen, r = std::move(r)] {
      if (gen != session_gen || stopping || !relist_inflight) return;
      on_relist_page(r);
    });
  });
}

void Session::Impl::on_relist_page(const PoolReply& r) {
  if (!r.ok() || r.status() != 200) {
    relist_inflight = false;
    log_warn("agent", "event=relist_failed endpoint=" + r.endpoint + " status=" + std::to_string(r.status()) +
                          " page=" + std::to_string(relist_page_count) +
                          (r.result.ok() ? "" : " error=" + std::string(net::to_string(r.result.code()))));
    return schedule_relist();
  }
  auto parsed = parse_shard_list(r.result.value().body);
  if (!parsed.value) {
    relist_inflight = false;
    log_warn("agent", "event=relist_bad_answer problem=\"" + parsed.error + "\"");
    return schedule_relist();
  }
  // Each page is read at its own revision; the watch starts from the first
  // page's, so that every change made while the later pages were read is
  // replayed on top (epochs make the replay of an older change a no-op).
  if (relist_page_count++ == 0) relist_pages.revision = parsed.value->revision;
  for (auto& s : parsed.value->shards) relist_pages.shards.push_back(std::move(s));
  if (!parsed.value->next.empty()) return fetch_relist_page(parsed.value->next);
  relist_inflight = false;
  ShardList list = std::move(relist_pages);
  relist_pages = ShardList();
  on_relist(list);
}

void Session::Impl::on_relist(const ShardList& list) {
  relist_backoff.reset();
  GrantChanges c(fence.table_for_planning());
  c.apply_listing(list);
  if (!commit(c)) return;
  bool first = !synced;
  synced = true;
  refresh_lease();
  send_release(c.to_release());
  log_info("agent", std::string("event=") + (first ? "synced" : "relisted") + " revision=" +
                        std::to_string(list.revision.value()) + " pages=" + std::to_string(relist_page_count) +
                        " grants=" + std::to_string(fence.held_count()) + " granted=" + std::to_string(c.granted()) +
                        " dropped=" + std::to_string(c.dropped()));
  start_watch(list.revision);
}

void Session::Impl::schedule_relist() {
  relist_timer.expires_after(relist_backoff.next());
  uint64_t gen = session_gen;
  relist_timer.async_wait([this, gen](const boost::system::error_code& ec) {
    if (ec || gen != session_gen || stopping) return;
    start_relist();
  });
}

void Session::Impl::send_release(std::vector<ShardEpoch> shards, int attempt) {
  if (shards.empty() || stopping) return;
  if (shards.size() > kReleaseChunk) {
    std::vector<ShardEpoch> rest(shards.begin() + kReleaseChunk, shards.end());
    shards.resize(kReleaseChunk);
    send_release(std::move(rest), attempt);
  }
  std::string body = release_body(shards);
  pool.call("POST", worker_path("release"), std::move(body), kReleaseTimeoutMs,
            [this, shards = std::move(shards), attempt](PoolReply r) mutable {
              asio::post(strand, [this, shards = std::move(shards), attempt, r = std::move(r)]() mutable {
                if (r.ok()) return metrics.release("ok");
                metrics.release("error");
                log_warn("agent", "event=release_failed shards=" + std::to_string(shards.size()) + " status=" +
                                      std::to_string(r.status()) + " attempt=" + std::to_string(attempt + 1));
                // Unconfirmed, the controllers wait our lease out: slower, still safe.
                if (attempt + 1 >= kReleaseAttempts || stopping) return;
                auto timer = std::make_shared<asio::steady_timer>(strand, milliseconds(200) * (1 << attempt));
                timer->async_wait([this, timer, shards = std::move(shards), attempt](const boost::system::error_code& ec) mutable {
                  if (!ec) send_release(std::move(shards), attempt + 1);
                });
              });
            });
}

bool Session::Impl::commit(const GrantChanges& c) {
  if (failed) return false;
  if (c.refused() > 0) {
    // Normal for a re-list racing a revoke; persistent ones mean the
    // controllers' epochs went back (a wiped cluster with kept agents).
    log_warn("agent", "event=stale_grants_refused count=" + std::to_string(c.refused()) +
                          " hint=\"an epoch never goes down; if the controllers were reset, reset the agents data_dir\"");
  }
  if (c.empty()) return true;
  // A batch that only moves the revision need not cost an fsync: a restart
  // always re-lists before serving, so the stored revision is a hint.
  if (!c.records().empty()) {
    auto saved = store.save(c);
    if (!saved.ok()) {
      fatal("cannot persist grants: " + saved.error().message);
      return false;
    }
  }
  fence.install(c);
  refresh_lease();
  if (!c.records().empty()) {
    metrics.grants_changed(fence.held_count());
    if (c.granted() + c.dropped() > 0) {
      log_info("agent", "event=grants_changed granted=" + std::to_string(c.granted()) + " dropped=" +
                            std::to_string(c.dropped()) + " grants=" + std::to_string(fence.held_count()) +
                            " revision=" + std::to_string(fence.revision().value()));
    }
  }
  return true;
}

void Session::Impl::fatal(const std::string& message) {
  // Fail-stop: an agent that cannot remember an epoch must not accept writes.
  failed = true;
  stopping = true;
  fence.stop();
  synced = false;
  stop_watch();
  tick_timer.cancel();
  relist_timer.cancel();
  log_error("agent", "event=fatal error=\"" + message + "\" action=fence_stopped");
  if (on_fatal) on_fatal(message);
}

void Session::Impl::refresh_lease() {
  if (synced) fence.set_lease_from(leases);
}

void Session::Impl::check_watch_lag(Revision heartbeat_revision, Revision worker_revision) {
  // A watch served by a member cut off from the leader goes on sending
  // progress lines at a stale revision; the heartbeats (through another
  // member) show it. Move the watch if it stays behind for long: soon when
  // it has not brought an event of ours the leader has (the lease waits for
  // it), later when only others' events are missing.
  constexpr auto kWatchLagLimit = std::chrono::seconds(15);
  constexpr auto kOwnEventsLagLimit = std::chrono::seconds(1);
  if (!synced || relist_inflight || !watch) {
    watch_lag.reset();
    return;
  }
  Revision seen = fence.revision();
  if (watch_lag && seen >= watch_lag->first) watch_lag.reset();
  if (seen >= heartbeat_revision) return;
  bool own_events_missing = seen < worker_revision;
  if (!watch_lag) {
    watch_lag = {own_events_missing ? worker_revision : heartbeat_revision, clock.now()};
    return;
  }
  auto limit = own_events_missing ? kOwnEventsLagLimit : kWatchLagLimit;
  if (clock.now() - watch_lag->second > limit) {
    log_warn("agent", "event=watch_lagging seen=" + std::to_string(seen.value()) + " heartbeat_revision=" +
                          std::to_string(heartbeat_revision.value()) + " worker_revision=" +
                          std::to_string(worker_revision.value()) + " action=rewatch endpoint=" + pool.current());
    watch_lag.reset();
    metrics.watch_reconnect();
    start_watch(seen);
  }
}

void Session::Impl::leave(milliseconds timeout, std::function<void(bool)> done) {
  asio::post(strand, [this, timeout, done = std::move(done)] {
    stopping = true;
    tick_timer.cancel();
    relist_timer.cancel();
    stop_watch();
    if (failed || !registered) return done(false);
    pool.call("POST", worker_path("leave"), "{}", static_cast<uint32_t>(timeout.count()),
              [this, done](PoolReply r) {
                asio::post(strand, [this, done, r = std::move(r)] {
                  bool left = r.ok();
                  if (left) {
                    GrantChanges c(fence.table_for_planning());
                    c.drop_all();
                    left = commit(c);
                  }
                  log_info("agent", std::string("event=") + (left ? "left" : "leave_failed") + " status=" +
                                        std::to_string(r.status()) + " endpoint=" + r.endpoint);
                  done(left);
                });
              });
  });
}

Session::Session(asio::io_context& io, net::HttpClient& client, ControllerPool& pool, GrantStore& store,
                 FenceState& fence, AgentMetrics& metrics, const Clock& clock, SessionConfig config)
    : impl_(std::make_shared<Impl>(io, client, pool, store, fence, metrics, clock, std::move(config))) {}

Session::~Session() = default;

void Session::start() { impl_->start(); }

void Session::leave(milliseconds timeout, std::function<void(bool)> done) { impl_->leave(timeout, std::move(done)); }

void Session::on_fatal(std::function<void(const std::string&)> fn) { impl_->on_fatal = std::move(fn); }

bool Session::synced() const { return impl_->synced.load(); }

}  // namespace tenure::agent
