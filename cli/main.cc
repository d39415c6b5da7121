// tenurectl: the operator's CLI. Only wiring here: flags, then one command.
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "cli/commands.h"

namespace {
const char* kUsage =
    "usage: tenurectl [--endpoints HOST:PORT,...] [-o table|json] [--token T] COMMAND [ARGS]\n"
    "\n"
    "Endpoints also come from TENURE_ENDPOINTS (default 127.0.0.1:7001), the token from TENURE_TOKEN.\n"
    "TLS: --cacert FILE [--cert FILE --key FILE].\n"
    "\n"
    "commands:\n"
    "  cluster                          the group: leader, term, indexes, members\n"
    "  members list | add ID ADDR | remove ID | transfer ID\n"
    "  shards list [--worker W] [--stale] [--limit N] | get ID | create ID... | create --count N [--prefix P]\n"
    "  shards delete ID | move ID --to W | history ID\n"
    "  workers list [--limit N] | drain W | undrain W | remove W\n"
    "  rebalance [--dry-run] | rebalance status [--limit N]\n"
    "  (lists fetch every page, N rows a request: default 1000, at most 10000)\n"
    "  watch [--worker W] [--since R]   stream changes as JSON lines (Ctrl-C to stop)\n";
}  // namespace

int main(int argc, char** argv) {
  tenure::cli::Options opt;
  if (const char* e = std::getenv("TENURE_ENDPOINTS")) opt.endpoints = e;
  if (const char* t = std::getenv("TENURE_TOKEN")) opt.token = t;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "tenurectl: %s needs a value\n%s", flag, kUsage);
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--endpoints") {
      opt.endpoints = value("--endpoints");
    } else if (a == "-o" || a == "--output") {
      opt.output = value("-o");
      if (opt.output != "table" && opt.output != "json") {
        std::fprintf(stderr, "tenurectl: -o must be table or json\n%s", kUsage);
        return 2;
      }
    } else if (a == "--token") {
      opt.token = value("--token");
    } else if (a == "--cacert") {
      opt.ca_file = value("--cacert");
    } else if (a == "--cert") {
      opt.cert_file = value("--cert");
    } else if (a == "--key") {
      opt.key_file = value("--key");
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) {
    std::fprintf(stderr, "tenurectl: missing COMMAND\n%s", kUsage);
    return 2;
  }
  std::string error;
  int rc = tenure::cli::run(opt, args, error);
  if (rc == 2) std::fprintf(stderr, "tenurectl: %s\n%s", error.c_str(), kUsage);
  else if (rc != 0) std::fprintf(stderr, "tenurectl: %s\n", error.c_str());
  return rc;
}
