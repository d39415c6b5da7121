#include "api/snapshot_inbox.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "common/crc32c.h"
#include "common/log.h"

namespace tenure::api {

namespace fs = std::filesystem;

const char* to_string(SnapshotInbox::Status s) {
  switch (s) {
    case SnapshotInbox::Status::kOk: return "ok";
    case SnapshotInbox::Status::kBusy: return "busy";
    case SnapshotInbox::Status::kUnknownTransfer: return "unknown_transfer";
    case SnapshotInbox::Status::kOutOfOrder: return "out_of_order";
    case SnapshotInbox::Status::kTooLarge: return "too_large";
    case SnapshotInbox::Status::kChecksum: return "checksum";
    case SnapshotInbox::Status::kIo: return "io";
  }
  return "?";
}

SnapshotInbox::SnapshotInbox(std::string dir, SnapshotInboxLimits limits) : dir_(std::move(dir)), limits_(limits) {
  std::error_code ec;
  fs::remove_all(dir_, ec);  // partial transfers of an earlier process are useless
  fs::create_directories(dir_, ec);
  if (ec) log_warn("snapshot", "event=inbox_unusable dir=" + dir_ + " error=\"" + ec.message() + "\"");
}

SnapshotInbox::~SnapshotInbox() {
  std::error_code ec;
  for (auto& [from, t] : by_sender_) fs::remove(t.path, ec);
}

std::string SnapshotInbox::path_for(const std::string& from) const {
  // A hash of the id plus its length: distinct senders get distinct files
  // in practice, and no id (input) becomes a path.
  return dir_ + "/transfer-" + std::to_string(std::hash<std::string>()(from)) + "-" + std::to_string(from.size()) +
         ".part";
}

void SnapshotInbox::remove(std::map<std::string, Transfer>::iterator it) {
  std::error_code ec;
  fs::remove(it->second.path, ec);
  by_sender_.erase(it);
}

void SnapshotInbox::expire(Clock::time_point now) {
  for (auto it = by_sender_.begin(); it != by_sender_.end();) {
    auto next = std::next(it);
    if (now - it->second.last > std::chrono::milliseconds(limits_.idle_timeout_ms)) {
      log_warn("snapshot", "event=transfer_expired from=\"" + it->first.substr(0, 64) + "\" bytes=" +
                               std::to_string(it->second.size));
      ++expired_total_;
      remove(it);
    }
    it = next;
  }
}

size_t SnapshotInbox::active() {
  std::lock_guard<std::mutex> lock(mu_);
  expire(Clock::now());
  return by_sender_.size();
}

SnapshotInbox::Status SnapshotInbox::chunk(const std::string& from, const std::string& transfer, uint64_t offset,
                                           std::string_view body, std::optional<uint32_t> crc, Clock::time_point now) {
  if (crc && *crc != crc32c(body)) return Status::kChecksum;
  std::lock_guard<std::mutex> lock(mu_);
  expire(now);
  auto it = by_sender_.find(from);
  if (it == by_sender_.end() || it->second.id != transfer) {
    if (offset != 0) return Status::kUnknownTransfer;
    if (it != by_sender_.end()) {
      remove(it);  // a newer transfer replaces an abandoned one
    } else if (by_sender_.size() >= limits_.max_transfers) {
      return Status::kBusy;
    }
    Transfer t;
    t.id = transfer;
    t.path = path_for(from);
    t.last = now;
    std::ofstream(t.path, std::ios::binary | std::ios::trunc);  // create it empty
    it = by_sender_.emplace(from, std::move(t)).first;
  }
  Transfer& t = it->second;
  if (offset != t.size) return Status::kOutOfOrder;
  if (t.size + body.size() > limits_.max_bytes) {
    remove(it);
    return Status::kTooLarge;
  }
  std::ofstream out(t.path, std::ios::binary | std::ios::app);
  out.write(body.data(), static_cast<std::streamsize>(body.size()));
  out.close();
  if (!out) {
    remove(it);
    return Status::kIo;
  }
  t.size += body.size();
  t.crc = crc32c_extend(t.crc, body.data(), body.size());
  t.last = now;
  return Status::kOk;
}

SnapshotInbox::Status SnapshotInbox::finish(const std::string& from, const std::string& transfer, uint64_t total,
                                            std::optional<uint32_t> data_crc, std::string& out,
                                            Clock::time_point now) {
  std::lock_guard<std::mutex> lock(mu_);
  expire(now);
  auto it = by_sender_.find(from);
  if (it == by_sender_.end() || it->second.id != transfer) return Status::kUnknownTransfer;
  Transfer t = it->second;
  if (t.size != total) {
    remove(it);
    return Status::kOutOfOrder;
  }
  if (data_crc && *data_crc != t.crc) {
    remove(it);
    return Status::kChecksum;
  }
  // The core needs the snapshot in memory to install it; it is read once,
  // at the end, and only for a transfer that is complete and checked.
  std::ifstream in(t.path, std::ios::binary);
  out.resize(t.size);
  in.read(out.data(), static_cast<std::streamsize>(t.size));
  // The spool file is a disk too: what comes back must be what arrived.
  bool ok = in.gcount() == static_cast<std::streamsize>(t.size) && crc32c(out) == t.crc;
  remove(it);
  if (!ok) {
    out.clear();
    return Status::kIo;
  }
  return Status::kOk;
}

}  // namespace tenure::api
