#include "controlplane/types.h"

namespace tenure::controlplane {

bool valid_id(const std::string& s, size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

const char* to_string(ShardState s) {
  switch (s) {
    case ShardState::kUnassigned: return "unassigned";
    case ShardState::kActive: return "active";
    case ShardState::kHandoff: return "handoff";
  }
  return "?";
}

const char* to_string(WorkerState s) {
  switch (s) {
    case WorkerState::kAlive: return "alive";
    case WorkerState::kDraining: return "draining";
    case WorkerState::kDead: return "dead";
  }
  return "?";
}

const char* to_string(HandoffPhase p) {
  switch (p) {
    case HandoffPhase::kDraining: return "draining";
    case HandoffPhase::kPreparing: return "preparing";
  }
  return "?";
}

const char* to_string(ChangeReason r) {
  switch (r) {
    case ChangeReason::kCreated: return "created";
    case ChangeReason::kDeadWorker: return "dead_worker";
    case ChangeReason::kDrain: return "drain";
    case ChangeReason::kRebalance: return "rebalance";
    case ChangeReason::kManual: return "manual";
    case ChangeReason::kDeleted: return "deleted";
    case ChangeReason::kReleased: return "released";
  }
  return "?";
}

}  // namespace tenure::controlplane
