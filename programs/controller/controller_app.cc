#include "programs/controller/controller_app.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <prometheus/registry.h>

#include "api/controller_api.h"
#include "api/history_backfill.h"
#include "api/watch_hub.h"
#include "common/thread_name.h"
#include "peers/wire_limits.h"
#include "common/log.h"
#include "member/bootstrap_guard.h"
#include "member/metrics.h"
#include "peers/peer_transport.h"
#include "member/raft_node.h"
#include "member/supervisor.h"
#include "net/certificate.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/io_runner.h"
#include "net/server_metrics.h"
#include "storage/raft_storage.h"

namespace tenure::controller {

// The parts this program wires together: the member (member/) and its peer
// transport (peers/).
using member::BootstrapVerdict;
using member::check_bootstrap;
using member::NodeOptions;
using member::RaftMetrics;
using member::RaftNode;
using member::Supervisor;
using peers::kMaxBatchBytes;
using peers::kPeerMaxBodyBytes;
using peers::PeerTransport;
using peers::TransportOptions;

namespace {
constexpr int kIoThreads = 2;
}  // namespace

struct ControllerApp::Parts {
  boost::asio::io_context io;
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  std::unique_ptr<storage::RaftStorage> storage;
  std::unique_ptr<member::HistoryStore> history;
  std::unique_ptr<net::HttpClient> client;
  std::unique_ptr<PeerTransport> transport;
  std::unique_ptr<RaftMetrics> metrics;
  std::unique_ptr<RaftNode> node;
  std::unique_ptr<Supervisor> supervisor;
  std::unique_ptr<api::ControllerApi> api;
  std::unique_ptr<net::HttpServer> server;
};

ControllerApp::ControllerApp(config::ControllerConfig config) : config_(std::move(config)) {}
ControllerApp::~ControllerApp() = default;

namespace {
NodeOptions node_options(const config::ControllerConfig& c) {
  NodeOptions o;
  o.id = consensus::NodeId(c.node_id);
  // A 10 ms tick (coarser only if the heartbeat is shorter than that).
  o.tick_ms = std::clamp<uint32_t>(c.raft.heartbeat_interval_ms / 10, 1, 10);
  o.heartbeat_ticks = static_cast<int>(std::max<uint32_t>(1, c.raft.heartbeat_interval_ms / o.tick_ms));
  o.election_ticks = static_cast<int>(std::max<uint32_t>(o.heartbeat_ticks + 1, c.raft.election_timeout_ms / o.tick_ms));
  // Fail over within about 1.1 election timeouts: a window of a tenth of it
  // still spreads members over many ticks (pre-vote absorbs the rare tie).
  o.election_jitter_ticks = std::max(2, o.election_ticks / 10);
  // A member that heard the leader refuses votes for (election_ticks - 1)
  // ticks at least; 0.8 of that leaves room for clocks that run up to 20 %
  // apart (libfaketime's drift in the chaos suite: 0.98-1.02).
  if (c.raft.lease_reads) o.read_lease_ms = static_cast<uint32_t>((o.election_ticks - 1) * o.tick_ms * 8 / 10);
  o.snapshot_threshold_entries = c.raft.snapshot_threshold_entries;
  // And by bytes: a fleet that keeps moving writes few, large entries
  // (failover and placement passes), which the entry count alone lets grow
  // in memory without end. The bound is also at least twice the last
  // snapshot's size or the state's estimate (DriverOptions): a fixed 32 MiB
  // at 1,000,000 long ids (230 MB snapshots) took them back to back during
  // a mass failover and made it miss lease + 2 s (integration.scale_failover;
  // docs/performance.md).
  o.snapshot_threshold_bytes = 64ull << 20;
  o.stagger_snapshots = true;
  o.limits.events_kept = c.watch_events_kept;
  o.snapshot_keep_entries = std::min<uint64_t>(1000, c.raft.snapshot_threshold_entries / 2);
  bool member_of_peers = false;
  for (const auto& p : c.peers) {
    o.configured_addresses[consensus::NodeId(p.id)] = p.address;
    member_of_peers = member_of_peers || p.id == c.node_id;
  }
  // A node listed among the initial peers bootstraps the group with them;
  // one that is not joins an existing group and waits to be added.
  if (member_of_peers) {
    for (const auto& p : c.peers) o.bootstrap_voters.emplace_back(p.id);
  }
  return o;
}

net::ClientOptions client_options(const config::ControllerConfig& c) {
  net::ClientOptions o;
  o.tls = c.tls_enabled();
  o.tls_ca_file = c.tls.ca_file;
  o.tls_cert_file = c.tls.cert_file;
  o.tls_key_file = c.tls.key_file;
  o.tls_server_kind = "controller";  // peers and the leader we forward to are controllers
  return o;
}
// An open control plane is legitimate on a laptop, never by accident.
void warn_if_open(const config::ControllerConfig& c) {
  if (!c.auth.enabled()) {
    log_warn("security", "event=auth_disabled node=" + c.node_id +
                             " hint=\"no auth tokens: anyone who can reach " + c.listen.str() +
                             " may change shards, act as any agent and inject Raft messages (docs/security.md)\"");
  }
  if (c.tls.ca_file.empty()) {
    log_warn("security", "event=client_certificates_off node=" + c.node_id +
                             " hint=\"without tls.ca_file, callers are not identified by certificate (docs/security.md)\"");
  }
}
}  // namespace

bool ControllerApp::may_start(const std::atomic<bool>& stopping) {
  bool bootstrapping = false;
  for (const auto& peer : config_.peers) bootstrapping = bootstrapping || peer.id == config_.node_id;
  if (!parts_->storage->empty() || !bootstrapping) return true;
  // A first start bootstraps only once a peer has vouched that this member
  // never took part: a member that lost its data must not vote again.
  for (int attempt = 0; !stopping; ++attempt) {
    auto verdict = check_bootstrap(config_);
    if (verdict.kind == BootstrapVerdict::Kind::kProceed) return true;
    if (verdict.kind == BootstrapVerdict::Kind::kRefuse) {
      std::fprintf(stderr, "tenure-controller: %s\n", verdict.reason.c_str());
      return false;
    }
    if (attempt % 10 == 0) {
      log_warn("controller", "event=waiting_for_peers reason=first_start_needs_a_peer_answer node=" + config_.node_id);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(500));  // retry pace, not a wait for a state
  }
  return false;
}

int ControllerApp::run() {
  parts_ = std::make_unique<Parts>();
  Parts& p = *parts_;
  std::filesystem::create_directories(config_.data_dir);
  p.storage = storage::RaftStorage::open(config_.data_dir);
  if (p.storage->empty() && config_.peers.empty()) {
    std::fprintf(stderr, "tenure-controller: %s\n", config::peers_required_error(config_).message.c_str());
    return 2;
  }
  p.client = std::make_unique<net::HttpClient>(p.io, client_options(config_));
  TransportOptions topts;
  topts.self = consensus::NodeId(config_.node_id);
  topts.peer_token = config_.auth.peer_token;
  topts.max_batch_bytes = kMaxBatchBytes;
  topts.max_message_bytes = kPeerMaxBodyBytes - 16;
  topts.snapshot_dir = config_.data_dir;
  topts.recorded_snapshot_crc = [storage = p.storage.get()](consensus::LogIndex index, consensus::Term term) {
    return storage->recorded_snapshot_crc(index, term);
  };
  p.transport = std::make_unique<PeerTransport>(*p.client, topts);
  p.metrics = std::make_unique<RaftMetrics>(*p.registry);
  p.transport->set_refused_metric(&p.metrics->peer_refused);
  net::register_certificate_expiry(*p.registry, config_.tls.cert_file, config_.tls.ca_file);
  NodeOptions nopts = node_options(config_);
  p.history = std::make_unique<member::HistoryStore>(config_.data_dir, nopts.limits.history_per_shard);
  p.node = std::make_unique<RaftNode>(p.io, std::move(nopts), *p.storage, *p.transport, *p.metrics, p.history.get());
  p.transport->on_snapshot_verdict([node = p.node.get()](const consensus::NodeId& to, bool delivered) {
    node->report_snapshot(to, delivered);
  });
  p.transport->on_corrupt_snapshot([node = p.node.get()] { node->snapshot_now(); });

  controlplane::FleetPolicyOptions sup;
  sup.lease_ms = config_.worker_lease_ms;
  sup.max_concurrent_moves = config_.placement.max_concurrent_moves;
  sup.join_delay_ms = config_.placement.join_delay_ms;
  sup.prepare_timeout_ms = config_.placement.prepare_timeout_ms;
  p.supervisor = std::make_unique<Supervisor>(*p.node, sup, *p.registry);
  p.node->set_tick_hook([&p] { p.supervisor->on_tick(); });

  api::ApiOptions aopts;
  aopts.admin_token = config_.auth.admin_token;
  aopts.agent_token = config_.auth.agent_token;
  aopts.peer_token = config_.auth.peer_token;
  aopts.read_token = config_.auth.read_token;
  aopts.client_certs = !config_.tls.ca_file.empty();
  warn_if_open(config_);
  aopts.snapshot_spool_dir = config_.data_dir + "/snapshot-inbox";
  p.api = std::make_unique<api::ControllerApi>(*p.node, *p.supervisor, *p.client, aopts, p.registry);
  p.node->set_apply_hook([&p] {
    p.supervisor->on_applied();
    p.api->watches().on_applied();
  });
  p.node->set_every_tick_hook([&p] {
    p.api->watches().on_tick();
    if (auto* backfill = p.api->history_backfill()) backfill->on_tick();
  });

  net::ServerOptions sopts;
  sopts.host = config_.listen.host;
  sopts.port = config_.listen.port;
  // Peer batches (wire_limits.h) may exceed the 1 MiB a client may send.
  sopts.body_limits = {net::BodyLimit{"/raft/", kPeerMaxBodyBytes}};
  sopts.tls_cert_file = config_.tls.cert_file;
  sopts.tls_key_file = config_.tls.key_file;
  sopts.tls_ca_file = config_.tls.ca_file;
  // A descriptor per connection: raise the soft limit, and keep the cap
  // below it so that accept() (and our own files) never run out.
  uint64_t fd_limit = net::raise_fd_limit();
  sopts.max_connections = net::connection_cap(config_.limits.max_connections, fd_limit);
  if (sopts.max_connections < config_.limits.max_connections) {
    log_warn("controller", "event=connection_cap_lowered limits.max_connections=" +
                               std::to_string(config_.limits.max_connections) + " cap=" +
                               std::to_string(sopts.max_connections) + " rlimit_nofile=" + std::to_string(fd_limit));
  }
  p.api->watches().set_max_streams(config_.limits.max_watch_streams);
  p.server = std::make_unique<net::HttpServer>(
      p.io, sopts, [&p](net::HttpRequest req, std::shared_ptr<net::Responder> res) {
        p.api->handle(std::move(req), std::move(res));
      });
  p.api->set_server_stats([&p] { return p.server->stats(); });
  auto started = p.server->start();
  if (!started.ok()) {
    std::fprintf(stderr, "tenure-controller: cannot listen on %s: %s\n", config_.listen.str().c_str(),
                 started.error().message.c_str());
    return 1;
  }
  std::atomic<bool> stopping{false};
  boost::asio::signal_set signals(p.io, SIGTERM, SIGINT);
  signals.async_wait([&p, &stopping](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    log_info("controller", "event=stopping signal=" + std::to_string(sig));
    stopping = true;
    // A leader hands its leadership over first, serving meanwhile, so that
    // the group does not wait an election timeout for a member that is
    // leaving on purpose (etcd and LogCabin do the same on a planned stop).
    p.node->hand_over_leadership([&p](bool) {
      boost::asio::post(p.io, [&p] {
        p.server->stop();
        p.node->stop();
        p.client->shutdown();
        p.io.stop();
      });
    });
  });
  // The listener serves (answering "not serving yet") while a first start
  // asks its peers, so the members of a new group can answer each other.
  std::vector<std::thread> threads;
  // Two io threads. Nothing on them blocks (fsyncs run on the Raft node's
  // persist worker), so one would do, and it spends less CPU per request
  // (no futex wake-up per hop between strands); but on a machine shared
  // with other work a lone thread that is preempted stalls the whole
  // member: with two, linearizable reads at 64 connections went from 33k/s
  // to 44k/s and the writes' p99 from ~22 to ~14 ms (docs/performance.md).
  // TENURE_IO_THREADS overrides it for such A/B runs.
  int nthreads = std::getenv("TENURE_IO_THREADS") ? std::max(1, std::atoi(std::getenv("TENURE_IO_THREADS"))) : kIoThreads;
  for (int i = 0; i < nthreads; ++i) threads.emplace_back([&p] {
      name_this_thread("tenure-io");
      net::run_guarded(p.io, "controller");
    });
  int rc = 0;
  if (!may_start(stopping)) {
    rc = stopping ? 0 : 1;
    signals.cancel();
    p.server->stop();
    p.client->shutdown();
    p.io.stop();
  } else {
    p.node->start();
    log_info("controller", "event=started node=" + config_.node_id + " listen=" + config_.listen.str() +
                               " data_dir=" + config_.data_dir);
  }
  for (auto& t : threads) t.join();
  if (rc != 0) return rc;
  // Every Ready was persisted synchronously before it was acknowledged: the
  // storage is consistent; closing it checkpoints the WAL.
  p.api.reset();
  p.node.reset();
  p.storage.reset();
  log_info("controller", "event=stopped node=" + config_.node_id);
  return 0;
}

}  // namespace tenure::controller
