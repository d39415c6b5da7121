#include "controlplane/propose_pieces.h"

#include <memory>

namespace tenure::controlplane {

void propose_pieces(ConsensusPort& port, std::vector<Command> cmds, std::function<void(PiecesOutcome)> done) {
  struct Tally {
    size_t left;
    std::vector<std::optional<PortError>> errors;
    std::vector<std::optional<ApplyResult>> results;
    std::function<void(PiecesOutcome)> done;
  };
  size_t n = cmds.size();
  if (n == 0) return done(PiecesOutcome{});
  auto tally = std::make_shared<Tally>(
      Tally{n, std::vector<std::optional<PortError>>(n), std::vector<std::optional<ApplyResult>>(n), std::move(done)});
  // Every completion runs on the port's executor: the tally needs no lock.
  // Results are copied at once: the port's result is only valid in the call.
  for (size_t k = 0; k < n; ++k) {
    port.propose(std::move(cmds[k]), [tally, k](const PortError* err, const ApplyResult* r) {
      if (err) tally->errors[k] = *err;
      if (r) tally->results[k] = *r;
      if (--tally->left > 0) return;
      PiecesOutcome o;
      o.pieces = tally->results.size();
      for (size_t i = 0; i < o.pieces; ++i) {
        if (tally->errors[i] && !o.error) o.error = tally->errors[i];
        if (tally->results[i]) o.results.push_back(std::move(*tally->results[i]));
      }
      tally->done(std::move(o));
    });
  }
}

const ApplyResult* first_refused(const PiecesOutcome& o) {
  for (const auto& r : o.results) {
    if (r.code != ApplyCode::kOk) return &r;
  }
  return nullptr;
}

}  // namespace tenure::controlplane
