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

namespace tenure::member {

struct BootstrapVerdict {
  enum class Kind {
    kProceed,   ///< peers answered, and each lists nobody or lists this member as not started: a new group
    kRefuse,    ///< a peer knows it already took part, or runs a group without it: never bootstrap
    kNoAnswer,  ///< no peer answered yet: ask again (members of a new group serve while they ask)
  } kind;
  std::string reason;  ///< one line, for kRefuse
};

/// Asks the other initial members once. A group of one proceeds at once.
BootstrapVerdict check_bootstrap(const config::ControllerConfig& config);

}  // namespace tenure::member
