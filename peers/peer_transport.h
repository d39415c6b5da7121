#pragma once
// Raft traffic between members over HTTP on each member's `listen` address:
// POST /raft/messages carries a batch of messages; snapshots travel in
// chunks (POST /raft/snapshot/chunk, then /raft/snapshot/done). Per peer,
// two lanes, each with a bounded queue and one request in flight (what
// queues meanwhile becomes the next batch): appends that carry entries, and
// everything else (heartbeats, votes, answers), so that a heartbeat never
// waits behind a megabyte of entries. Keep-alive connections, backoff after
// failures. A batch is at most max_batch_bytes (one message alone may be
// larger, up to wire_limits.h's kMaxMessageBytes), below what the peer
// routes accept; a batch the peer refuses (4xx) is logged with its reason
// and counted, and the lane sends smaller batches from then on.

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "replication/peer_sender.h"
#include <prometheus/counter.h>
#include <prometheus/family.h>

#include "net/http_client.h"

namespace tenure::peers {

struct TransportOptions {
  consensus::NodeId self;
  std::string peer_token;             ///< sent as a bearer token when set
  size_t max_queued_messages = 4096;  ///< per peer; beyond it messages are dropped
  size_t max_batch_bytes = 1 << 20;   ///< a POST's body at most (one larger message goes alone)
  /// Larger messages are never sent (the peer would refuse them): dropped, logged and counted.
  size_t max_message_bytes = 4 << 20;
  size_t snapshot_chunk_bytes = 512 << 10;
  /// Where a snapshot message without data (Raft::release_snapshot_data)
  /// reads its bytes: the member's data_dir, whose snapshot files it streams
  /// a chunk at a time.
  std::string snapshot_dir;
  /// The CRC32C that raft.db records for the snapshot at (index, term)
  /// (storage::RaftStorage::recorded_snapshot_crc), nullopt when it records
  /// another. A file streamed from snapshot_dir is checked against it before
  /// its last request: bytes rotted on this member's disk never reach a
  /// follower. Unset: not checked.
  std::function<std::optional<uint32_t>(consensus::LogIndex, consensus::Term)> recorded_snapshot_crc;
  uint32_t request_timeout_ms = 2000;
  uint32_t max_backoff_ms = 1000;
  /// A probe (PeerSender::probe) that gets no answer this soon proves nothing.
  uint32_t probe_timeout_ms = 250;
};

class PeerTransport : public replication::PeerSender {
 public:
  PeerTransport(net::HttpClient& client, TransportOptions options);
  /// Counts refused requests by reason (label `reason`: too_large,
  /// bad_request, unauthorized, other, oversized); set before traffic starts.
  void set_refused_metric(prometheus::Family<prometheus::Counter>* refused) { refused_ = refused; }
  /// Who hears whether a snapshot got through (the Raft node's
  /// report_snapshot); set before traffic starts.
  using SnapshotVerdict = std::function<void(const consensus::NodeId& to, bool delivered)>;
  void on_snapshot_verdict(SnapshotVerdict fn) { snapshot_verdict_ = std::move(fn); }
  /// Who hears that a snapshot file failed its check (the Raft node takes a
  /// new snapshot, whose file replaces it); set before traffic starts.
  void on_corrupt_snapshot(std::function<void()> fn) { corrupt_snapshot_ = std::move(fn); }

  void send(std::vector<consensus::Message> msgs) override;
  void set_peer_address(const consensus::NodeId& id, const std::string& address) override;
  bool peer_healthy(const consensus::NodeId& id) const override;
  void probe(const consensus::NodeId& id, std::function<void(bool refused)> done) override;

 private:
  enum LaneId : size_t { kControl = 0, kAppends = 1, kLanes = 2 };
  struct Lane {
    std::deque<consensus::Message> queue;
    bool in_flight = false;
    size_t max_batch_bytes = 0;  ///< 0: options_.max_batch_bytes; lowered after a 413
  };
  struct Peer {
    std::string address;
    Lane lanes[kLanes];
    bool snapshot_in_flight = false;
    uint32_t backoff_ms = 0;
    std::chrono::steady_clock::time_point retry_at{};
    std::chrono::steady_clock::time_point last_ok{};
    bool last_failed = true;
    uint64_t dropped = 0;
    uint64_t refused = 0;
  };
  void pump(const consensus::NodeId& id);  // requires mu_
  void pump_lane(const consensus::NodeId& id, Peer& p, LaneId lane);  // requires mu_
  void on_done(const consensus::NodeId& id, LaneId lane, size_t body_bytes, const net::ClientResult& r);
  void count_refused(const char* reason);
  struct SnapshotTransfer;
  void send_snapshot(const consensus::NodeId& id, consensus::Message m);
  void send_chunk(std::shared_ptr<SnapshotTransfer> t, uint64_t offset);
  void end_transfer(const SnapshotTransfer& t, bool delivered);
  net::HeaderMap headers() const;

  net::HttpClient& client_;
  TransportOptions options_;
  SnapshotVerdict snapshot_verdict_;
  std::function<void()> corrupt_snapshot_;
  prometheus::Family<prometheus::Counter>* refused_ = nullptr;
  mutable std::mutex mu_;
  std::map<consensus::NodeId, Peer> peers_;
  uint64_t transfer_seq_ = 0;
};

}  // namespace tenure::peers
