// The supervisor's error mapping between the Raft driver and the leader
// services' port: the API answers a service's error by the driver's code
// (503 no_leader, timeout or busy; 409 conflict; 413 too_large), so each
// code must come back as itself, with its message and leader hint.
#include <gtest/gtest.h>

#include <set>

#include "member/port_errors.h"

namespace tenure::member {
namespace {

using controlplane::PortError;
using replication::NodeErrc;
using replication::NodeError;

TEST(PortErrors, EachDriverCodeHasItsOwnPortCodeAndComesBack) {
  const std::pair<NodeErrc, PortError::Code> expected[] = {
      {NodeErrc::kNotLeader, PortError::Code::kNotLeader}, {NodeErrc::kTimeout, PortError::Code::kTimeout},
      {NodeErrc::kDropped, PortError::Code::kDropped},     {NodeErrc::kBusy, PortError::Code::kBusy},
      {NodeErrc::kStopped, PortError::Code::kStopped},     {NodeErrc::kInvalid, PortError::Code::kInvalid},
      {NodeErrc::kTooLarge, PortError::Code::kTooLarge},
  };
  std::set<PortError::Code> seen;
  for (const auto& [node, port] : expected) {
    NodeError e{node, "why " + std::to_string(static_cast<int>(node)), consensus::NodeId("c2")};
    PortError p = to_port_error(e);
    EXPECT_EQ(p.code, port) << static_cast<int>(node);
    EXPECT_EQ(p.message, e.message);
    EXPECT_EQ(p.leader, consensus::NodeId("c2"));
    seen.insert(p.code);
    NodeError back = to_node_error(p);
    EXPECT_EQ(back.code, node);
    EXPECT_EQ(back.message, e.message);
    EXPECT_EQ(back.leader, e.leader);
  }
  EXPECT_EQ(seen.size(), std::size(expected)) << "two driver codes collapsed into one port code";
}

}  // namespace
}  // namespace tenure::member
