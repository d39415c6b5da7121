#pragma once
// Watch streams (GET /v1/watch): ndjson events after a revision, from this
// member's applied state. Every watcher lives on the RaftNode's strand and is
// fed after each applied batch; a consumer that falls too far behind gets a
// final error line and is cut off instead of being buffered without bound.

#include <cstdint>
#include <map>
#include <memory>

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "controller/raft_node.h"
#include "net/http_server.h"

namespace tenure::api {

class ControllerApi;

class WatchHub {
 public:
  WatchHub(controller::RaftNode& node, prometheus::Registry& registry);
  void add_routes(ControllerApi& api);
  /// Strand only: new entries were applied.
  void on_applied();
  /// Strand only: periodic progress lines keep idle streams observably alive.
  void on_tick();

  /// Unsent bytes above which a watcher is cut off.
  static constexpr size_t kMaxQueuedBytes = 8 << 20;
  /// Events written per watcher per pass (keeps one pass short on the strand).
  static constexpr size_t kEventsPerPass = 4096;

 private:
  struct Watcher {
    controlplane::WorkerId worker;  ///< empty: every event
    controlplane::Revision after;   ///< everything up to here was sent
    std::shared_ptr<net::Responder> res;
    uint64_t last_write_ms = 0;
  };
  void open(const std::shared_ptr<net::Responder>& res, controlplane::WorkerId worker, controlplane::Revision after);
  /// Sends what the watcher has not seen; false when it must be dropped.
  bool flush(Watcher& w);
  void close(uint64_t id, Watcher& w, const std::string& error, const std::string& message);

  controller::RaftNode& node_;
  prometheus::Gauge& open_streams_;
  std::map<uint64_t, Watcher> watchers_;
  uint64_t next_id_ = 1;
};

}  // namespace tenure::api
