#pragma once
// Raft traffic between members over HTTP on each member's `listen` address:
// POST /raft/messages carries a batch of messages; snapshots travel in
// chunks (POST /raft/snapshot/chunk, then /raft/snapshot/done). Per peer:
// a bounded queue, one request in flight (what queues meanwhile becomes the
// next batch), keep-alive connections, and backoff after failures.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "controller/peer_sender.h"
#include "net/http_client.h"

namespace tenure::controller {

class RaftNode;

struct TransportOptions {
  consensus::NodeId self;
  std::string peer_token;             ///< sent as a bearer token when set
  size_t max_queued_messages = 4096;  ///< per peer; beyond it messages are dropped
  size_t max_batch_bytes = 512 << 10; ///< body size aimed at per POST (server limit is 1 MiB)
  size_t snapshot_chunk_bytes = 512 << 10;
  uint32_t request_timeout_ms = 2000;
  uint32_t max_backoff_ms = 1000;
};

class PeerTransport : public PeerSender {
 public:
  PeerTransport(net::HttpClient& client, TransportOptions options);
  /// The node that receives snapshot verdicts; set before traffic starts.
  void set_node(RaftNode* node) { node_ = node; }

  void send(std::vector<consensus::Message> msgs) override;
  void set_peer_address(const consensus::NodeId& id, const std::string& address) override;
  bool peer_healthy(const consensus::NodeId& id) const override;

 private:
  struct Peer {
    std::string address;
    std::deque<consensus::Message> queue;
    bool in_flight = false;
    bool snapshot_in_flight = false;
    uint32_t backoff_ms = 0;
    std::chrono::steady_clock::time_point retry_at{};
    std::chrono::steady_clock::time_point last_ok{};
    bool last_failed = true;
    uint64_t dropped = 0;
  };
  void pump(const consensus::NodeId& id);  // requires mu_
  void on_done(const consensus::NodeId& id, bool ok);
  void send_snapshot(const consensus::NodeId& id, consensus::Message m);
  void send_chunk(const consensus::NodeId& id, std::string address, std::shared_ptr<consensus::Message> m,
                  std::string transfer, size_t offset);
  net::HeaderMap headers() const;

  net::HttpClient& client_;
  TransportOptions options_;
  RaftNode* node_ = nullptr;
  mutable std::mutex mu_;
  std::map<consensus::NodeId, Peer> peers_;
  uint64_t transfer_seq_ = 0;
};

}  // namespace tenure::controller
