#pragma once
// A thread of its own for the Raft log's fsync, so that a Ready being made
// durable does not hold an io_context thread (nor the Raft strand) for the
// length of an fsync: meanwhile the strand keeps stepping peers' messages
// and taking proposals, and the next Ready carries all of them (the
// simulator's async_fsync mode runs the core this way).

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace tenure::member {

class PersistWorker {
 public:
  PersistWorker();
  /// Runs the jobs already submitted, then joins the thread.
  ~PersistWorker();
  PersistWorker(const PersistWorker&) = delete;
  PersistWorker& operator=(const PersistWorker&) = delete;

  /// Queues `job` to run on the worker's thread; jobs run one at a time, in
  /// submission order. Thread-safe.
  void submit(std::function<void()> job);

 private:
  void run();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> jobs_;
  bool quit_ = false;
  std::thread thread_;  ///< last: starts once the members above exist
};

}  // namespace tenure::member
