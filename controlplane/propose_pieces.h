#pragma once
// Proposes the pieces of a split operation (command_split.h) together and
// answers once every piece has an outcome.

#include <functional>
#include <optional>
#include <vector>

#include "controlplane/consensus_port.h"

namespace tenure::controlplane {

/// What became of a split operation's pieces.
struct PiecesOutcome {
  /// The first error in piece order (a piece not applied), if any.
  std::optional<PortError> error;
  /// The results of the pieces that applied, in piece order.
  std::vector<ApplyResult> results;
  size_t pieces = 0;
};

/// Proposes every command at once (the driver batches them into one append)
/// and calls `done` once, on the port's executor, when all have an outcome
/// (at once when `cmds` is empty). Callable from any thread the port's
/// propose() is.
void propose_pieces(ConsensusPort& port, std::vector<Command> cmds, std::function<void(PiecesOutcome)> done);

/// The first refused result among `o.results` (code != kOk), or null.
const ApplyResult* first_refused(const PiecesOutcome& o);

}  // namespace tenure::controlplane
