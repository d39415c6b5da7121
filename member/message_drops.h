#pragma once
// Counting and logging of peer messages the controller refuses (issue 8,
// "nothing from the network reaches an assertion"): the core's own drop
// reasons (consensus/drop_reason.h) and the driver's (an unknown sender, a
// snapshot that does not decode, a batch whose checksum fails). Every reason
// is a label of tenure_raft_messages_dropped_total from a closed set, and
// each drop is logged with its sender, at most once per reason a second so
// a peer that floods garbage cannot flood the log too.
//
// Thread-safe: the strand counts the core's drops, HTTP handlers the
// decoder's.

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/family.h>

#include "consensus/drop_reason.h"

namespace tenure::member {

/// Reasons the driver adds to the core's (label values).
namespace drop_reason {
inline constexpr const char* kUnknownSender = "unknown_sender";        ///< not a member we know of
inline constexpr const char* kBadSnapshotData = "bad_snapshot_data";   ///< snapshot data does not decode
inline constexpr const char* kUndecodable = "undecodable";             ///< a batch the wire decoder refused
inline constexpr const char* kChecksum = "checksum";                   ///< a CRC32C mismatch on the wire
inline constexpr const char* kBadEntryData = "bad_entry_data";         ///< an appended command does not decode
}  // namespace drop_reason

class MessageDrops {
 public:
  explicit MessageDrops(prometheus::Family<prometheus::Counter>& family);

  /// Counts one dropped message and logs it (rate limited) with `from`,
  /// the message type and `detail`.
  void count(const char* reason, const std::string& from, const char* type, const std::string& detail);
  void count(consensus::DropReason reason, const std::string& from, const char* type, const std::string& detail) {
    count(consensus::to_string(reason), from, type, detail);
  }
  /// Drops counted so far under `reason` (tests).
  double total(const char* reason);

 private:
  prometheus::Family<prometheus::Counter>& family_;
  std::mutex mu_;
  struct LogState {
    std::chrono::steady_clock::time_point last;
    uint64_t suppressed = 0;
  };
  std::map<std::string, LogState> log_state_;
};

}  // namespace tenure::member
