#include "dataplane_agent/data_store.h"

#include "common/log.h"
#include "common/thread_name.h"
#include "net/io_runner.h"

namespace tenure::agent {

namespace {
constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS data ("
    "  shard TEXT NOT NULL,"
    "  key BLOB NOT NULL,"
    "  epoch INTEGER NOT NULL,"
    "  value BLOB NOT NULL,"
    "  PRIMARY KEY (shard, key))";
constexpr const char* kGetEpoch = "SELECT epoch FROM data WHERE shard = ?1 AND key = ?2";
constexpr const char* kGetValue = "SELECT epoch, value FROM data WHERE shard = ?1 AND key = ?2";
constexpr const char* kPut =
    "INSERT INTO data (shard, key, epoch, value) VALUES (?1, ?2, ?3, ?4) "
    "ON CONFLICT(shard, key) DO UPDATE SET epoch = excluded.epoch, value = excluded.value";

PutOutcome storage_failure(const std::string& message) {
  PutOutcome o;
  o.kind = PutOutcome::Kind::kStorage;
  o.message = message;
  return o;
}
}  // namespace

StoreResult<std::unique_ptr<DataStore>> DataStore::open(const std::string& path, const FenceState& fence,
                                                         size_t max_queued) {
  auto writer = open_durable(path);
  if (!writer.ok()) return writer.error();
  if (auto r = exec_or_error(*writer.value(), kSchema, path); !r.ok()) return r.error();
  auto reader = open_durable(path);
  if (!reader.ok()) return reader.error();
  return std::unique_ptr<DataStore>(
      new DataStore(std::move(writer.value()), std::move(reader.value()), fence, max_queued));
}

DataStore::DataStore(std::unique_ptr<storage::Database> writer, std::unique_ptr<storage::Database> reader,
                     const FenceState& fence, size_t max_queued)
    : writer_(std::move(writer)), reader_(std::move(reader)), fence_(fence), max_queued_(max_queued) {
  thread_ = std::thread([this] { run(); });
}

DataStore::~DataStore() { stop(); }

void DataStore::stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void DataStore::put(ShardId shard, std::string key, Epoch epoch, std::string value, Done done) {
  std::unique_lock lock(mu_);
  if (stopping_ || queue_.size() >= max_queued_) {
    lock.unlock();
    PutOutcome o;
    if (stopping_) {
      o.kind = PutOutcome::Kind::kFenced;
      o.fence = {FenceCode::kLeaseExpired, Epoch()};
      o.message = "the agent is shutting down";
    } else {
      o.kind = PutOutcome::Kind::kOverloaded;
      o.message = "too many writes queued";
    }
    done(std::move(o));
    return;
  }
  queue_.push_back(Job{std::move(shard), std::move(key), epoch, std::move(value), std::move(done),
                       storage_failure("not processed")});
  lock.unlock();
  cv_.notify_one();
}

void DataStore::run() {
  name_this_thread("agent-store");
  while (true) {
    std::deque<Job> batch;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything answered
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    try {
      commit_batch(batch);
    } catch (const std::exception& e) {
      // Nothing was acknowledged yet: every job of the batch fails whole.
      net::count_escaped_exception();
      log_error("agent", std::string("event=store_exception what=\"") + e.what() + "\"");
      for (auto& job : batch) job.outcome = storage_failure(std::string("internal error: ") + e.what());
    }
    // Answers go out after the fence is released: a callback may be slow.
    for (auto& job : batch) answer(job);
  }
}

void DataStore::answer(Job& job) {
  // The writer thread is ours: an exception from a caller's callback must
  // not end it (std::terminate) nor skip the other answers of the batch.
  try {
    job.done(std::move(job.outcome));
  } catch (const std::exception& e) {
    net::count_escaped_exception();
    log_error("agent", std::string("event=put_callback_exception what=\"") + e.what() + "\"");
  } catch (...) {
    net::count_escaped_exception();
    log_error("agent", "event=put_callback_exception what=unknown");
  }
}

void DataStore::commit_batch(std::deque<Job>& batch) {
  auto fence_hold = fence_.lock_shared();
  std::optional<storage::Transaction> tx;  // begun at the first admitted write
  for (auto& job : batch) write_one(job, tx);
  if (!tx) return;
  auto c = tx->commit();
  if (!c.ok()) {
    for (auto& job : batch) {
      if (job.outcome.kind == PutOutcome::Kind::kOk) job.outcome = storage_failure("commit: " + c.error().message);
    }
  }
}

void DataStore::write_one(Job& job, std::optional<storage::Transaction>& tx) {
  FenceResult f = fence_.check_locked(job.shard.str(), job.epoch);
  if (!f.ok()) {
    job.outcome.kind = PutOutcome::Kind::kFenced;
    job.outcome.fence = f;
    return;
  }
  if (!tx) {
    auto t = storage::Transaction::begin(*writer_);
    if (!t.ok()) {
      job.outcome = storage_failure("begin: " + t.error().message);
      return;
    }
    tx.emplace(std::move(t.value()));
  }
  {
    auto st = writer_->cached(kGetEpoch);
    if (!st.ok()) return void(job.outcome = storage_failure(st.error().message));
    auto& s = st.value();
    (void)s->bind_text(1, job.shard.str());
    (void)s->bind_blob(2, job.key);
    auto row = s->step();
    if (!row.ok()) return void(job.outcome = storage_failure(row.error().message));
    if (row.value()) {
      Epoch stored(static_cast<uint64_t>(s->column_int64(0)));
      if (stored > job.epoch) {
        job.outcome.kind = PutOutcome::Kind::kValueStale;
        job.outcome.stored_epoch = stored;
        return;
      }
    }
  }
  auto st = writer_->cached(kPut);
  if (!st.ok()) return void(job.outcome = storage_failure(st.error().message));
  auto& s = st.value();
  (void)s->bind_text(1, job.shard.str());
  (void)s->bind_blob(2, job.key);
  (void)s->bind_int64(3, static_cast<int64_t>(job.epoch.value()));
  (void)s->bind_blob(4, job.value);
  if (auto r = s->run(); !r.ok()) return void(job.outcome = storage_failure(r.error().message));
  job.outcome.kind = PutOutcome::Kind::kOk;
  job.outcome.fence = f;
}

StoreResult<std::optional<StoredValue>> DataStore::get(const ShardId& shard, const std::string& key) {
  std::lock_guard lock(read_mu_);
  auto st = reader_->cached(kGetValue);
  if (!st.ok()) return StoreError{StoreErrc::kIo, st.error().message};
  auto& s = st.value();
  (void)s->bind_text(1, shard.str());
  (void)s->bind_blob(2, key);
  auto row = s->step();
  if (!row.ok()) return StoreError{StoreErrc::kIo, row.error().message};
  if (!row.value()) return std::optional<StoredValue>();
  return std::optional<StoredValue>(StoredValue{Epoch(static_cast<uint64_t>(s->column_int64(0))), s->column_blob(1)});
}

}  // namespace tenure::agent
