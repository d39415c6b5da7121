#pragma once
// Before a member bootstraps a group from an empty data_dir, it asks its
// peers whether it already took part in that group (etcd does the same
// before `--initial-cluster-state new`). A member that lost its data and
// bootstrapped again would have forgotten its vote and the entries it
// acknowledged, and could help elect a leader that lacks an acknowledged
// write. Such a member must be removed and added back as a new one.

#include <optional>
#include <string>

#include "config/controller_config.h"

namespace tenure::controller {

/// Returns the one-line reason to refuse bootstrapping, or nullopt when no
/// reachable peer knows this member as one that already took part. Peers
/// that do not answer (a brand-new group starting) do not block.
std::optional<std::string> bootstrap_refusal(const config::ControllerConfig& config);

}  // namespace tenure::controller
