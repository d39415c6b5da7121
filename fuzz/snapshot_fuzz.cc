// Fuzzes the state machine's snapshot decoder
// (controlplane/state_machine_snapshot.cc): a snapshot from the leader is
// restored before it is made durable, so its bytes are input. Whatever the
// bytes, restore() returns false (and leaves the state as it was) or a state
// whose snapshot restores to the same bytes again (the encoding is
// canonical), and whose queries do not crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "controlplane/state_machine.h"

using tenure::controlplane::Revision;
using tenure::controlplane::ShardState;
using tenure::controlplane::StateMachine;
using tenure::controlplane::WorkerId;
using tenure::controlplane::WorkerState;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string bytes(reinterpret_cast<const char*>(data), size);
  StateMachine sm;
  std::string before = sm.snapshot();
  if (!sm.restore(bytes)) {
    if (sm.snapshot() != before) std::abort();  // a refused snapshot changes nothing
    return 0;
  }
  std::string again = sm.snapshot();
  StateMachine copy;
  if (!copy.restore(again) || copy.snapshot() != again) std::abort();
  // The queries the API and the leader's policy run on a restored state.
  size_t total = 0;
  for (auto s : {ShardState::kUnassigned, ShardState::kActive, ShardState::kHandoff}) total += sm.count(s);
  if (total != sm.shards().size()) std::abort();
  for (auto s : {WorkerState::kAlive, WorkerState::kDraining, WorkerState::kDead}) (void)sm.count(s);
  for (const auto& [id, w] : sm.workers()) (void)sm.shards_of(id), (void)sm.worker_events_revision(id);
  if (sm.compacted_revision() <= sm.revision()) (void)sm.events_after(sm.compacted_revision(), WorkerId(), 100);
  return 0;
}
