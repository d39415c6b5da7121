#pragma once
// The peer wire format: batches of Raft messages in the binary codec,
// versioned, carried in the body of an HTTP POST between members.

#include <optional>
#include <string>
#include <vector>

#include "consensus/message.h"

namespace tenure::controller {

inline constexpr uint8_t kWireVersion = 1;

/// Encodes messages without their snapshot data (snapshots travel in chunks).
std::string encode_messages(const std::vector<consensus::Message>& msgs);
/// nullopt on any malformed input: a peer's garbage never reaches the core.
std::optional<std::vector<consensus::Message>> decode_messages(const std::string& body);

/// Snapshot metadata (index, term, conf) without the data.
std::string encode_snapshot_meta(const consensus::Message& m);
std::optional<consensus::Message> decode_snapshot_meta(const std::string& body);

}  // namespace tenure::controller
