#pragma once
// How the peer transport packs Raft messages into requests (wire_limits.h):
// pure functions, so their bounds are tested without a network.

#include <cstddef>
#include <deque>
#include <vector>

#include "consensus/message.h"

namespace tenure::peers {

/// An upper bound of `m`'s size in a batch's encoding (raft_wire.cc): the
/// header bound plus, per entry, its data and kEntryWireOverheadBytes.
size_t wire_size_bound(const consensus::Message& m);

/// The messages to send in one request: from the front of `queue`, at most
/// `max_bytes` by wire_size_bound (at least one message). Removes them.
std::vector<consensus::Message> take_batch(std::deque<consensus::Message>& queue, size_t max_bytes);

}  // namespace tenure::peers
