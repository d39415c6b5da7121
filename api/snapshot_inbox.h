#pragma once
// Reassembly of snapshots that a leader sends in chunks
// (/raft/snapshot/chunk, then /raft/snapshot/done). Chunks are spooled to a
// file per sender in `dir`, not kept in memory (a 1M-shard snapshot is
// hundreds of MiB, and the old in-memory assembler kept up to 2 GiB per
// Tenure-From header, forever). Bounds (DESIGN.md, house style 6):
//   - one transfer per sender: a new transfer (offset 0) replaces the old;
//   - at most `max_transfers` senders at once: a new one past it is refused
//     (busy) until one completes or expires;
//   - at most `max_bytes` per transfer;
//   - a transfer that receives nothing for `idle_timeout_ms` expires (its
//     file is removed at the next call).
// Each chunk's CRC32C is checked when the sender names it, and the CRC of
// the whole data is kept as it arrives, for the final check.
//
// Thread-safe (HTTP handler threads). Files are named by a hash of the
// sender's id, never by the id itself (it is input).

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

namespace tenure::api {

struct SnapshotInboxLimits {
  uint64_t max_bytes = uint64_t(2) << 30;
  size_t max_transfers = 4;
  uint32_t idle_timeout_ms = 60000;
};

class SnapshotInbox {
 public:
  using Clock = std::chrono::steady_clock;

  enum class Status { kOk, kBusy, kUnknownTransfer, kOutOfOrder, kTooLarge, kChecksum, kIo };

  /// Creates `dir` and removes what an earlier process left in it.
  SnapshotInbox(std::string dir, SnapshotInboxLimits limits);
  ~SnapshotInbox();

  /// Appends `body` at `offset` of `from`'s transfer `transfer` (offset 0
  /// starts it). `crc`: the chunk's CRC32C as the sender named it, if any.
  Status chunk(const std::string& from, const std::string& transfer, uint64_t offset, std::string_view body,
               std::optional<uint32_t> crc, Clock::time_point now = Clock::now());

  /// Ends `from`'s transfer: its data (exactly `total` bytes, and matching
  /// `data_crc` when given) goes into `out`. The transfer is gone after
  /// the call whatever the outcome.
  Status finish(const std::string& from, const std::string& transfer, uint64_t total,
                std::optional<uint32_t> data_crc, std::string& out, Clock::time_point now = Clock::now());

  /// Transfers in progress; expired transfers counted as they are removed.
  size_t active();
  uint64_t expired_total() const { return expired_total_; }

 private:
  struct Transfer {
    std::string id;
    std::string path;
    uint64_t size = 0;
    uint32_t crc = 0;
    Clock::time_point last;
  };
  void expire(Clock::time_point now);
  void remove(std::map<std::string, Transfer>::iterator it);
  std::string path_for(const std::string& from) const;

  std::string dir_;
  SnapshotInboxLimits limits_;
  std::mutex mu_;
  std::map<std::string, Transfer> by_sender_;
  uint64_t expired_total_ = 0;
};

const char* to_string(SnapshotInbox::Status s);

}  // namespace tenure::api
