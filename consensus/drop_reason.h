#pragma once
// Why the core refused a peer message. Everything that arrives from the
// network is input (DESIGN.md "The trust boundary"): a message whose fields
// are inconsistent with the receiver's own state is dropped before it can
// reach an assertion, and the driver counts and logs the reason. Dropping is
// always safe in Raft: it is indistinguishable from a loss in the network.

#include <cstdint>
#include <optional>

namespace tenure::consensus {

enum class DropReason : uint8_t {
  kWrongRecipient,     ///< `to` is not this member
  kBadSender,          ///< empty `from`, our own id, or a sender without a place in our state
  kOutOfRange,         ///< a term or index of 2^63 or more: no real group gets there, and it would wrap
  kBadEntries,         ///< entries not contiguous after `index`, terms out of order, an undecodable membership change
  kPastLogEnd,         ///< an acknowledgement of entries this leader never had
  kBadSnapshot,        ///< snapshot missing or with inconsistent metadata
  kBadContext,         ///< a read round or request this member never started
  kNotFromLeader,      ///< a message only the current leader may send, from someone else
  kCount_,             ///< number of reasons (not a reason)
};

/// Stable label value for metrics and logs: snake_case, from a closed set.
const char* to_string(DropReason r);

/// Terms and indexes at or above this bound are refused: at one election or
/// one entry per nanosecond a group needs 292 years to get there, and below
/// it `next()` and `plus(entries.size())` can never wrap.
inline constexpr uint64_t kMaxWireCounter = uint64_t(1) << 63;

}  // namespace tenure::consensus
