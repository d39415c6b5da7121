#pragma once
// The size bounds of the controller group's traffic, in one place, and the
// arithmetic that ties them together (docs/architecture.md, "Bounded
// commands and messages"): no peer request is ever larger than its receiver
// accepts, so no entry can be refused forever and wedge the group.
//
//   command   <= controlplane::kMaxCommandBytes (256 KiB; large operations are split)
//   entry     <= kMaxEntryBytes (1 MiB; the core refuses larger proposals: 413)
//   append    <= header + max(kMaxAppendBytes, kMaxEntryBytes + overhead)
//                (the core counts kEntryWireOverheadBytes per entry)
//   batch     <= max(kMaxBatchBytes, one append) + batch header
//   accepted  =  kPeerMaxBodyBytes (4 MiB) on /raft/* ; client routes stay at 1 MiB

#include <algorithm>
#include <cstddef>

#include "controlplane/command_split.h"

namespace tenure::peers {

/// The largest entry the core accepts (RaftConfig::max_entry_bytes).
inline constexpr size_t kMaxEntryBytes = size_t{1} << 20;
/// RaftConfig::max_bytes_per_msg: entries' bytes in one AppendEntries.
inline constexpr size_t kMaxAppendBytes = size_t{1} << 20;
/// An entry's envelope in raft_wire.cc (term and index varints, type, the
/// data's length): at most 10 + 10 + 1 + 5 bytes.
inline constexpr size_t kEntryWireOverheadBytes = 32;
/// A message's header in raft_wire.cc: two member ids of at most 64 bytes
/// with their lengths, the type, the reject flag and eight varints.
inline constexpr size_t kMessageHeaderBytes = 2 * (64 + 1) + 2 + 8 * 10;
/// The body a peer request carries at most (PeerTransport's batching).
inline constexpr size_t kMaxBatchBytes = size_t{1} << 20;
/// The body size the peer routes (/raft/...) accept.
inline constexpr size_t kPeerMaxBodyBytes = size_t{4} << 20;

/// The largest single AppendEntries message, encoded.
inline constexpr size_t kMaxMessageBytes =
    kMessageHeaderBytes + std::max(kMaxAppendBytes, kMaxEntryBytes + kEntryWireOverheadBytes);

static_assert(controlplane::kMaxCommandBytes * 4 <= kMaxEntryBytes, "commands far below the entry limit");
static_assert(kMaxMessageBytes + 16 <= kPeerMaxBodyBytes / 2, "one message: twice under what a follower accepts");
static_assert(kMaxBatchBytes + kMaxMessageBytes + 16 <= kPeerMaxBodyBytes, "a batch fits what a follower accepts");

}  // namespace tenure::peers
