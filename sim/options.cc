#include "sim/options.h"

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

#include "sim/rng.h"

namespace tenure::sim {

RunOptions draw_options(uint64_t seed, const Overrides& o) {
  // The draw order below is part of the replay format: appending new draws
  // at the end keeps old seeds meaningful, reordering does not.
  Rng rng(seed ^ 0x6F7074696F6E73ULL);  // "options"
  RunOptions r;
  r.seed = seed;
  r.nodes = rng.chance(0.5) ? 3 : 5;
  r.election_ticks = static_cast<int>(rng.range(8, 16));
  r.heartbeat_ticks = static_cast<int>(rng.range(1, 3));
  r.max_inflight = rng.pick(std::vector<size_t>{1, 2, 4, 16, 256});
  r.max_bytes_per_msg = rng.pick(std::vector<size_t>{16, 64, 512, 1 << 20});

  r.drop = rng.chance(0.2) ? 0 : rng.unit() * 0.15;
  r.dup = rng.chance(0.3) ? 0 : rng.unit() * 0.05;
  r.slow = rng.chance(0.3) ? 0 : rng.unit() * 0.05;
  r.delay_min_us = rng.range(100, 2000);
  r.delay_max_us = r.delay_min_us + rng.range(0, 3 * kTickUs);
  r.slow_max_us = r.delay_max_us + rng.range(1, 20) * kTickUs;

  r.partition_gap_ticks = draw_gap(rng, 0.25, 30, 500);
  r.partition_len_ticks = rng.range(5, 200);
  r.partition_leader = rng.unit();

  r.crash_gap_ticks = draw_gap(rng, 0.2, 20, 600);
  r.down_ticks = rng.range(1, 150);
  r.crash_leader = rng.unit();
  r.torn = rng.unit() * 0.7;
  r.skew = rng.chance(0.3) ? 0 : rng.unit() * 0.3;

  r.compact_every = static_cast<int>(rng.range(5, 200));
  r.keep_entries = static_cast<int>(rng.range(0, 20));

  r.churn_gap_ticks = draw_gap(rng, 0.3, 50, 500);
  r.transfer_gap_ticks = draw_gap(rng, 0.4, 50, 600);

  r.clients = static_cast<int>(rng.range(1, 5));
  r.read_ratio = 0.2 + rng.unit() * 0.6;
  r.follower_reads = rng.unit();
  r.client_timeout_ticks = rng.range(20, 80);
  r.think_ticks = rng.range(0, 10);
  r.keys = static_cast<int>(rng.range(1, 5));

  r.value_bytes = static_cast<int>(rng.range(4, 48));
  // A third of the runs are storms: the leader is crashed or cut off every
  // few dozen ticks and comes back quickly, with entries only partly
  // replicated (what Figure 8 of the Raft paper is made of).
  if (rng.chance(0.35)) {
    r.storm = true;
    r.crash_gap_ticks = rng.range(15, 80);
    r.down_ticks = rng.range(1, 30);
    r.crash_leader = 0.6 + rng.unit() * 0.4;
    r.torn = 0.3 + rng.unit() * 0.5;
    r.partition_gap_ticks = rng.range(15, 80);
    r.partition_len_ticks = rng.range(3, 40);
    r.partition_leader = 0.6 + rng.unit() * 0.4;
    r.react_leader = 0.2 + rng.unit() * 0.6;
    r.react_commit = rng.unit() * 0.05;
    // One entry per message, one message in flight: a follower's match
    // moves one entry at a time, through every term in the leader's log.
    r.max_inflight = rng.chance(0.5) ? 1 : r.max_inflight;
    r.max_bytes_per_msg = rng.chance(0.5) ? 16 : r.max_bytes_per_msg;
  }

  r.crash_loses_inflight = rng.unit();
  r.async_fsync = rng.chance(0.5);
  if (r.async_fsync) {
    r.fsync_min_us = rng.range(50, 2000);
    // Now and then a slow disk: an fsync stalls for many ticks while the
    // member goes on stepping messages and ticking.
    r.fsync_max_us = r.fsync_min_us + rng.range(0, (rng.chance(0.3) ? 4 : 2) * kTickUs);
  }

  r.keep_removed = rng.chance(0.3);
  r.promote_learners = rng.chance(0.5);
  r.handoff_max_us = rng.chance(0.5) ? rng.range(0, 3 * kTickUs) : 0;
  // Half the runs have a disk that stalls now and then (asynchronous
  // fsyncs then, whatever was drawn above).
  if (rng.chance(0.5)) {
    r.fsync_stall = 0.05 + rng.unit() * 0.25;
    if (!r.async_fsync) {
      r.async_fsync = true;
      r.fsync_min_us = rng.range(50, 2000);
      r.fsync_max_us = r.fsync_min_us + rng.range(0, 2 * kTickUs);
    }
  }
  // Drawn last: the draws above, and so every seed's schedule, stay as they were.
  r.apply_bytes_per_ready = rng.chance(0.5) ? 0 : rng.pick(std::vector<size_t>{1, 16, 64, 256});
  // Most runs release payloads (the controller does), many down to none:
  // followers behind then get entries read back from the durable store.
  r.resident_log_bytes = rng.chance(0.25) ? 0 : rng.pick(std::vector<size_t>{1, 64, 1024});
  r.apply_entries_per_turn = rng.chance(0.5) ? 0 : static_cast<size_t>(rng.range(1, 3));
  double lease_bound_ms = static_cast<double>((r.election_ticks - 1) * kTickUs) / 1000.0 * (1 - r.skew) / (1 + r.skew);
  if (rng.chance(0.5)) r.read_lease_ms = static_cast<uint32_t>(lease_bound_ms * (0.3 + 0.6 * rng.unit()));
  if (rng.chance(0.4)) {
    r.pause_gap_ticks = rng.range(30, 300);
    r.pause_leader = 0.5 + 0.5 * rng.unit();
  }

  if (o.bug == "lease-outlives-votes") {
    // The bug lives in a leader that stops while its lease runs (it
    // multiplies the lease by ten): every run with it has a lease and
    // pauses its leader often.
    if (r.read_lease_ms == 0) r.read_lease_ms = static_cast<uint32_t>(lease_bound_ms * 0.9);
    r.pause_gap_ticks = rng.range(20, 60);
    r.pause_leader = 1;
  }
  if (o.nodes) r.nodes = *o.nodes;
  if (o.probe_leader) r.probe_leader = *o.probe_leader;
  if (o.ticks) r.ticks = *o.ticks;
  r.bug = o.bug;
  if (o.fleet) {
    // From a stream of its own: the Raft options above stay as they were.
    r.fleet = true;
    // An agent's call: two hops, and a ReadIndex round (up to a heartbeat
    // interval's wait, two more hops).
    auto min_call_ms = static_cast<uint64_t>((4 * r.delay_max_us + 2 * r.heartbeat_ticks * kTickUs) / 1000 + 20);
    r.fleet_options = draw_fleet_options(seed, min_call_ms);
    // The controller replicates with 1 MiB messages. Runs whose byte budget
    // carries one entry per message (a Raft stress setting) replicate a few
    // dozen entries a second: the fleet's proposals then time out and are
    // decided again faster than they commit, and it never settles.
    r.max_bytes_per_msg = std::max<size_t>(r.max_bytes_per_msg, size_t{64} << 10);
    if (r.fleet_options.clocks_at_bound) {
      // A precise run: a calm group (no Raft faults) under agents whose
      // clocks sit at the drift bound, so that an agent cut off fails over
      // as fast as the fleet allows and the lease's margin is all that
      // keeps two writers apart (fleet_options.h, clocks_at_bound).
      r.storm = false;
      r.partition_gap_ticks = r.crash_gap_ticks = r.churn_gap_ticks = r.transfer_gap_ticks = 0;
      r.drop = r.dup = r.slow = r.fsync_stall = 0;
    }
    if (is_fleet_bug(o.bug)) r.fleet_options.bug = o.bug;
    if (o.bug == "fleet-drain-past-lease" && !r.fleet_options.program) {
      // The bug lives in drains: every run with it has a program that drains.
      r.fleet_options.program = true;
      r.fleet_options.program_drain_max_ms = 2 * r.fleet_options.lease_ms;
      r.fleet_options.drain_timeout_ms = 3 * r.fleet_options.lease_ms;
      r.fleet_options.prepare_timeout_ms = r.fleet_options.lease_ms;
    }
  }
  return r;
}

std::string RunOptions::describe() const {
  std::ostringstream os;
  os << "seed=" << seed << " nodes=" << nodes << " ticks=" << ticks << " bug=" << (bug.empty() ? "none" : bug)
     << " election=" << election_ticks << " heartbeat=" << heartbeat_ticks << " inflight=" << max_inflight
     << " msg_bytes=" << max_bytes_per_msg << " drop=" << fixed3(drop) << " dup=" << fixed3(dup)
     << " slow=" << fixed3(slow) << " delay_us=" << delay_min_us << "-" << delay_max_us
     << " slow_max_us=" << slow_max_us << " partition_gap=" << partition_gap_ticks
     << " partition_len=" << partition_len_ticks << " partition_leader=" << fixed3(partition_leader)
     << " crash_gap=" << crash_gap_ticks << " down=" << down_ticks << " crash_leader=" << fixed3(crash_leader)
     << " torn=" << fixed3(torn) << " skew=" << fixed3(skew) << " compact_every=" << compact_every
     << " keep=" << keep_entries << " churn_gap=" << churn_gap_ticks << " transfer_gap=" << transfer_gap_ticks
     << " clients=" << clients << " reads=" << fixed3(read_ratio) << " follower_reads=" << fixed3(follower_reads)
     << " client_timeout=" << client_timeout_ticks << " think=" << think_ticks << " keys=" << keys
     << " value_bytes=" << value_bytes << " storm=" << (storm ? 1 : 0) << " react_leader=" << fixed3(react_leader)
     << " react_commit=" << fixed3(react_commit) << " crash_loses_inflight=" << fixed3(crash_loses_inflight)
     << " async_fsync=" << (async_fsync ? 1 : 0) << " fsync_us=" << fsync_min_us << "-" << fsync_max_us
     << " keep_removed=" << (keep_removed ? 1 : 0) << " promote_learners=" << (promote_learners ? 1 : 0)
     << " handoff_us=0-" << handoff_max_us << " fsync_stall=" << fsync_stall
     << " apply_bytes=" << apply_bytes_per_ready << " probe_leader=" << (probe_leader ? 1 : 0)
     << " resident_log_bytes=" << resident_log_bytes << " apply_entries_per_turn=" << apply_entries_per_turn
     << " read_lease_ms=" << read_lease_ms << " pause_gap=" << pause_gap_ticks
     << " pause_leader=" << fixed3(pause_leader);
  if (fleet) os << fleet_options.describe();
  return os.str();
}

std::string RunOptions::replay() const {
  std::ostringstream os;
  os << "tenure-sim --seed " << seed << " --nodes " << nodes << " --ticks " << ticks;
  if (fleet) os << " --fleet";
  if (!bug.empty()) os << " --bug " << bug;
  if (!probe_leader) os << " --probe-leader 0";
  return os.str();
}

}  // namespace tenure::sim
