#include "member/port_errors.h"

#include <utility>

namespace tenure::member {

using controlplane::PortError;
using replication::NodeErrc;
using replication::NodeError;

namespace {
constexpr std::pair<NodeErrc, PortError::Code> kCodes[] = {
    {NodeErrc::kNotLeader, PortError::Code::kNotLeader}, {NodeErrc::kTimeout, PortError::Code::kTimeout},
    {NodeErrc::kDropped, PortError::Code::kDropped},     {NodeErrc::kBusy, PortError::Code::kBusy},
    {NodeErrc::kStopped, PortError::Code::kStopped},     {NodeErrc::kInvalid, PortError::Code::kInvalid},
    {NodeErrc::kTooLarge, PortError::Code::kTooLarge},
};
}  // namespace

PortError to_port_error(const NodeError& e) {
  PortError p;
  for (const auto& [node, port] : kCodes) {
    if (node == e.code) p.code = port;
  }
  p.message = e.message;
  p.leader = e.leader;
  return p;
}

NodeError to_node_error(const PortError& e) {
  NodeError n{NodeErrc::kNotLeader, e.message, e.leader};
  for (const auto& [node, port] : kCodes) {
    if (port == e.code) n.code = node;
  }
  return n;
}

}  // namespace tenure::member
