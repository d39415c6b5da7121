#pragma once
// The reference fenced store (PUT/GET /v1/data): values in data_dir/data.db,
// each with the epoch it was written at. A PUT is admitted by the fence and
// committed while the fence is held shared, so a revoke (which takes it
// exclusively) cannot slip between the check and the commit.
//
// Group commit: one writer thread takes every queued PUT (up to a bound),
// checks each under one shared hold of the fence, and commits them in one
// transaction (one fsync). Reads use a second connection (WAL readers do
// not wait for the writer).

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "dataplane_agent/agent_db.h"
#include "dataplane_agent/fence_state.h"

namespace tenure::agent {

/// What became of one PUT.
struct PutOutcome {
  enum class Kind : uint8_t {
    kOk,          ///< durable
    kFenced,      ///< the fence refused it: see `fence`
    kValueStale,  ///< a value with a newer epoch is stored: see `stored_epoch`
    kOverloaded,  ///< the queue was full (503, retry)
    kStorage,     ///< the commit failed (500); nothing was acknowledged
  };
  Kind kind = Kind::kOk;
  FenceResult fence;
  Epoch stored_epoch;
  std::string message;
};

/// A stored value.
struct StoredValue {
  Epoch epoch;
  std::string value;
};

class DataStore {
 public:
  using Done = std::function<void(PutOutcome)>;

  /// Opens `path`; the writer thread starts at once. `fence` must outlive it.
  static StoreResult<std::unique_ptr<DataStore>> open(const std::string& path, const FenceState& fence,
                                                       size_t max_queued = kDefaultMaxQueued);
  /// Stops the writer (queued PUTs still get their answers) and closes.
  ~DataStore();

  /// Queues a PUT; `done` runs once, on the writer thread (or in this call
  /// when the queue is full or the store stopped). Thread-safe.
  void put(ShardId shard, std::string key, Epoch epoch, std::string value, Done done);
  /// Reads a value. Thread-safe (one reader at a time).
  StoreResult<std::optional<StoredValue>> get(const ShardId& shard, const std::string& key);
  /// Answers what is queued and stops the writer. Idempotent.
  void stop();

  static constexpr size_t kDefaultMaxQueued = 10000;
  /// PUTs per transaction at most.
  static constexpr size_t kMaxBatch = 512;

 private:
  struct Job {
    ShardId shard;
    std::string key;
    Epoch epoch;
    std::string value;
    Done done;
    PutOutcome outcome;
  };
  DataStore(std::unique_ptr<storage::Database> writer, std::unique_ptr<storage::Database> reader,
            const FenceState& fence, size_t max_queued);
  void run();
  void commit_batch(std::deque<Job>& batch);
  /// Runs the job's callback; an exception from it is logged, never fatal.
  static void answer(Job& job);
  /// Checks and writes one job inside the open transaction.
  void write_one(Job& job, std::optional<storage::Transaction>& tx);

  std::unique_ptr<storage::Database> writer_;
  std::unique_ptr<storage::Database> reader_;
  const FenceState& fence_;
  const size_t max_queued_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> queue_;
  bool stopping_ = false;
  std::mutex read_mu_;
  std::thread thread_;
};

}  // namespace tenure::agent
