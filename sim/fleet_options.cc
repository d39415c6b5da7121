#include "sim/fleet_options.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "controlplane/command_split.h"
#include "sim/rng.h"

namespace tenure::sim {

namespace {

// Gaps here are in ms, unsigned.
uint64_t gap(Rng& rng, double never, int64_t lo, int64_t hi) { return static_cast<uint64_t>(draw_gap(rng, never, lo, hi)); }

uint64_t urange(Rng& rng, uint64_t lo, uint64_t hi) {
  return static_cast<uint64_t>(rng.range(static_cast<int64_t>(lo), static_cast<int64_t>(hi)));
}

const std::vector<std::string> kBugs = {"fleet-lease-no-margin", "fleet-no-full-lease",
                                        "fleet-lease-while-declaring-dead", "fleet-lease-ignores-worker-revision",
                                        "fleet-drain-past-lease"};

}  // namespace

uint64_t FleetOptions::scaled_ms(uint64_t real_ms) const { return std::max<uint64_t>(1, real_ms * lease_ms / 3000); }

FleetOptions draw_fleet_options(uint64_t seed, uint64_t min_call_ms) {
  // As in draw_options: appending draws keeps old seeds meaningful.
  Rng rng(seed ^ 0x666C656574ULL);  // "fleet"
  FleetOptions f;
  f.agents = static_cast<int>(rng.range(3, 8));
  f.zones = static_cast<int>(rng.range(1, 3));
  f.initial_shards = static_cast<int>(rng.range(4, 40));

  // A lease spans many round trips, as 3 s do on a LAN.
  f.min_call_ms = min_call_ms;
  f.lease_ms = urange(rng, std::max<uint64_t>(300, 6 * min_call_ms), std::max<uint64_t>(2000, 12 * min_call_ms));
  f.check_interval_ms = rng.pick(std::vector<uint64_t>{10, 20, 50});
  f.placement_interval_ms = urange(rng, 200, 2000);
  f.placement_min_interval_ms = urange(rng, 20, 200);
  f.max_concurrent_moves = rng.pick(std::vector<uint32_t>{1, 2, 4, 64});
  f.join_delay_ms = rng.chance(0.5) ? 0 : urange(rng, 0, 2 * f.lease_ms);
  f.max_placements_per_command = rng.pick(std::vector<size_t>{1, 3, 4000});
  f.request_timeout_ms = f.scaled_ms(5000);
  f.events_kept = rng.chance(0.5) ? 200000 : urange(rng, 20, 500);

  // The heartbeat interval stays well inside the lease's validity
  // (0.95 * lease - max(100 ms, interval)), as an operator would set it.
  uint64_t hb_max = std::min<uint64_t>(500, f.lease_ms * 4 / 10);
  f.heartbeat_ms = urange(rng, std::max<uint64_t>(10, f.lease_ms / 30), hb_max);
  f.watch_poll_ms = urange(rng, 1, 50);
  f.agent_rate_spread = rng.unit() * 0.1;
  f.rate_at_bound = rng.unit();
  f.fsync_min_us = rng.range(20, 500);
  f.fsync_max_us = f.fsync_min_us + rng.range(0, 3000);
  if (rng.chance(0.3)) {
    f.fsync_stall = 0.001 + rng.unit() * 0.02;
    f.stall_max_ms = urange(rng, f.lease_ms / 4, 2 * f.lease_ms);
  }

  f.pause_gap_ms = gap(rng, 0.25, 500, 8000);
  f.pause_max_ms = urange(rng, f.lease_ms / 2, 3 * f.lease_ms);
  f.crash_gap_ms = gap(rng, 0.25, 1000, 10000);
  f.down_max_ms = urange(rng, 100, 3 * f.lease_ms);
  f.leave_gap_ms = gap(rng, 0.5, 2000, 15000);
  f.cut_gap_ms = gap(rng, 0.3, 500, 6000);
  f.cut_max_ms = urange(rng, 50, 3 * f.lease_ms);

  f.create_gap_ms = gap(rng, 0.3, 300, 4000);
  f.delete_gap_ms = gap(rng, 0.6, 2000, 10000);
  f.drain_gap_ms = gap(rng, 0.3, 500, 5000);
  f.move_gap_ms = gap(rng, 0.3, 200, 3000);

  // Large operations (issue 8), drawn last so earlier draws stay as they
  // were: thousands of shards with long ids, so that failovers, drains and
  // placements are split into many bounded pieces, some near their bound.
  f.max_command_list_bytes = controlplane::kCommandListBudgetBytes;
  // (5% of seeds: the checkers' cost grows with shards times steps.)
  if (rng.chance(0.05)) {
    f.initial_shards = static_cast<int>(rng.range(800, 2000));
    f.max_placements_per_command = rng.pick(std::vector<size_t>{500, 4000});
    f.shard_id_pad = static_cast<int>(rng.range(20, 110));
    f.max_command_list_bytes = rng.pick(std::vector<size_t>{2048, 16384, 65536, controlplane::kCommandListBudgetBytes});
    // Many shards per worker: moves in flight in proportion, or a drain lasts the whole run.
    f.max_concurrent_moves = rng.pick(std::vector<uint32_t>{64, 1000, 100000});
  }
  // Drawn after everything above, so that seeds without them stay as they were.
  f.mute_gap_ms = gap(rng, 0.5, 500, 4000);
  f.max_assignments_per_pass = rng.chance(0.7) ? 20000 : urange(rng, 1, 50);
  f.isolate_gap_ms = gap(rng, 0.5, 500, 4000);
  // Half the runs: a program that drains slowly, or never, and outlasts
  // leases now and then (a crash mid-drain is the agent crash fault).
  if (rng.chance(0.5)) {
    f.program = true;
    f.program_drain_max_ms = urange(rng, 0, 2 * f.lease_ms);
    f.program_never = rng.chance(0.5) ? 0.0 : 0.3 * rng.unit();
    f.drain_timeout_ms = urange(rng, f.lease_ms / 2, 3 * f.lease_ms);
    f.program_prepare_max_ms = urange(rng, 0, f.lease_ms);
    f.prepare_timeout_ms = urange(rng, f.lease_ms / 4, 2 * f.lease_ms);
    // Now and then shorter than the agents' own: the leader moves on first.
    f.controller_prepare_timeout_ms = urange(rng, f.lease_ms / 2, 4 * f.lease_ms);
  }
  f.clocks_at_bound = rng.chance(0.3);
  if (f.clocks_at_bound) {
    // And a failover as quick as the fleet allows, so that the drift
    // allowance (5% of a lease) is not eaten by the failover's own latency.
    f.check_interval_ms = 10;
    f.watch_poll_ms = 1;
  }
  // Drawn last, so that every draw above stays as it was. Failovers in
  // slices of a few shards, as a mass failover goes (not in the precise
  // runs: a slice waits for the one before, which costs their margin).
  bool sliced = rng.chance(0.3);
  if (sliced && !f.clocks_at_bound) f.max_failovers_per_pass = urange(rng, 1, 50);
  return f;
}

std::string FleetOptions::describe() const {
  std::ostringstream os;
  os << " fleet=1 agents=" << agents << " zones=" << zones << " shards=" << initial_shards << " lease_ms=" << lease_ms
     << " check_ms=" << check_interval_ms << " place_ms=" << placement_min_interval_ms << "-" << placement_interval_ms
     << " max_moves=" << max_concurrent_moves << " join_delay_ms=" << join_delay_ms
     << " per_command=" << max_placements_per_command << " command_list_bytes=" << max_command_list_bytes
     << " id_pad=" << shard_id_pad << " request_timeout_ms=" << request_timeout_ms
     << " events_kept=" << events_kept << " heartbeat_ms=" << heartbeat_ms << " watch_poll_ms=" << watch_poll_ms << " min_call_ms=" << min_call_ms
     << " rate_spread=" << fixed3(agent_rate_spread) << " rate_at_bound=" << fixed3(rate_at_bound)
     << " agent_fsync_us=" << fsync_min_us << "-" << fsync_max_us << " stall=" << fixed3(fsync_stall)
     << " stall_max_ms=" << stall_max_ms << " pause_gap_ms=" << pause_gap_ms << " pause_max_ms=" << pause_max_ms
     << " agent_crash_gap_ms=" << crash_gap_ms << " agent_down_ms=" << down_max_ms << " leave_gap_ms=" << leave_gap_ms
     << " cut_gap_ms=" << cut_gap_ms << " cut_max_ms=" << cut_max_ms << " mute_gap_ms=" << mute_gap_ms << " isolate_gap_ms=" << isolate_gap_ms
     << " per_pass=" << max_assignments_per_pass << " failovers_per_pass=" << max_failovers_per_pass
     << " create_gap_ms=" << create_gap_ms
     << " delete_gap_ms=" << delete_gap_ms << " drain_gap_ms=" << drain_gap_ms << " move_gap_ms=" << move_gap_ms
     << " program=" << (program ? 1 : 0) << " program_drain_max_ms=" << program_drain_max_ms
     << " program_never=" << fixed3(program_never) << " drain_timeout_ms=" << drain_timeout_ms
     << " program_prepare_max_ms=" << program_prepare_max_ms << " prepare_timeout_ms=" << prepare_timeout_ms
     << " controller_prepare_timeout_ms=" << controller_prepare_timeout_ms
     << " clocks_at_bound=" << (clocks_at_bound ? 1 : 0);
  return os.str();
}

const std::vector<std::string>& fleet_bug_names() { return kBugs; }

bool is_fleet_bug(const std::string& name) { return std::find(kBugs.begin(), kBugs.end(), name) != kBugs.end(); }

}  // namespace tenure::sim
