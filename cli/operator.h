#pragma once
// tenurectl's commands that are more than one REST call: `cluster` (the
// members' health as the leader sees it), `status`, the `--wait` of drain and
// rebalance, and shell completion.

#include <string>
#include <vector>

#include "cli/client.h"
#include "cli/commands.h"

namespace tenure::cli {

/// Exit code of a `--wait` that timed out before the work was done.
inline constexpr int kExitWaitTimedOut = 3;

/// The one-line error of a refused answer (and, with -o json, its body); 1.
int refused(const Options& opt, const Answer& a, std::string& error);
/// A client of the same token and TLS settings as `opt`, for `endpoints`.
CtlClient make_client(const Options& opt, std::vector<std::string> endpoints);

/// `tenurectl cluster`: the asked member's view, with the members' health
/// and lag taken from the leader (followers do not know each other's).
int cluster_command(const Options& opt, CtlClient& client, std::string& error);
/// `tenurectl status`: one screen of the group, fleet and what needs a look.
int status_command(const Options& opt, CtlClient& client, std::string& error);
/// Polls until worker `id` holds no shard (after `workers drain ID --wait`).
int wait_drained(const Options& opt, CtlClient& client, const std::string& id, int timeout_s, std::string& error);
/// Polls until no handoff is in flight and a placement pass plans no move.
int wait_balanced(const Options& opt, CtlClient& client, int timeout_s, std::string& error);
/// The bash completion script (`tenurectl completion bash`).
const char* bash_completion();

}  // namespace tenure::cli
