#pragma once
// The leader services' port errors (controlplane/consensus_port.h) and the
// Raft driver's errors (replication/raft_driver.h), one to one both ways:
// the API answers a service's error exactly as it answered the driver's
// (api/controller_api.cc, reply_node_error: 503 no_leader, timeout, busy;
// 409 conflict; 413 too_large).

#include "controlplane/consensus_port.h"
#include "replication/raft_driver.h"

namespace tenure::member {

/// The port's error for a driver error: same code, message and leader hint.
controlplane::PortError to_port_error(const replication::NodeError& e);
/// The driver's error for a port error: same code, message and leader hint.
replication::NodeError to_node_error(const controlplane::PortError& e);

}  // namespace tenure::member
