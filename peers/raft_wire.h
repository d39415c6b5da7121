#pragma once
// The peer wire format: batches of Raft messages in the binary codec,
// versioned, carried in the body of an HTTP POST between members.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "consensus/message.h"

namespace tenure::peers {

/// Version 2 appends a CRC32C of everything before it (4 bytes, little
/// endian) to every body, and the snapshot's data CRC to its metadata.
/// Version 1 bodies (no checksum) are still read, so a group can be
/// upgraded one member at a time; only version 2 is written.
inline constexpr uint8_t kWireVersion = 2;
inline constexpr uint8_t kWireVersionNoChecksum = 1;

/// Why a body was refused (counted as drop reasons by the peer routes).
enum class WireError { kMalformed, kChecksum };

/// Encodes messages without their snapshot data (snapshots travel in chunks).
std::string encode_messages(const std::vector<consensus::Message>& msgs);
/// nullopt on any malformed input or a checksum mismatch (the reason in
/// `error` when given): a peer's garbage never reaches the core.
std::optional<std::vector<consensus::Message>> decode_messages(std::string_view body, WireError* error = nullptr);

/// Snapshot metadata (index, term, conf) and the CRC32C of the whole
/// snapshot data, which travels in chunks.
std::string encode_snapshot_meta(const consensus::Message& m, uint32_t data_crc);
/// `data_crc` is set from a version 2 body (nullopt from version 1).
std::optional<consensus::Message> decode_snapshot_meta(std::string_view body, std::optional<uint32_t>* data_crc,
                                                       WireError* error = nullptr);

}  // namespace tenure::peers
