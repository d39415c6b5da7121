#pragma once
// The JSON shapes of CONTRACT.md for the state machine's objects.

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "controlplane/state_machine.h"

namespace tenure::api {

/// {id, worker, epoch, state}; worker is null when unassigned.
/// `handoff`: the shard's move, if it is being handed off (its phase is shown).
nlohmann::json shard_json(const controlplane::ShardId& id, const controlplane::Shard& s,
                          const controlplane::Handoff* handoff);
/// {id, address, zone, capacity, state, shards}
nlohmann::json worker_json(const controlplane::WorkerId& id, const controlplane::Worker& w, size_t shards);
/// {revision, type, shard, worker, epoch} (+ state for worker events)
nlohmann::json event_json(const controlplane::Event& e);
/// {revision, epoch, from, to, reason, at_ms}
nlohmann::json history_json(const controlplane::HistoryRecord& h);

// The two hottest answers, serialized by hand (building and dumping an
// nlohmann::json took 5-6% of the leader's CPU under read load). Each gives
// byte for byte what json_response() gives for the equivalent nlohmann
// object: keys in its sorted order, no spaces, a final newline
// (tests/unit/api/views_test.cc compares them).

/// The body of GET /v1/shards/{id}: shard_json(id, s, handoff) plus "revision".
std::string shard_body(const controlplane::ShardId& id, const controlplane::Shard& s, const controlplane::Handoff* handoff,
                       controlplane::Revision revision);
/// The body of a 201 to POST /v1/shards: {created, existing, revision}.
std::string created_body(const controlplane::ApplyResult& r);

/// Appends `s` as a JSON string literal, escaped as nlohmann::json::dump()
/// escapes it (strings with non-ASCII bytes go through nlohmann itself, via
/// net::json_text: invalid UTF-8 becomes U+FFFD, nothing throws).
void append_json_string(std::string& out, std::string_view s);

}  // namespace tenure::api
