#include "api/propose_pieces.h"

#include <memory>

namespace tenure::api {

void propose_pieces(controller::RaftNode& node, std::vector<controlplane::Command> cmds,
                    std::function<void(PiecesOutcome)> done) {
  struct Tally {
    size_t left;
    std::vector<std::optional<controller::NodeError>> errors;
    std::vector<std::optional<controlplane::ApplyResult>> results;
    std::function<void(PiecesOutcome)> done;
  };
  size_t n = cmds.size();
  if (n == 0) return done(PiecesOutcome{});
  auto tally = std::make_shared<Tally>(Tally{n, std::vector<std::optional<controller::NodeError>>(n),
                                             std::vector<std::optional<controlplane::ApplyResult>>(n),
                                             std::move(done)});
  // Every callback runs on the driver's strand: the tally needs no lock.
  for (size_t k = 0; k < n; ++k) {
    node.propose(std::move(cmds[k]), [tally, k](const controller::NodeError* err, const controlplane::ApplyResult* r) {
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

const controlplane::ApplyResult* first_refused(const PiecesOutcome& o) {
  for (const auto& r : o.results) {
    if (r.code != controlplane::ApplyCode::kOk) return &r;
  }
  return nullptr;
}

}  // namespace tenure::api
