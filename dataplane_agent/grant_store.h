#pragma once
// The agent's durable memory of grants (data_dir/agent.db): every shard it
// heard of with the newest epoch seen, the newest dropped and whether it is
// held, and the last revision applied. A restart never forgets an epoch.
//
// Thread: one thread at a time (the agent's control strand).

#include <map>
#include <memory>
#include <string>

#include "dataplane_agent/agent_db.h"
#include "dataplane_agent/grant_table.h"

namespace tenure::agent {

class GrantStore {
 public:
  /// Opens or creates `path`. A store written by another worker id is
  /// refused (kForeign): its epochs are not this worker's.
  static StoreResult<std::unique_ptr<GrantStore>> open(const std::string& path, const WorkerId& self);

  struct Loaded {
    std::map<std::string, ShardRecord> records;
    Revision revision;
  };
  /// Everything stored.
  StoreResult<Loaded> load();
  /// Makes a batch durable: one transaction, one fsync. Nothing is written
  /// when the batch is empty.
  StoreResult<Ok> save(const GrantChanges& changes);

 private:
  explicit GrantStore(std::unique_ptr<storage::Database> db) : db_(std::move(db)) {}
  StoreResult<Ok> init(const WorkerId& self);

  std::unique_ptr<storage::Database> db_;
};

}  // namespace tenure::agent
