#pragma once
// Static configuration of one Raft member. Time is measured in ticks: the
// driver calls Raft::tick() at a fixed interval (the controller uses
// heartbeat_interval_ms per heartbeat tick); the core never reads a clock.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "consensus/types.h"

namespace tenure::consensus {

/// Deliberately planted protocol bugs. They exist only so the simulator can
/// prove that its checkers catch real violations; production code never
/// sets them (the controller's config has no way to reach them).
struct TestingKnobs {
  /// Commit an entry from an earlier term once a majority stores it,
  /// ignoring thesis §3.6.2 (Figure 8).
  bool commit_old_term_by_counting = false;
  /// Grant votes without the "candidate's log is at least as up to date" check (§3.6.1).
  bool vote_without_log_check = false;
  /// Acknowledge AppendEntries before the entries are persisted (§3.8).
  bool ack_append_before_persist = false;
  /// Answer ReadIndex without confirming leadership with a quorum (§6.4).
  bool read_index_without_quorum = false;
  /// Leave the vote out of the hard state to persist (§3.8: votedFor is durable).
  bool forget_vote_on_persist = false;
  /// Keep acks waiting for the next Ready when a newer leader replaces the
  /// entries they name (undoes 81022f1; §3.8 again, under async fsync).
  bool keep_acks_of_replaced_entries = false;
  /// The driver's read lease lasts ten times DriverOptions::read_lease_ms,
  /// past the time the members that confirmed it refuse votes (§6.4.1).
  bool lease_outlives_votes = false;

  bool any() const {
    return commit_old_term_by_counting || vote_without_log_check || ack_append_before_persist ||
           read_index_without_quorum || forget_vote_on_persist || keep_acks_of_replaced_entries ||
           lease_outlives_votes;
  }
};

/// Names of the planted bugs, as `tenure-sim --bug NAME` accepts them.
std::vector<std::string> planted_bug_names();
/// Switches on the named bug; returns false for an unknown name.
bool enable_planted_bug(TestingKnobs& knobs, const std::string& name);

struct RaftConfig {
  NodeId id;
  /// Ticks without hearing from a leader before campaigning; the actual
  /// timeout is randomized above it (§3.4), see election_jitter_ticks.
  int election_ticks = 10;
  /// Width of the randomization: the timeout is drawn from
  /// [election_ticks, election_ticks + jitter). 0 means election_ticks
  /// (the thesis' [T, 2T), as etcd-io/raft). A narrower window fails over
  /// sooner; it needs a fine tick so that members still draw distinct times.
  int election_jitter_ticks = 0;
  /// Ticks between a leader's heartbeats; must be < election_ticks.
  int heartbeat_ticks = 1;
  /// Pre-vote (§9.6): a partitioned node rejoining cannot disrupt a leader.
  bool pre_vote = true;
  /// Check-quorum (§6.2): a leader that hears from no majority within an
  /// election timeout steps down; followers in contact with a leader ignore votes.
  bool check_quorum = true;
  /// Upper bound on the entries' bytes in one AppendEntries message: each
  /// entry counts its payload plus entry_overhead_bytes. A message carries at
  /// least one entry, so it is bounded by max(max_bytes_per_msg, max_entry_bytes).
  size_t max_bytes_per_msg = 1 << 20;
  /// What an entry's envelope (term, index, type, length) takes in the
  /// transport's encoding, counted against max_bytes_per_msg so that a
  /// message of many small entries is bounded in encoded bytes too (etcd
  /// counts an entry's protobuf size). 0 counts payload only.
  size_t entry_overhead_bytes = 0;
  /// Proposals with an entry whose payload exceeds this are refused
  /// (RaftError::kEntryTooLarge): no entry may be larger than what a
  /// follower accepts in one message (etcd: --max-request-bytes).
  size_t max_entry_bytes = size_t{64} << 20;
  /// Upper bound on AppendEntries messages in flight to one follower (pipelining window).
  size_t max_inflight_msgs = 256;
  /// Proposals are refused once this many payload bytes await commitment.
  size_t max_uncommitted_bytes = 64 << 20;
  /// Upper bound on the committed entries' payload bytes one Ready hands
  /// out to apply (at least one entry); the rest come in the next Ready.
  /// The driver applies a Ready in one go, so this bounds how long it
  /// keeps ticks and peer messages waiting (etcd: MaxCommittedSizePerReady).
  /// 0: no bound.
  size_t max_committed_bytes_per_ready = 0;
  /// Payload bytes of stable, applied entries kept in memory for followers
  /// that lag a little; older ones are released and read back from the
  /// durable log (Raft::set_entry_reader) when a follower needs them.
  /// 0: keep every payload until compaction.
  size_t max_resident_log_bytes = 0;
  /// The leader serves linearizable reads on a lease (the driver's
  /// DriverOptions::read_lease_ms, thesis §6.4.1): it trusts a quorum's
  /// acknowledgement of a heartbeat round for a while after the round began,
  /// because every member that acknowledged refuses votes for an election
  /// timeout after hearing from it (check_quorum). So that a member that
  /// restarts does not forget that promise, it also refuses votes for an
  /// election timeout after it starts; and a leader that began a transfer
  /// (which lets its target campaign at once) forfeits the lease for the
  /// rest of its term (Raft::lease_forfeited). Needs check_quorum.
  bool leader_lease = false;
  /// Seeds the randomized election timeout; the core has no other randomness.
  uint64_t random_seed = 0;
  TestingKnobs knobs;
};

}  // namespace tenure::consensus
