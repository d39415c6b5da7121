#pragma once
// The C++ face of "Agent and program" (CONTRACT.md): what an embedding
// program implements to be told of its shards, as a webhook program is
// through app.url. Set it in AgentOptions::handler.
//
// Threads: callbacks run on the agent's io threads, never two at once for
// one shard, and for one shard in the order prepare, grant, drain, revoke. A
// callback must not block: a drain answers through `done`, from any
// thread, when the shard is flushed.

#include <functional>
#include <string>

#include "dataplane_agent/fence.h"

namespace tenure::agent {

class ProgramHandler {
 public:
  virtual ~ProgramHandler() = default;
  /// A planned move will grant `shard` here at `epoch`: load it while its
  /// current owner still serves it, then call `done` once (from any
  /// thread). The move waits for it up to app.prepare_timeout_ms. A shard
  /// prepared but never granted (the move was called off) is revoked with
  /// reason "not_granted" a while later.
  virtual void on_prepare(const ShardId& shard, Epoch epoch, std::function<void()> done) {
    (void)shard;
    (void)epoch;
    done();
  }
  /// `shard` is ours at `epoch`: the fence admits it from now on.
  virtual void on_grant(const ShardId& shard, Epoch epoch, const std::string& reason) = 0;
  /// A planned move takes `shard` away: finish and flush it, then call
  /// `done` once. The fence keeps admitting `epoch` until then, or until
  /// the drain's budget (app.drain_timeout_ms, and never past the lease in
  /// force when the move began) runs out; then the shard is released.
  virtual void on_drain(const ShardId& shard, Epoch epoch, std::function<void()> done) = 0;
  /// `shard` is no longer ours (after a drain, a deletion, a declared
  /// death or a leave): the fence refuses `epoch` already.
  virtual void on_revoke(const ShardId& shard, Epoch epoch, const std::string& reason) = 0;
  /// The agent could not renew its lease: the fence refuses every write
  /// already (this comes up to a heartbeat interval later). The grants are
  /// not revoked: once the lease is renewed they are served again, unless
  /// revokes say otherwise.
  virtual void on_lease_lost() {}
};

}  // namespace tenure::agent
