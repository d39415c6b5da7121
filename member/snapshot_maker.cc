#include "member/snapshot_maker.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/log.h"
#include "common/steady_clock.h"
#include "common/thread_name.h"
#include "storage/raft_storage.h"
#include "storage/snapshot_file.h"

namespace tenure::member {
namespace {

/// The child: encode, write durably, leave. Nothing here may take a lock
/// another thread of the parent could have held at the fork, other than
/// the allocator's (glibc and jemalloc both make theirs safe across fork).
[[noreturn]] void run_child(const controlplane::StateMachine& state, const consensus::Snapshot& point,
                            const std::string& data_dir, pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(3);  // the parent died before the line above
  // Background work: at nice 19 and the lowest best-effort I/O priority
  // the child takes the CPU and disk the member leaves (on two cores, three
  // members' encoders would otherwise compete with their own Raft strands
  // and HTTP threads); a snapshot only has to finish before the next one.
  // Not shown to shorten the write tail on its own (docs/performance.md).
  ::setpriority(PRIO_PROCESS, 0, 19);
  ::syscall(SYS_ioprio_set, 1 /* IOPRIO_WHO_PROCESS */, 0, (2 << 13) | 7 /* best effort, lowest */);
  // Sockets, the data_dir LOCK, SQLite's files: the child must hold none of
  // them open past the parent's death or restart. stdin/out/err stay for a
  // FATAL line.
  ::syscall(SYS_close_range, 3U, ~0U, 0U);
  try {
    std::string data = state.snapshot();
    storage::write_snapshot_file(data_dir, storage::snapshot_file_name(point.index, point.term), data);
  } catch (...) {
    ::_exit(2);  // out of memory: the parent reports it
  }
  ::_exit(0);
}

}  // namespace

SnapshotMaker::~SnapshotMaker() {
  if (thread_.joinable()) {
    stopping_ = true;
    if (child_ > 0) ::kill(child_, SIGKILL);
    thread_.join();
  }
}

void SnapshotMaker::start(const controlplane::StateMachine& state, consensus::Snapshot point,
                          std::function<void(MadeSnapshot)> done) {
  if (thread_.joinable()) thread_.join();  // the previous one called its done: it is ending
  uint64_t t0 = steady_ns();
  pid_t parent = ::getpid();
  pid_t child = ::fork();
  if (child == 0) run_child(state, point, storage_.data_dir(), parent);
  uint64_t pause_us = (steady_ns() - t0) / 1000;
  child_ = child;
  if (child < 0) {
    log_warn("raft", std::string("event=snapshot_fork_failed error=\"") + std::strerror(errno) +
                         "\" hint=\"the state is encoded on the Raft strand instead (a stall)\"");
    point.data = std::make_shared<const std::string>(state.snapshot());
    pause_us = (steady_ns() - t0) / 1000;
  }
  thread_ = std::thread([this, child, point = std::move(point), t0, pause_us, done = std::move(done)]() mutable {
    name_this_thread("tenure-snapshot");
    wait_child(child, std::move(point), t0, pause_us, std::move(done));
  });
}

void SnapshotMaker::wait_child(pid_t child, consensus::Snapshot point, uint64_t start_ns, uint64_t pause_us,
                               std::function<void(MadeSnapshot)> done) {
  MadeSnapshot made;
  made.forked = child > 0;
  made.pause_us = pause_us;
  const std::string name = storage::snapshot_file_name(point.index, point.term);
  if (child > 0) {
    int status = 0;
    pid_t r;
    do {
      r = ::waitpid(child, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (stopping_) return;  // killed by the destructor
    bool exited = r == child && WIFEXITED(status);
    if (exited && WEXITSTATUS(status) == 1) {
      // The child's storage_fatal printed what failed (disk full, ...): as
      // any storage failure, fatal here too.
      storage::storage_fatal("op=save_snapshot path=" + storage_.data_dir() + "/" + name +
                             " error=\"the process writing the snapshot failed; its FATAL line says why\"");
    }
    if (!exited || WEXITSTATUS(status) != 0) {
      // Out of memory in the child, or killed (the OOM killer): nothing
      // was recorded; the driver tries again later.
      log_warn("raft", "event=snapshot_failed index=" + std::to_string(point.index.value()) + " " +
                           (exited ? "exit_status=" + std::to_string(WEXITSTATUS(status))
                                   : "signal=" + std::to_string(WTERMSIG(status))));
      done(std::move(made));
      return;
    }
    point.data = std::make_shared<const std::string>(storage::read_snapshot_file(storage_.data_dir(), name));
  } else {
    storage_.write_snapshot_file(point);
  }
  made.snapshot = std::move(point);
  made.total_ms = (steady_ns() - start_ns) / 1000000;
  done(std::move(made));
}

}  // namespace tenure::member
