#pragma once
// Takes a member's own snapshot without stalling its Raft strand, at any
// state size. The whole state is encoded (70-370 ms for 1,000,000 shards
// here, five times that with long ids) and written and fsynced
// (0.4-0.5 s for 27 MB inside SQLite) while the strand goes on: heartbeats,
// appends, commits and applies never wait for it.
//
// How: the strand forks (as Redis's BGSAVE does). The child is a frozen,
// copy-on-write image of the state at the applied index: it encodes it,
// writes the snapshot file durably (storage/snapshot_file.h) and exits;
// the parent pays the fork (page tables: milliseconds per GiB of state),
// not the encoding. A thread of the parent waits for the child, reads the
// file back and hands the result back; the driver then records the
// snapshot in the core (Raft::compact_at, without its bytes) and stores its
// row (RaftStorage::save_snapshot, a small transaction whose checksum
// covers the bytes), after which the bytes are let go: a lagging follower
// is sent the file itself (peers::TransportOptions::snapshot_dir).
//
// The child touches nothing shared: it closes every inherited descriptor
// (listening sockets, the data_dir LOCK) before it writes, dies with the
// parent (PR_SET_PDEATHSIG), and leaves by _exit. If fork fails (memory
// limits), the state is encoded on the caller's thread as before and only
// the write goes to the thread: slower for the group, never wrong.

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>

#include "consensus/message.h"
#include "controlplane/state_machine.h"
#include "replication/driver_ports.h"

namespace tenure::storage {
class RaftStorage;
}

namespace tenure::member {

using replication::MadeSnapshot;

class SnapshotMaker {
 public:
  explicit SnapshotMaker(storage::RaftStorage& storage) : storage_(storage) {}
  /// Kills a child still running and joins the thread; `done` is not called.
  ~SnapshotMaker();
  SnapshotMaker(const SnapshotMaker&) = delete;
  SnapshotMaker& operator=(const SnapshotMaker&) = delete;

  /// Starts a snapshot of `state` as it is now, at `point` (Raft::snapshot_point:
  /// index, term, configuration). `done` runs once, on the maker's thread,
  /// when the file is durable. One at a time: the caller waits for `done`
  /// before starting another. Storage failures are fatal, as everywhere.
  void start(const controlplane::StateMachine& state, consensus::Snapshot point,
             std::function<void(MadeSnapshot)> done);
  /// The child of the last start() (-1 if fork failed); for tests.
  pid_t child_pid() const { return child_; }

 private:
  void wait_child(pid_t child, consensus::Snapshot point, uint64_t start_ns, uint64_t pause_us,
                  std::function<void(MadeSnapshot)> done);

  storage::RaftStorage& storage_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  pid_t child_ = -1;  ///< written before the thread starts, read by the destructor after it is joined or killed
};

}  // namespace tenure::member
