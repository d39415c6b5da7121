#pragma once
// The JSON shapes of CONTRACT.md for the state machine's objects.

#include <nlohmann/json.hpp>

#include "controlplane/state_machine.h"

namespace tenure::api {

/// {id, worker, epoch, state}; worker is null when unassigned.
nlohmann::json shard_json(const controlplane::ShardId& id, const controlplane::Shard& s);
/// {id, address, zone, capacity, state, shards}
nlohmann::json worker_json(const controlplane::WorkerId& id, const controlplane::Worker& w, size_t shards);
/// {revision, type, shard, worker, epoch} (+ state for worker events)
nlohmann::json event_json(const controlplane::Event& e);
/// {revision, epoch, from, to, reason, at_ms}
nlohmann::json history_json(const controlplane::HistoryRecord& h);

}  // namespace tenure::api
