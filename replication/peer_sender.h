#pragma once
// The narrow interface through which the Raft driver sends to its peers
// (DESIGN.md: adapters at the edge). The HTTP peer transport implements it;
// tests may too.

#include <functional>
#include <string>
#include <vector>

#include "consensus/message.h"

namespace tenure::replication {

class PeerSender {
 public:
  virtual ~PeerSender() = default;
  /// Queues messages for their destinations. Never blocks: when a peer's
  /// bounded queue is full, messages are dropped (Raft retransmits).
  /// Thread: any.
  virtual void send(std::vector<consensus::Message> msgs) = 0;
  /// Where to dial a member; a member's address in this node's config wins.
  virtual void set_peer_address(const consensus::NodeId& id, const std::string& address) = 0;
  /// Whether the last exchange with the member succeeded recently.
  virtual bool peer_healthy(const consensus::NodeId& id) const = 0;
  /// Dials the member's address (a connection only, no request) and calls
  /// `done(true)` if it was refused: nothing listens there, its process is
  /// gone. A connection accepted, a timeout or any other failure gives
  /// `done(false)`: a live member that is slow, paused or cut off must
  /// never look gone. `done` runs on any thread, exactly once.
  virtual void probe(const consensus::NodeId& id, std::function<void(bool refused)> done) = 0;
};

}  // namespace tenure::replication
