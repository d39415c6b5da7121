#pragma once
// The controller's YAML config (CONTRACT.md, "Controller config"), read
// strictly: an unknown key anywhere, a wrong type, a missing required key,
// an unreadable file or invalid YAML is an error whose message is one line
// naming the key path, e.g.
//   config /etc/tenure/c1.yaml: raft.election_timeout_ms: expected an unsigned integer, got "fast"
// No exception leaves this module.

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.h"
#include "config/host_port.h"
#include "config/tls_config.h"

namespace tenure::config {

/// One initial voting member: its id and the address this node dials it at.
struct PeerConfig {
  std::string id;
  std::string address;  ///< validated "host:port"
};

struct ControllerConfig {
  std::string node_id;   ///< [A-Za-z0-9._-]{1,64}
  std::string data_dir;  ///< non-empty; created by the storage if missing
  HostPort listen;
  /// The initial voters, this node among them on a group's first start. A
  /// list without this node makes it join an existing group (it waits to be
  /// added through POST /v1/members; the list gives the members' addresses).
  /// Empty when the config gives none: allowed only if data_dir already holds
  /// state, which the caller checks (see peers_required_error()).
  std::vector<PeerConfig> peers;
  struct Raft {
    uint32_t heartbeat_interval_ms = 100;  ///< > 0 and < election_timeout_ms
    uint32_t election_timeout_ms = 1000;
    uint64_t snapshot_threshold_entries = 100000;  ///< > 0
    /// The leader answers linearizable reads (and agents' heartbeats) on a
    /// lease of 0.8 election timeouts instead of a heartbeat round per
    /// batch; assumes members' steady clocks run at rates within 20 % of
    /// each other (docs/architecture.md, "Reads on the leader's lease").
    bool lease_reads = true;
  } raft;
  uint32_t worker_lease_ms = 3000;  ///< > 0
  /// Change events kept for watches; a watch from an older revision gets
  /// 410. The same value must be used on every member (it shapes snapshots).
  uint32_t watch_events_kept = 200000;  ///< >= 16
  /// Bearer tokens (CONTRACT.md "Security"): admin, agent and peer are all
  /// set or all empty (auth off); read_token only with them. Each may be
  /// given as `<name>_file` in the YAML, read at load time. All distinct.
  struct Auth {
    std::string admin_token, agent_token, peer_token;
    std::string read_token;  ///< when set, reads need a token of any role
    bool enabled() const { return !admin_token.empty(); }
  } auth;
  using Tls = TlsConfig;
  Tls tls;
  /// True when cert_file and key_file are set (they come together).
  bool tls_enabled() const { return !tls.cert_file.empty(); }
  struct Placement {
    uint32_t max_concurrent_moves = 64;  ///< > 0
    uint32_t join_delay_ms = 0;          ///< wait this long before giving a new worker shards
    /// A planned move's target that has not said it is prepared by then is
    /// treated as prepared (FleetPolicyOptions::prepare_timeout_ms).
    uint32_t prepare_timeout_ms = 10000;
  } placement;
  /// Bounds on what clients can make a member hold (docs/architecture.md,
  /// "Limits"). Each is also exported as a metric.
  struct Limits {
    /// Open watch streams on this member; past it a new watch gets 503 busy
    /// with Retry-After (tenure_watch_streams, tenure_watch_streams_refused_total).
    uint32_t max_watch_streams = 4096;  ///< >= 1
    /// Open client connections; further ones are closed at accept. Lowered
    /// at start to stay below RLIMIT_NOFILE (tenure_http_connections_max).
    uint32_t max_connections = 10000;  ///< >= 16
  } limits;

  /// Where the config came from ("<inline>" for parsed text), for messages.
  std::string source;
};

/// Reads and validates the config file at `path`.
ConfigResult<ControllerConfig> load_controller_config(const std::string& path);
/// Validates YAML text; `source` names it in error messages.
ConfigResult<ControllerConfig> parse_controller_config(const std::string& yaml_text,
                                                       const std::string& source = "<inline>");

/// The error to report when `cfg.peers` is empty and cfg.data_dir holds no
/// state (a first start cannot invent its group), e.g.
///   config c1.yaml: missing required key "peers" (required on first start: data_dir /x holds no state)
ConfigError peers_required_error(const ControllerConfig& cfg);

}  // namespace tenure::config
