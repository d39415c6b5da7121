#pragma once
// The controller's REST API (CONTRACT.md "Controller HTTP API"): routing,
// authentication, forwarding to the leader, JSON errors and HTTP metrics.
// Handlers run on HTTP threads; anything touching replicated state goes
// through the RaftNode (its strand).

#include <atomic>
#include <map>
#include <mutex>
#include <memory>
#include <string>
#include <string_view>
#include <tuple>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "api/snapshot_inbox.h"

#include "api/router.h"
#include "member/raft_node.h"
#include "member/supervisor.h"
#include "controlplane/propose_pieces.h"
#include "net/http_client.h"
#include "net/server_metrics.h"

namespace tenure::api {

class WatchHub;
class HistoryBackfill;

/// The HTTP answer to a refused command (404, 409 or 400).
net::HttpResponse apply_error(const controlplane::ApplyResult& r);

struct ApiOptions {
  /// All three set or all empty (auth off); see api/access.h for the rules.
  std::string admin_token;
  std::string agent_token;
  std::string peer_token;
  std::string read_token;  ///< set: reads need a token of any role
  /// tls.ca_file is set: every client presents a verified certificate, and
  /// what it names is bound (CertIdentity, check_certificate).
  bool client_certs = false;
  uint32_t forward_timeout_ms = 5000;
  /// Where incoming snapshot chunks are spooled (data_dir/snapshot-inbox);
  /// empty: a directory under the system's temp dir.
  std::string snapshot_spool_dir;
  SnapshotInboxLimits snapshot_limits;
};

class ControllerApi {
 public:
  ControllerApi(member::RaftNode& node, member::Supervisor& supervisor, net::HttpClient& client,
                ApiOptions options, std::shared_ptr<prometheus::Registry> registry);
  ~ControllerApi();

  /// The net::Handler of the controller's listener.
  void handle(net::HttpRequest req, std::shared_ptr<net::Responder> res);
  /// Registers extra routes (the peer transport's, the agents' calls).
  Router& router() { return router_; }
  WatchHub& watches() { return *watches_; }
  /// Copies the leader's history into this member's gap (null when the
  /// node keeps no history); ticked by the controller.
  HistoryBackfill* history_backfill() { return backfill_.get(); }
  /// Where /metrics reads the listener's counters (set once, before serving).
  void set_server_stats(std::function<net::ServerStats()> stats) { server_stats_ = std::move(stats); }

  /// Sends `response` and records the request's metrics.
  void reply(const CallPtr& call, net::HttpResponse response);
  /// Records the metrics of a request answered by a stream (watch).
  void reply_stream_started(const CallPtr& call);
  /// 503 no_leader with Retry-After.
  void reply_no_leader(const CallPtr& call, const std::string& why);
  /// Maps a driver error to its HTTP answer.
  void reply_node_error(const CallPtr& call, const member::NodeError& err);
  /// A request id for a proposal: the client's Idempotency-Key or a new one.
  std::string request_id(const CallPtr& call);
  member::RaftNode& node() { return node_; }
  /// Whether tokens are required (GET /v1/cluster reports it).
  bool auth_enabled() const { return tokens_.enabled(); }
  /// Under mutual TLS, whether `from` (a Raft message's sender) is the
  /// controller the call's certificate names; if not, answers 403 and counts it.
  bool sender_matches(const CallPtr& call, std::string_view from);
  /// Runs `fn` on the state at the request's consistency: linearizable by
  /// default (ReadIndex, also at followers), or this member's own state with
  /// ?consistency=stale.
  void with_state(const CallPtr& call, std::function<void(const controlplane::StateMachine&)> fn);
  /// On the strand, copies one page off the state and returns what writes
  /// its body (run later on an I/O thread).
  using PageCollector = std::function<std::function<std::string()>(const controlplane::StateMachine&)>;
  /// Answers one page of a paged list (api/list_pages.h): `collect` runs on
  /// the strand at the request's consistency, timed in
  /// tenure_list_page_strand_seconds; the body is written off the strand.
  void serve_page(const CallPtr& call, PageCollector collect);

 private:
  void add_routes();
  void add_shard_routes();
  void add_list_routes();
  void add_worker_routes();
  void add_cluster_routes();
  void move_shard(const CallPtr& call);
  /// Answers GET /v1/shards/{id}/history with what the history store read.
  void answer_history(const CallPtr& call, const member::HistoryStore::Answer& a);
  /// A register or heartbeat answer, built off the Raft strand.
  void answer_lease(const CallPtr& call, const controlplane::LeaseReply& a);
  /// Answers POST /v1/shards once every piece of the create has an outcome.
  void answer_create(const CallPtr& call, const controlplane::PiecesOutcome& o);
  void add_peer_routes();
  void reply_inbox(const CallPtr& call, const std::shared_ptr<SnapshotInbox>& inbox, SnapshotInbox::Status st,
                   const std::string& from, const char* what);
  prometheus::Gauge* snapshot_transfers_ = nullptr;
  prometheus::Family<prometheus::Counter>* snapshot_refusals_ = nullptr;
  void add_agent_routes();
  void add_rebalance_routes();
  void add_ui_routes();
  /// The token and certificate rules for `route`; the refusal to send, if any.
  std::optional<net::HttpResponse> check_access(const Route& route, Call& call);
  /// Counts a refusal and makes its answer (401 with WWW-Authenticate, or 403).
  net::HttpResponse deny(const Call& call, const Denial& denial);
  void forward_to_leader(const CallPtr& call);
  void serve_metrics(const CallPtr& call);
  struct RouteMetrics {
    prometheus::Counter* requests;
    prometheus::Histogram* latency;
  };
  /// The request counter and latency histogram of (route, method, status).
  RouteMetrics route_metrics(const std::string& route, const std::string& method, int status);

  member::RaftNode& node_;
  member::Supervisor& supervisor_;
  net::HttpClient& client_;
  ApiOptions options_;
  TokenSet tokens_;
  std::shared_ptr<prometheus::Registry> registry_;
  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& latency_;
  prometheus::Histogram& list_page_strand_;
  prometheus::Family<prometheus::Counter>& denied_;  ///< labels: route pattern x reason (bounded)
  prometheus::Counter& escaped_exceptions_;  ///< net::escaped_exceptions(), synced at scrape time
  std::mutex scrape_mu_;
  std::function<net::ServerStats()> server_stats_;
  std::unique_ptr<net::ServerMetrics> server_metrics_;
  uint64_t escaped_synced_ = 0;
  Router router_;
  std::unique_ptr<WatchHub> watches_;
  std::unique_ptr<HistoryBackfill> backfill_;
  std::atomic<uint64_t> request_seq_{0};
  /// prometheus-cpp's Family::Add builds a label map and a whole new metric
  /// (a Histogram with its buckets) before finding the existing one: done
  /// once per (route, method, status), not per request. Bounded.
  std::mutex route_metrics_mu_;
  using RouteMetricsKey = std::tuple<std::string, std::string, int>;
  using RouteMetricsView = std::tuple<std::string_view, std::string_view, int>;
  /// Orders keys and their views alike, so that a lookup copies no strings.
  /// Compared field by field: std::less<> on a tuple of strings against a
  /// tuple of views does not compile with clang-14 and libstdc++ 12.
  struct RouteMetricsLess {
    using is_transparent = void;
    static RouteMetricsView view(const RouteMetricsView& v) { return v; }
    static RouteMetricsView view(const RouteMetricsKey& k) { return {std::get<0>(k), std::get<1>(k), std::get<2>(k)}; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      auto [ar, am, as] = view(a);
      auto [br, bm, bs] = view(b);
      if (int c = ar.compare(br); c != 0) return c < 0;
      if (int c = am.compare(bm); c != 0) return c < 0;
      return as < bs;
    }
  };
  std::map<RouteMetricsKey, RouteMetrics, RouteMetricsLess> route_metrics_;
  std::string request_prefix_;
};

}  // namespace tenure::api
