#include "peers/peer_transport.h"

#include "common/crc32c.h"
#include "common/log.h"
#include "peers/peer_batch.h"
#include "peers/raft_wire.h"
#include "peers/wire_limits.h"
#include "storage/snapshot_file.h"

namespace tenure::peers {

using consensus::Message;
using consensus::MessageType;
using consensus::NodeId;
using Clock = std::chrono::steady_clock;

PeerTransport::PeerTransport(net::HttpClient& client, TransportOptions options)
    : client_(client), options_(std::move(options)) {}

net::HeaderMap PeerTransport::headers() const {
  net::HeaderMap h;
  h["content-type"] = "application/octet-stream";
  h["tenure-from"] = options_.self.str();
  if (!options_.peer_token.empty()) h["authorization"] = "Bearer " + options_.peer_token;
  return h;
}

void PeerTransport::set_peer_address(const NodeId& id, const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  peers_[id].address = address;
}

bool PeerTransport::peer_healthy(const NodeId& id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = peers_.find(id);
  if (it == peers_.end()) return false;
  return !it->second.last_failed && Clock::now() - it->second.last_ok < std::chrono::seconds(5);
}

void PeerTransport::probe(const NodeId& id, std::function<void(bool refused)> done) {
  std::string address;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = peers_.find(id);
    if (it != peers_.end()) address = it->second.address;
  }
  if (address.empty()) return done(false);  // no address known: nothing proven
  client_.probe_listener(address, options_.probe_timeout_ms, std::move(done));
}

void PeerTransport::send(std::vector<Message> msgs) {
  std::vector<std::pair<NodeId, Message>> snapshots;
  std::vector<NodeId> touched;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& m : msgs) {
      if (m.type == MessageType::kSnapshot) {
        snapshots.emplace_back(m.to, std::move(m));
        continue;
      }
      if (wire_size_bound(m) > options_.max_message_bytes) {
        // Only an entry written before the bounds existed can be this large:
        // the peer would refuse it forever. Say so instead of sending it.
        count_refused("oversized");
        log_error("transport", "event=message_oversized to=" + m.to.str() + " index=" +
                                   std::to_string(m.index.value()) + " bytes=" + std::to_string(wire_size_bound(m)) +
                                   " limit=" + std::to_string(options_.max_message_bytes));
        continue;
      }
      Peer& p = peers_[m.to];
      Lane& lane = p.lanes[m.type == MessageType::kAppend && !m.entries.empty() ? kAppends : kControl];
      if (lane.queue.size() >= options_.max_queued_messages) {
        // Bounded (house style 6): Raft retransmits what is lost.
        ++p.dropped;
        continue;
      }
      touched.push_back(m.to);
      lane.queue.push_back(std::move(m));
    }
    for (const auto& id : touched) pump(id);
  }
  for (auto& [id, m] : snapshots) send_snapshot(id, std::move(m));
}

void PeerTransport::pump(const NodeId& id) {
  Peer& p = peers_[id];
  if (p.address.empty()) {
    for (auto& lane : p.lanes) lane.queue.clear();  // nowhere to send: a member we cannot dial
    return;
  }
  pump_lane(id, p, kControl);
  pump_lane(id, p, kAppends);
}

void PeerTransport::pump_lane(const NodeId& id, Peer& p, LaneId which) {
  Lane& lane = p.lanes[which];
  if (lane.in_flight || lane.queue.empty()) return;
  if (Clock::now() < p.retry_at) {
    // Backing off after a failure: keep only the newest messages.
    while (lane.queue.size() > 64) lane.queue.pop_front();
    return;
  }
  size_t max_bytes = lane.max_batch_bytes ? lane.max_batch_bytes : options_.max_batch_bytes;
  std::vector<Message> batch = take_batch(lane.queue, max_bytes);
  lane.in_flight = true;
  net::ClientRequest req;
  req.method = "POST";
  req.target = "/raft/messages";
  // Raft tolerates duplicates, and a peer restarted since our last batch
  // leaves a dead keep-alive connection in the pool: without the retry the
  // first batch after its restart (a vote, a vote's answer) was lost, which
  // cost a whole election timeout in failover rounds after a restart.
  req.retry_safe = true;
  req.body = encode_messages(batch);
  req.headers = headers();
  req.timeout_ms = options_.request_timeout_ms;
  size_t body_bytes = req.body.size();
  client_.request(p.address, std::move(req), [this, id, which, body_bytes](net::ClientResult r) {
    on_done(id, which, body_bytes, r);
  });
}

void PeerTransport::count_refused(const char* reason) {
  if (refused_) refused_->Add({{"reason", reason}}).Increment();
}

void PeerTransport::on_done(const NodeId& id, LaneId which, size_t body_bytes, const net::ClientResult& r) {
  std::lock_guard<std::mutex> lock(mu_);
  Peer& p = peers_[id];
  Lane& lane = p.lanes[which];
  lane.in_flight = false;
  int status = r.ok() ? r.value().status : 0;
  if (status == 204) {
    p.last_ok = Clock::now();
    p.last_failed = false;
    p.backoff_ms = 0;
    p.retry_at = {};
  } else if (status >= 400 && status < 500) {
    // The peer is there but refused the batch: no backoff (that would only
    // delay heartbeats), never the same batch again (Raft resends entries
    // in new messages), and never silently.
    const char* reason = status == 413 ? "too_large" : status == 400 ? "bad_request"
                         : status == 401 || status == 403 ? "unauthorized" : "other";
    count_refused(reason);
    if (status == 413) {
      // A peer with a lower limit (an older member): smaller batches from now on.
      lane.max_batch_bytes = std::max<size_t>(64 << 10, body_bytes / 2);
    }
    if (p.refused++ % 100 == 0) {
      log_warn("transport", "event=peer_refused to=" + id.str() + " status=" + std::to_string(status) +
                                " reason=" + reason + " body_bytes=" + std::to_string(body_bytes) +
                                " refused_total=" + std::to_string(p.refused));
    }
  } else {
    p.last_failed = true;
    p.backoff_ms = p.backoff_ms == 0 ? 50 : std::min(p.backoff_ms * 2, options_.max_backoff_ms);
    p.retry_at = Clock::now() + std::chrono::milliseconds(p.backoff_ms);
  }
  pump(id);
}

// One snapshot on its way to a peer: chunk after chunk, each request sent
// when the one before was answered. The bytes come from the message when
// it carries them, else from the snapshot's file, opened once (it stays
// readable if a newer snapshot replaces it meanwhile).
struct PeerTransport::SnapshotTransfer {
  NodeId to;
  std::string address;
  std::string id;  ///< names the transfer at the receiver
  Message message;
  std::unique_ptr<storage::SnapshotFileReader> file;
  uint64_t size = 0;
  uint32_t crc = 0;  ///< CRC32C of the bytes sent so far
  /// A file's: what raft.db records for it, and the same checksum over the
  /// bytes read so far (storage::snapshot_crc).
  std::optional<uint32_t> recorded_crc;
  uint32_t file_crc = 0;

  std::string chunk(uint64_t offset, size_t n) const {
    if (file) return file->read(offset, n);
    const std::string& data = *message.snapshot->data;
    return data.substr(static_cast<size_t>(offset), n);
  }
};

void PeerTransport::send_snapshot(const NodeId& id, Message m) {
  auto t = std::make_shared<SnapshotTransfer>();
  {
    std::lock_guard<std::mutex> lock(mu_);
    Peer& p = peers_[id];
    if (p.snapshot_in_flight || p.address.empty()) return;  // the leader retries after a timeout
    p.snapshot_in_flight = true;
    t->address = p.address;
    t->id = options_.self.str() + "-" + std::to_string(++transfer_seq_);
  }
  t->to = id;
  const consensus::Snapshot& snap = *m.snapshot;
  if (snap.data) {
    t->size = snap.data->size();
  } else if ((t->file = storage::SnapshotFileReader::open(options_.snapshot_dir, snap.index, snap.term))) {
    t->size = t->file->size();
    if (options_.recorded_snapshot_crc) {
      t->recorded_crc = options_.recorded_snapshot_crc(snap.index, snap.term);
      // raft.db names a newer one: its file outlives it only until a persist.
      if (!t->recorded_crc) {
        log_info("transport", "event=snapshot_superseded to=" + id.str() + " index=" + std::to_string(snap.index.value()));
        return end_transfer(*t, false);
      }
      t->file_crc = storage::snapshot_crc_of_meta(snap);
    }
  } else {
    // A newer snapshot replaced this one in the store: the core sends that
    // one once it hears this one failed.
    log_info("transport", "event=snapshot_superseded to=" + id.str() + " index=" + std::to_string(snap.index.value()));
    return end_transfer(*t, false);
  }
  log_info("transport", "event=snapshot_send to=" + id.str() + " index=" + std::to_string(snap.index.value()) +
                            " bytes=" + std::to_string(t->size) + " from=" + (t->file ? "file" : "memory"));
  t->message = std::move(m);
  send_chunk(std::move(t), 0);
}

void PeerTransport::send_chunk(std::shared_ptr<SnapshotTransfer> t, uint64_t offset) {
  bool last = offset >= t->size;
  net::ClientRequest req;
  req.method = "POST";
  req.headers = headers();
  req.timeout_ms = options_.request_timeout_ms * 5;
  size_t n = 0;
  if (last) {
    if (t->recorded_crc && *t->recorded_crc != t->file_crc) {
      // The file's bytes are not the ones raft.db recorded: this member's
      // disk changed them. The follower gets nothing to install (its decode
      // might not even notice); a new snapshot replaces the file.
      const auto& snap = *t->message.snapshot;
      log_error("transport", "event=snapshot_file_corrupt to=" + t->to.str() + " file=" + options_.snapshot_dir + "/" +
                                 storage::snapshot_file_name(snap.index, snap.term) +
                                 " recorded_crc=" + std::to_string(*t->recorded_crc) +
                                 " file_crc=" + std::to_string(t->file_crc) +
                                 " hint=\"the snapshot file changed on disk since it was written (a failing disk?): "
                                 "not sent; taking a new snapshot\"");
      if (corrupt_snapshot_) corrupt_snapshot_();
      return end_transfer(*t, false);
    }
    req.target = "/raft/snapshot/done?transfer=" + t->id + "&total=" + std::to_string(t->size);
    req.body = encode_snapshot_meta(t->message, t->crc);
  } else {
    req.body = t->chunk(offset, options_.snapshot_chunk_bytes);
    n = req.body.size();
    t->crc = crc32c_extend(t->crc, req.body.data(), n);
    if (t->recorded_crc) t->file_crc = crc32c_extend(t->file_crc, req.body.data(), n);
    req.target = "/raft/snapshot/chunk?transfer=" + t->id + "&offset=" + std::to_string(offset) +
                 "&crc=" + std::to_string(crc32c(req.body));
  }
  std::string address = t->address;
  client_.request(address, std::move(req), [this, t = std::move(t), offset, n, last](net::ClientResult r) {
    bool ok = r.ok() && r.value().status == 204;
    if (ok && !last) return send_chunk(t, offset + n);
    if (!ok) {
      log_warn("transport", "event=snapshot_failed to=" + t->to.str() + " offset=" + std::to_string(offset) +
                                " status=" + (r.ok() ? std::to_string(r.value().status) : std::string(net::to_string(r.code()))));
    }
    end_transfer(*t, ok);
  });
}

void PeerTransport::end_transfer(const SnapshotTransfer& t, bool delivered) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    peers_[t.to].snapshot_in_flight = false;
  }
  if (snapshot_verdict_) snapshot_verdict_(t.to, delivered);
}

}  // namespace tenure::peers
