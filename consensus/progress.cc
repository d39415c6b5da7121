#include "consensus/progress.h"

#include <algorithm>

namespace tenure::consensus {

const char* to_string(ProgressState s) {
  switch (s) {
    case ProgressState::kProbe: return "probe";
    case ProgressState::kReplicate: return "replicate";
    case ProgressState::kSnapshot: return "snapshot";
  }
  return "?";
}

void Progress::become_probe() {
  // Coming back from a snapshot, resume after it if it was applied.
  if (state == ProgressState::kSnapshot) {
    next = std::max(match.next(), pending_snapshot.next());
  } else {
    next = match.next();
  }
  state = ProgressState::kProbe;
  probe_sent = false;
  pending_snapshot = LogIndex(0);
  inflights.reset();
}

void Progress::become_replicate() {
  state = ProgressState::kReplicate;
  next = match.next();
  probe_sent = false;
  pending_snapshot = LogIndex(0);
  inflights.reset();
}

void Progress::become_snapshot(LogIndex snapshot_index) {
  state = ProgressState::kSnapshot;
  pending_snapshot = snapshot_index;
  snapshot_ticks = 0;
  probe_sent = false;
  inflights.reset();
}

bool Progress::maybe_update(LogIndex n) {
  bool updated = false;
  if (match < n) {
    match = n;
    updated = true;
    probe_sent = false;
  }
  next = std::max(next, n.next());
  return updated;
}

bool Progress::maybe_decrease_to(LogIndex rejected, LogIndex match_hint) {
  if (state == ProgressState::kReplicate) {
    // Stale: we already know the follower matches past the rejected point.
    if (rejected <= match) return false;
    next = match.next();
    return true;
  }
  // Probe or snapshot: only the answer to the append we sent last counts.
  if (next.prev() != rejected) return false;
  next = std::max(std::min(rejected, match_hint.next()), match.next());
  if (next < LogIndex(1)) next = LogIndex(1);
  probe_sent = false;
  return true;
}

bool Progress::paused() const {
  switch (state) {
    case ProgressState::kProbe: return probe_sent;
    case ProgressState::kReplicate: return inflights.full();
    case ProgressState::kSnapshot: return true;
  }
  return true;
}

void Progress::sent_append(bool has_entries, LogIndex last) {
  if (state == ProgressState::kReplicate) {
    if (has_entries) {
      next = last.next();
      inflights.add(last);
    }
  } else if (state == ProgressState::kProbe) {
    probe_sent = true;
  }
}

}  // namespace tenure::consensus
