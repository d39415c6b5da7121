#pragma once
// Proposes the pieces of a split operation (controlplane/command_split.h)
// together and answers once every piece has an outcome.

#include <functional>
#include <vector>

#include "controller/raft_node.h"

namespace tenure::api {

/// What became of a split operation's pieces.
struct PiecesOutcome {
  /// The first error in piece order (a piece not committed), if any.
  std::optional<controller::NodeError> error;
  /// The results of the pieces that applied, in piece order.
  std::vector<controlplane::ApplyResult> results;
  size_t pieces = 0;
};

/// Proposes every command at once (the driver batches them into one append)
/// and calls `done` once, on the driver's strand, when all have an outcome.
void propose_pieces(controller::RaftNode& node, std::vector<controlplane::Command> cmds,
                    std::function<void(PiecesOutcome)> done);

/// The first refused result among `o.results` (code != kOk), or null.
const controlplane::ApplyResult* first_refused(const PiecesOutcome& o);

}  // namespace tenure::api
