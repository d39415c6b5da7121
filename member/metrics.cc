#include "member/metrics.h"

namespace tenure::member {

namespace {
prometheus::Histogram::BucketBoundaries latency_buckets() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};
}
}  // namespace

RaftMetrics::RaftMetrics(prometheus::Registry& r)
    : term(prometheus::BuildGauge().Name("tenure_raft_term").Help("Current Raft term").Register(r).Add({})),
      commit_index(prometheus::BuildGauge()
                       .Name("tenure_raft_commit_index")
                       .Help("Highest log index known committed")
                       .Register(r)
                       .Add({})),
      applied_index(prometheus::BuildGauge()
                        .Name("tenure_raft_applied_index")
                        .Help("Highest log index applied to the state machine")
                        .Register(r)
                        .Add({})),
      log_payload_bytes(prometheus::BuildGauge()
                            .Name("tenure_raft_log_payload_bytes")
                            .Help("Payload bytes of Raft log entries held in memory: unpersisted, unapplied, or "
                                  "among the newest 8 MiB applied (older ones are read from raft.db when needed)")
                            .Register(r)
                            .Add({})),
      log_entries_read_back(prometheus::BuildCounter()
                                .Name("tenure_raft_log_entries_read_back_total")
                                .Help("Log entries whose payloads were read back from raft.db (released from memory) "
                                      "to send to a follower further behind")
                                .Register(r)
                                .Add({})),
      is_leader(prometheus::BuildGauge()
                    .Name("tenure_raft_is_leader")
                    .Help("1 if this member is the leader")
                    .Register(r)
                    .Add({})),
      revision(prometheus::BuildGauge()
                   .Name("tenure_revision")
                   .Help("Cluster-wide revision of the applied state")
                   .Register(r)
                   .Add({})),
      leader_changes(prometheus::BuildCounter()
                         .Name("tenure_raft_leader_changes_total")
                         .Help("Times this member saw the leader change")
                         .Register(r)
                         .Add({})),
      proposals(prometheus::BuildCounter()
                    .Name("tenure_raft_proposals_total")
                    .Help("Proposals by result (applied, not_leader, dropped, timeout, busy)")
                    .Register(r)),
      linearizable_reads(prometheus::BuildCounter()
                             .Name("tenure_raft_linearizable_reads_total")
                             .Help("Linearizable reads begun here, by path (lease: answered on the leader's "
                                   "lease; read_index: after a heartbeat round)")
                             .Register(r)),
      reads_on_lease(linearizable_reads.Add({{"path", "lease"}})),
      reads_by_round(linearizable_reads.Add({{"path", "read_index"}})),
      append_seconds(prometheus::BuildHistogram()
                         .Name("tenure_raft_log_append_seconds")
                         .Help("Time to persist one Ready (one SQLite transaction and fsync)")
                         .Register(r)
                         .Add({}, latency_buckets())),
      commit_seconds(prometheus::BuildHistogram()
                         .Name("tenure_raft_commit_seconds")
                         .Help("Time from proposal to apply at the leader")
                         .Register(r)
                         .Add({}, latency_buckets())),
      append_batch_entries(prometheus::BuildHistogram()
                               .Name("tenure_raft_log_append_batch_entries")
                               .Help("Entries persisted per Ready (group commit size)")
                               .Register(r)
                               .Add({}, prometheus::Histogram::BucketBoundaries{1, 2, 4, 8, 16, 32, 64, 128, 256, 512})),
      snapshots_taken(prometheus::BuildCounter()
                          .Name("tenure_raft_snapshots_taken_total")
                          .Help("State-machine snapshots taken locally")
                          .Register(r)
                          .Add({})),
      snapshot_pause_seconds(prometheus::BuildHistogram()
                                 .Name("tenure_raft_snapshot_pause_seconds")
                                 .Help("Time the Raft strand stopped for a local snapshot (the fork of the "
                                       "process that encodes and writes it)")
                                 .Register(r)
                                 .Add({}, latency_buckets())),
      snapshot_seconds(prometheus::BuildHistogram()
                           .Name("tenure_raft_snapshot_seconds")
                           .Help("Time to take a local snapshot: encoded, written, fsynced, read back")
                           .Register(r)
                           .Add({}, prometheus::Histogram::BucketBoundaries{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30})),
      snapshots_installed(prometheus::BuildCounter()
                              .Name("tenure_raft_snapshots_installed_total")
                              .Help("Snapshots received from a leader and installed")
                              .Register(r)
                              .Add({})),
      members(prometheus::BuildGauge()
                  .Name("tenure_raft_members")
                  .Help("Members of the controller group (voters and learners)")
                  .Register(r)
                  .Add({})),
      shards(prometheus::BuildGauge().Name("tenure_shards").Help("Shards by state").Register(r)),
      workers(prometheus::BuildGauge().Name("tenure_workers").Help("Workers by state").Register(r)),
      messages_dropped(prometheus::BuildCounter()
                           .Name("tenure_raft_messages_dropped_total")
                           .Help("Peer messages dropped as inconsistent or malformed, by reason")
                           .Register(r)),
      proposal_queue(prometheus::BuildGauge()
                         .Name("tenure_raft_proposal_queue")
                         .Help("Proposals queued while the log's fsync runs (bounded; past it 503 busy)")
                         .Register(r)
                         .Add({})),
      peer_refused(prometheus::BuildCounter()
                       .Name("tenure_peer_requests_refused_total")
                       .Help("Raft peer requests refused by the peer (4xx) or too large to send, by reason")
                       .Register(r)),
      tick_delay_seconds(prometheus::BuildHistogram()
                             .Name("tenure_raft_tick_delay_seconds")
                             .Help("How late each Raft tick ran after its due time (the strand was busy)")
                             .Register(r)
                             .Add({}, latency_buckets())),
      stalled_seconds(prometheus::BuildCounter()
                          .Name("tenure_raft_stalled_seconds_total")
                          .Help("Time this member could not listen: its Raft ticks late by 100 ms or more, summed "
                                "(a leader holds every worker's lease that much longer)")
                          .Register(r)
                          .Add({})),
      strand_busy_seconds(prometheus::BuildHistogram()
                              .Name("tenure_raft_strand_busy_seconds")
                              .Help("How long one piece of work held the Raft strand, by work (tick, leader_tasks, "
                                    "peer_messages, driver, apply, request, stale_read)")
                              .Register(r)),
      history_queued_records(prometheus::BuildGauge()
                                 .Name("tenure_history_queued_records")
                                 .Help("History records waiting for the history writer")
                                 .Register(r)
                                 .Add({})),
      history_queued_bytes(prometheus::BuildGauge()
                               .Name("tenure_history_queued_bytes")
                               .Help("Memory the history writer's queue holds (past 64 MiB, or 500,000 records, an "
                                     "apply's records are dropped)")
                               .Register(r)
                               .Add({})),
      history_records_written(prometheus::BuildCounter()
                                  .Name("tenure_history_records_written_total")
                                  .Help("History records written to history.db")
                                  .Register(r)
                                  .Add({})),
      history_records_dropped(prometheus::BuildCounter()
                                  .Name("tenure_history_records_dropped_total")
                                  .Help("History records dropped because the writer was too far behind (a gap)")
                                  .Register(r)
                                  .Add({})),
      history_gap_through_revision(prometheus::BuildGauge()
                                       .Name("tenure_history_gap_through_revision")
                                       .Help("This member's history lacks records up to this revision (0: none)")
                                       .Register(r)
                                       .Add({})) {}

}  // namespace tenure::member
