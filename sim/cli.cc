#include "sim/cli.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <ostream>
#include <sstream>

#include "consensus/raft_config.h"
#include "sim/simulator.h"

namespace tenure::sim {

namespace {

bool parse_u64(const std::string& s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  out = v;
  return true;
}

bool known_bug(const std::string& name) {
  for (const auto& b : consensus::planted_bug_names()) {
    if (b == name) return true;
  }
  return is_fleet_bug(name);
}

// Applies one flag; returns an error reason, empty when fine.
std::string apply_flag(CliOptions& c, const std::string& flag, const std::string& value, bool& seed_given) {
  uint64_t v = 0;
  if (flag == "--seed") {
    if (seed_given) return "--seed and --seeds given together or twice";
    if (!parse_u64(value, v)) return "--seed needs a non-negative integer, got '" + value + "'";
    c.first_seed = c.last_seed = v;
    seed_given = true;
  } else if (flag == "--seeds") {
    if (seed_given) return "--seed and --seeds given together or twice";
    size_t dash = value.find('-');
    uint64_t a = 0, b = 0;
    if (dash == std::string::npos || !parse_u64(value.substr(0, dash), a) || !parse_u64(value.substr(dash + 1), b) ||
        b < a) {
      return "--seeds needs a range A-B with A <= B, got '" + value + "'";
    }
    c.first_seed = a;
    c.last_seed = b;
    seed_given = true;
  } else if (flag == "--nodes") {
    if (!parse_u64(value, v) || v < 3 || v > 7) return "--nodes must be between 3 and 7, got '" + value + "'";
    c.overrides.nodes = static_cast<int>(v);
  } else if (flag == "--ticks") {
    if (!parse_u64(value, v) || v < 10 || v > 100'000'000) return "--ticks must be between 10 and 100000000, got '" + value + "'";
    c.overrides.ticks = static_cast<int64_t>(v);
  } else if (flag == "--bug") {
    if (value == "list") {
      c.list_bugs = true;
    } else if (!known_bug(value)) {
      return "unknown planted bug '" + value + "' (see --bug list)";
    }
    c.overrides.bug = value == "list" ? "" : value;
  } else if (flag == "--probe-leader") {
    if (value != "0" && value != "1") return "--probe-leader must be 0 or 1, got '" + value + "'";
    c.overrides.probe_leader = value == "1";
  } else if (flag == "--max-violations") {
    if (!parse_u64(value, v)) return "--max-violations needs a non-negative integer, got '" + value + "'";
    c.max_violations = v;
  } else {
    return "unknown flag '" + flag + "'";
  }
  return "";
}

// What the SIGABRT handler prints when the core aborts on a broken invariant.
char g_abort_seed[32];
char g_abort_replay[256];
uint64_t g_abort_seeds_done = 0;
uint64_t g_abort_violations = 0;

void put(const char* s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    ssize_t w = ::write(STDOUT_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= static_cast<size_t>(w);
  }
}

void put_u64(uint64_t v) {
  char buf[24];
  int i = 23;
  buf[i] = '\0';
  do {
    buf[--i] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v > 0 && i > 0);
  put(buf + i);
}

extern "C" void on_abort(int) {
  // Only async-signal-safe calls from here on.
  put("\nVIOLATION checker=core-abort seed=");
  put(g_abort_seed);
  put(" detail=\"the core aborted on a broken invariant (see the FATAL line on stderr)\"\nreplay: ");
  put(g_abort_replay);
  put(" --verbose\nseeds=");
  put_u64(g_abort_seeds_done + 1);
  put(" violations=");
  put_u64(g_abort_violations + 1);
  put("\n");
  ::_exit(1);
}

void set_abort_context(const RunOptions& o, uint64_t seeds_done, uint64_t violations) {
  std::snprintf(g_abort_seed, sizeof g_abort_seed, "%llu", static_cast<unsigned long long>(o.seed));
  std::snprintf(g_abort_replay, sizeof g_abort_replay, "%s", o.replay().c_str());
  g_abort_seeds_done = seeds_done;
  g_abort_violations = violations;
}

}  // namespace

std::string usage() {
  std::ostringstream os;
  os << "usage: tenure-sim [--seed S | --seeds A-B] [--nodes N] [--ticks T] [--bug NAME] [--verbose]\n"
     << "                  [--max-violations K] [--fleet] [--probe-leader 0|1]\n"
     << "Runs the Raft core and a key-value state machine under seeded faults and checks\n"
     << "every safety property after every step, then a liveness phase.\n"
     << "With --fleet, every member also runs the controller's state machine and, while it\n"
     << "leads, the real leader policy; simulated agents (3-8, drawn) register, heartbeat,\n"
     << "watch and release, with clock drift within the lease's bound, pauses past the\n"
     << "lease, kills and graceful leaves, and an operator creates, deletes, drains and\n"
     << "moves shards. The fleet checkers (one writer per shard at any instant, epochs\n"
     << "never go down, one worker per (shard, epoch), every shard served after healing)\n"
     << "run beside the Raft ones (docs/simulator.md, \"Fleet mode\").\n"
     << "  --seed S            run one seed (default: 1)\n"
     << "  --seeds A-B         run seeds A to B inclusive\n"
     << "  --nodes N           initial voters, 3..7 (default: drawn per seed, 3 or 5)\n"
     << "  --ticks T           length of the faulty safety phase in ticks (default: 2000)\n"
     << "  --bug NAME          switch on a planted protocol bug; --bug list names them\n"
     << "  --verbose           trace every event of every seed (use with --seed)\n"
     << "  --max-violations K  stop after K failing seeds\n"
     << "  --fleet             fleet mode (above); the Raft options of a seed stay the same\n"
     << "                      and the fleet's are drawn on top; fleet-* bugs need it\n"
     << "  --probe-leader 0|1  followers dial a silent leader and campaign early when its\n"
     << "                      process is down, as the controller does (default: 1); 0 for\n"
     << "                      an A/B of the failover time (stats: crash_failover_ms)\n"
     << "Prints each seed's options first, a VIOLATION line and its replay command when a\n"
     << "checker fires, and last 'seeds=K violations=V'. Exits 1 when V > 0.\n";
  return os.str();
}

std::optional<CliOptions> parse_cli(int argc, const char* const* argv, std::string& error) {
  CliOptions c;
  bool seed_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      c.help = true;
      continue;
    }
    if (arg == "--verbose" || arg == "-v") {
      c.verbose = true;
      continue;
    }
    if (arg == "--fleet") {
      c.overrides.fleet = true;
      continue;
    }
    std::string flag = arg, value;
    size_t eq = arg.find('=');
    if (arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      flag = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    } else if (arg.rfind("--", 0) == 0) {
      if (i + 1 >= argc) {
        error = flag + " needs a value";
        return std::nullopt;
      }
      value = argv[++i];
    } else {
      error = "unexpected argument '" + arg + "'";
      return std::nullopt;
    }
    error = apply_flag(c, flag, value, seed_given);
    if (!error.empty()) return std::nullopt;
  }
  if (is_fleet_bug(c.overrides.bug) && !c.overrides.fleet) {
    error = "planted bug '" + c.overrides.bug + "' needs --fleet";
    return std::nullopt;
  }
  return c;
}

int run_cli(int argc, const char* const* argv, std::ostream& out, std::ostream& err) {
  std::string error;
  auto parsed = parse_cli(argc, argv, error);
  if (!parsed) {
    err << "tenure-sim: " << error << " (see --help)\n";  // one line (CONTRACT.md)
    return 2;
  }
  const CliOptions& c = *parsed;
  if (c.help) {
    out << usage();
    return 0;
  }
  if (c.list_bugs) {
    for (const auto& b : consensus::planted_bug_names()) out << b << "\n";
    for (const auto& b : fleet_bug_names()) out << b << "\n";
    return 0;
  }
  uint64_t seeds = 0, violations = 0;
  SimStats total;
  int64_t worst_liveness = 0;
  for (uint64_t seed = c.first_seed;; ++seed) {
    RunOptions o = draw_options(seed, c.overrides);
    out << o.describe() << std::endl;  // flushed: it must precede anything an abort prints
    set_abort_context(o, seeds, violations);
    Simulator sim(o, c.verbose ? &out : nullptr);
    SimResult r = sim.run();
    ++seeds;
    const SimStats& s = r.stats;
    total.events += s.events;
    total.messages += s.messages;
    total.committed += s.committed;
    total.writes_acked += s.writes_acked;
    total.reads_ok += s.reads_ok;
    total.crashes += s.crashes;
    total.partitions += s.partitions;
    total.snapshots_installed += s.snapshots_installed;
    total.read_back += s.read_back;
    total.lease_reads += s.lease_reads;
    total.pauses += s.pauses;
    total.snapshots_unreadable += s.snapshots_unreadable;
    total.conf_changes += s.conf_changes;
    total.probes += s.probes;
    total.crash_failovers += s.crash_failovers;
    total.crash_failover_us += s.crash_failover_us;
    total.probes_refused += s.probes_refused;
    total.leaders += s.leaders;
    total.old_term_commits += s.old_term_commits;
    worst_liveness = std::max(worst_liveness, s.liveness_ticks);
    add(total.fleet, s.fleet);
    if (c.verbose) {
      out << "result seed=" << seed << " events=" << s.events << " messages=" << s.messages
          << " committed=" << s.committed << " acked=" << s.writes_acked << " reads=" << s.reads_ok
          << " crashes=" << s.crashes << " torn=" << s.torn_crashes << " partitions=" << s.partitions
          << " leaders=" << s.leaders << " snapshots=" << s.snapshots_installed << " read_back=" << s.read_back << " conf_changes=" << s.conf_changes
          << " probes=" << s.probes << " probes_refused=" << s.probes_refused << " old_term_commits=" << s.old_term_commits << " liveness_ticks=" << s.liveness_ticks << " end_ticks=" << s.end_ticks << "\n";
      if (o.fleet) out << "fleet: " << describe(s.fleet) << "\n";
    }
    if (r.violation) {
      ++violations;
      out << "VIOLATION " << r.violation->describe() << " seed=" << seed << "\n"
          << "replay: " << o.replay() << " --verbose\n";
    }
    if (seed == c.last_seed || (c.max_violations > 0 && violations >= c.max_violations)) break;
  }
  out << "stats: events=" << total.events << " messages=" << total.messages << " committed=" << total.committed
      << " acked_writes=" << total.writes_acked << " reads=" << total.reads_ok << " crashes=" << total.crashes
      << " partitions=" << total.partitions << " snapshots=" << total.snapshots_installed
      << " read_back=" << total.read_back << " snapshots_unreadable=" << total.snapshots_unreadable
      << " conf_changes=" << total.conf_changes << " lease_reads=" << total.lease_reads
      << " pauses=" << total.pauses << " probes=" << total.probes
      << " probes_refused=" << total.probes_refused << " crash_failovers=" << total.crash_failovers
      << " crash_failover_ms="
      << (total.crash_failovers ? total.crash_failover_us / 1000 / static_cast<int64_t>(total.crash_failovers) : 0)
      << " leaders=" << total.leaders << " old_term_commits=" << total.old_term_commits
      << " worst_liveness_ticks=" << worst_liveness << "\n";
  if (c.overrides.fleet) out << "fleet: " << describe(total.fleet) << "\n";
  out << "seeds=" << seeds << " violations=" << violations << std::endl;
  return violations > 0 ? 1 : 0;
}

void install_abort_reporter() {
  std::strcpy(g_abort_seed, "?");
  std::strcpy(g_abort_replay, "tenure-sim");
  std::signal(SIGABRT, on_abort);
}

}  // namespace tenure::sim
