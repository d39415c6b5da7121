#pragma once
// The controller's Raft metrics (CONTRACT.md "Metrics"), registered on one
// prometheus-cpp registry that /metrics serialises. Names carry the tenure_
// prefix and base units (DESIGN.md, house style 11).

#include <memory>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

namespace tenure::member {

struct RaftMetrics {
  explicit RaftMetrics(prometheus::Registry& registry);

  prometheus::Gauge& term;
  prometheus::Gauge& commit_index;
  prometheus::Gauge& applied_index;
  prometheus::Gauge& log_payload_bytes;  ///< the log's payloads held in memory
  prometheus::Counter& log_entries_read_back;  ///< released payloads read back from raft.db
  prometheus::Gauge& is_leader;
  prometheus::Gauge& revision;
  prometheus::Counter& leader_changes;
  prometheus::Family<prometheus::Counter>& proposals;  ///< label result
  /// Linearizable reads begun at this member, by label path: "lease" (the
  /// leader answered at once, DriverOptions::read_lease_ms) or
  /// "read_index" (a heartbeat round, or the leader's answer to a follower).
  prometheus::Family<prometheus::Counter>& linearizable_reads;
  prometheus::Counter& reads_on_lease;
  prometheus::Counter& reads_by_round;
  prometheus::Histogram& append_seconds;               ///< one Ready's transaction + fsync
  prometheus::Histogram& commit_seconds;               ///< propose -> applied, at the leader
  prometheus::Histogram& append_batch_entries;         ///< entries per persisted Ready
  prometheus::Counter& snapshots_taken;
  prometheus::Histogram& snapshot_pause_seconds;  ///< the strand's share of a local snapshot (the fork)
  prometheus::Histogram& snapshot_seconds;        ///< a local snapshot, start to file durable
  prometheus::Counter& snapshots_installed;
  prometheus::Gauge& members;
  prometheus::Family<prometheus::Gauge>& shards;   ///< label state
  prometheus::Family<prometheus::Gauge>& workers;  ///< label state
  /// Peer messages refused as inconsistent or malformed (label reason, a
  /// closed set: controller/message_drops.h).
  prometheus::Family<prometheus::Counter>& messages_dropped;
  /// Proposals waiting for the current fsync (bounded: NodeOptions::max_queued_proposals).
  prometheus::Gauge& proposal_queue;
  /// Peer requests a peer refused (4xx) or never sent (oversized), label reason.
  prometheus::Family<prometheus::Counter>& peer_refused;
  /// How late each Raft tick ran: the strand (or both io threads) busy
  /// with something else. Late ticks are late heartbeats at a leader.
  prometheus::Histogram& tick_delay_seconds;
  /// The sum of the ticks late by RaftNode::kStallMinMs or more: time this
  /// member could not listen. A leader holds every worker's lease that
  /// much longer (FleetPolicy::hold_leases).
  prometheus::Counter& stalled_seconds;
  /// How long one piece of work held the Raft strand, by label work (a
  /// closed set: RaftNode::StrandWork). Whatever holds it that long delays
  /// heartbeats and every peer message by as much.
  prometheus::Family<prometheus::Histogram>& strand_busy_seconds;
  /// The history writer (member/history_store.h): records waiting for it
  /// and the bytes they hold (past HistoryStore::kMaxQueuedBytes an
  /// apply's records are dropped), records it wrote and dropped, and the
  /// revision through which this member's history has a gap (0: none).
  prometheus::Gauge& history_queued_records;
  prometheus::Gauge& history_queued_bytes;
  prometheus::Counter& history_records_written;
  prometheus::Counter& history_records_dropped;
  prometheus::Gauge& history_gap_through_revision;
};

}  // namespace tenure::member
