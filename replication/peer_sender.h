#pragma once
// The narrow interface through which the Raft driver sends to its peers
// (DESIGN.md: adapters at the edge). The HTTP peer transport implements it;
// tests may too.

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
};

}  // namespace tenure::replication
