// tenurectl: the operator's CLI. Only wiring here: flags, then one command.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <exception>
#include <string>
#include <sstream>

#include "cli/commands.h"

namespace {
const char* kUsage =
    "usage: tenurectl [--endpoints HOST:PORT,...] [-o table|json] [--token-file FILE] COMMAND [ARGS]\n"
    "\n"
    "Endpoints also come from TENURE_ENDPOINTS (default 127.0.0.1:7001).\n"
    "The bearer token: --token-file FILE or TENURE_TOKEN_FILE (the file's first line). --token T and\n"
    "TENURE_TOKEN also work, but a token on the command line is visible to every user in ps.\n"
    "TLS: --cacert FILE [--cert FILE --key FILE].\n"
    "\n"
    "commands:\n"
    "  cluster                          the group: leader, term, indexes, members (health and lag from the leader)\n"
    "  status                           one screen: leader, members, shards and workers by state, handoffs, warnings\n"
    "  members list | add ID ADDR | remove ID | transfer ID\n"
    "  shards list [--worker W] [--stale] [--limit N] | get ID | create ID... | create --count N [--prefix P]\n"
    "  shards delete ID | move ID --to W | history ID\n"
    "  workers list [--limit N] | drain W [--wait [--timeout S]] | undrain W | remove W\n"
    "  rebalance [--dry-run | --wait [--timeout S]] | rebalance status [--limit N]\n"
    "  (lists fetch every page, N rows a request: default 1000, at most 10000)\n"
    "  watch [--worker W] [--since R]   stream changes as JSON lines (Ctrl-C to stop)\n"
    "  completion bash                  the bash completion script\n"
    "\n"
    "--wait polls until done, with a progress bar on a terminal (plain lines otherwise).\n"
    "exit codes: 0 done; 1 the server refused (4xx/5xx) or no endpoint answered; 2 bad usage;\n"
    "3 --wait gave up at its --timeout (default 600 s).\n";
/// The token in `path`: its content without one trailing newline. Exits
/// with a one-line error when it cannot be read or is empty.
std::string read_token_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string token;
  if (!in || !std::getline(in, token)) {
    std::fprintf(stderr, "tenurectl: cannot read token file %s\n", path.c_str());
    std::exit(2);
  }
  if (!token.empty() && token.back() == '\r') token.pop_back();
  if (token.empty()) {
    std::fprintf(stderr, "tenurectl: token file %s is empty\n", path.c_str());
    std::exit(2);
  }
  return token;
}
}  // namespace

int main(int argc, char** argv) {
  tenure::cli::Options opt;
  if (const char* e = std::getenv("TENURE_ENDPOINTS")) opt.endpoints = e;
  if (const char* t = std::getenv("TENURE_TOKEN")) opt.token = t;
  if (const char* f = std::getenv("TENURE_TOKEN_FILE"); f && *f) opt.token = read_token_file(f);
  bool token_flag = false;
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char* flag) -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "tenurectl: %s needs a value (see --help)\n", flag);
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
        std::fprintf(stderr, "tenurectl: -o must be table or json\n");
        return 2;
      }
    } else if (a == "--token" || a == "--token-file") {
      if (token_flag) {
        std::fprintf(stderr, "tenurectl: give one of --token or --token-file\n");
        return 2;
      }
      token_flag = true;
      opt.token = a == "--token" ? value("--token") : read_token_file(value("--token-file"));
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
    std::fprintf(stderr, "tenurectl: missing COMMAND (see --help)\n");
    return 2;
  }
  std::string error;
  int rc = 0;
  try {
    rc = tenure::cli::run(opt, args, error);
  } catch (const std::exception& e) {
    // Nothing we call should throw; if something does, one line, not std::terminate.
    error = std::string("internal error: ") + e.what();
    rc = 1;
  }
  // A usage error is one line too (CONTRACT.md); --help prints the usage.
  if (rc == 2) std::fprintf(stderr, "tenurectl: %s (see --help)\n", error.c_str());
  else if (rc != 0) std::fprintf(stderr, "tenurectl: %s\n", error.c_str());
  return rc;
}
