#include "member/message_drops.h"

#include "common/log.h"

namespace tenure::member {

MessageDrops::MessageDrops(prometheus::Family<prometheus::Counter>& family) : family_(family) {
  // Every label value exists from the start: /metrics shows the closed set at 0.
  for (uint8_t r = 0; r < static_cast<uint8_t>(consensus::DropReason::kCount_); ++r) {
    family_.Add({{"reason", consensus::to_string(static_cast<consensus::DropReason>(r))}});
  }
  for (const char* r : {drop_reason::kUnknownSender, drop_reason::kBadSnapshotData, drop_reason::kUndecodable,
                        drop_reason::kChecksum, drop_reason::kBadEntryData}) {
    family_.Add({{"reason", r}});
  }
}

void MessageDrops::count(const char* reason, const std::string& from, const char* type, const std::string& detail) {
  family_.Add({{"reason", reason}}).Increment();
  auto now = std::chrono::steady_clock::now();
  uint64_t suppressed = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    LogState& s = log_state_[reason];
    if (s.last != std::chrono::steady_clock::time_point() && now - s.last < std::chrono::seconds(1)) {
      ++s.suppressed;
      return;
    }
    s.last = now;
    suppressed = s.suppressed;
    s.suppressed = 0;
  }
  // `from` is what the peer claimed: quoted and cut, it is input.
  std::string sender = from.substr(0, 64);
  log_warn("raft", std::string("event=message_dropped reason=") + reason + " from=\"" + sender + "\" type=" + type +
                       " detail=\"" + detail + "\" suppressed_since_last=" + std::to_string(suppressed));
}

double MessageDrops::total(const char* reason) { return family_.Add({{"reason", reason}}).Value(); }

}  // namespace tenure::member
