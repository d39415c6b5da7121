// Fuzzes the YAML config loaders (config/controller_config.cc,
// config/agent_config.cc, config/yaml_reader.cc): any bytes, as the text of
// a controller or an agent config and as a file on disk. Whatever the bytes,
// each loader returns a config or a ConfigError, never throws, and
// (CONTRACT.md "Build and binaries") its message is one line that starts
// with `config <source>: ` and names where the problem is: a key path of the
// schema, a line of the YAML, or the document as a whole. An accepted config
// holds what the loaders promise (ids, ranges, tokens all or none).
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <string_view>

#include "config/agent_config.h"
#include "config/controller_config.h"

namespace {
using namespace tenure::config;

[[noreturn]] void fail(const std::string& why) {
  std::fprintf(stderr, "config_fuzz: %s\n", why.c_str());
  std::abort();
}

bool valid_id(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

/// Whether `rest` (the message after `config <source>: `) starts by naming
/// a place: a path from one of the schema's top-level keys (raft.x,
/// peers[2].id), an unknown or repeated key as written, "top level", a line
/// of the YAML, or the whole document.
bool names_a_place(std::string_view rest, std::initializer_list<std::string_view> top_keys) {
  for (std::string_view whole : {"invalid YAML at line ", "expected one YAML document", "top level: "}) {
    if (rest.starts_with(whole)) return true;
  }
  // An unknown or repeated key is named as it was written.
  for (std::string_view found : {"unknown key \"", "duplicate key \""}) {
    if (rest.starts_with(found)) return true;
  }
  if (rest.starts_with("missing required key \"")) rest = rest.substr(std::string_view("missing required key \"").size());
  for (std::string_view key : top_keys) {
    if (!rest.starts_with(key)) continue;
    char next = rest.size() > key.size() ? rest[key.size()] : '\0';
    if (next == ':' || next == '.' || next == '[' || next == '"') return true;
  }
  return false;
}

void check_error(const ConfigError& e, const std::string& source, std::initializer_list<std::string_view> keys) {
  const std::string& m = e.message;
  if (m.find_first_of("\r\n") != std::string::npos) fail("message is not one line: " + m);
  std::string prefix = "config " + source + ": ";
  if (!m.starts_with(prefix)) fail("message does not start with '" + prefix + "': " + m);
  if (!names_a_place(std::string_view(m).substr(prefix.size()), keys)) fail("message names no key or line: " + m);
}

constexpr std::initializer_list<std::string_view> kControllerKeys = {
    "node_id", "data_dir", "listen", "peers", "raft", "worker_lease_ms", "auth", "tls", "placement",
    "watch_events_kept", "limits"};
constexpr std::initializer_list<std::string_view> kAgentKeys = {
    "worker_id", "listen", "advertise", "controllers", "data_dir", "zone", "capacity", "heartbeat_interval_ms",
    "auth", "tls"};

void check_controller(const ConfigResult<ControllerConfig>& r, const std::string& source) {
  if (!r.ok()) return check_error(r.error(), source, kControllerKeys);
  const ControllerConfig& c = r.value();
  if (!valid_id(c.node_id) || c.data_dir.empty() || c.listen.port == 0) fail("accepted a bad node_id/data_dir/listen");
  for (const auto& p : c.peers) {
    if (!valid_id(p.id) || p.address.empty()) fail("accepted a bad peer");
  }
  if (c.raft.heartbeat_interval_ms == 0 || c.raft.heartbeat_interval_ms >= c.raft.election_timeout_ms) {
    fail("accepted heartbeat_interval_ms >= election_timeout_ms");
  }
  if (c.raft.snapshot_threshold_entries == 0 || c.worker_lease_ms == 0 || c.watch_events_kept < 16 ||
      c.placement.max_concurrent_moves == 0 || c.limits.max_watch_streams == 0 || c.limits.max_connections < 16) {
    fail("accepted a value below its minimum");
  }
  bool a = !c.auth.admin_token.empty(), g = !c.auth.agent_token.empty(), p = !c.auth.peer_token.empty();
  if (!(a == g && g == p) || (!c.auth.read_token.empty() && !a)) fail("accepted tokens that are not all or none");
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) fail("accepted cert_file without key_file");
}

void check_agent(const ConfigResult<AgentConfig>& r, const std::string& source) {
  if (!r.ok()) return check_error(r.error(), source, kAgentKeys);
  const AgentConfig& c = r.value();
  if (!valid_id(c.worker_id) || c.controllers.empty() || c.data_dir.empty() || c.advertise.empty()) {
    fail("accepted a bad worker_id/controllers/data_dir");
  }
  if (!std::isfinite(c.capacity) || c.capacity <= 0 || c.heartbeat_interval_ms == 0) {
    fail("accepted a bad capacity/heartbeat_interval_ms");
  }
  if (c.tls.cert_file.empty() != c.tls.key_file.empty()) fail("accepted cert_file without key_file");
}

std::string g_file;  // the config file the loaders read, in a directory of our own
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // A *_file key may name any path (only read): give standard input no
  // data, so that a config naming /dev/stdin cannot block.
  auto dir = std::filesystem::temp_directory_path() / ("tenure-config-fuzz-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  g_file = (dir / "config.yaml").string();
  static const std::filesystem::path kDir = dir;
  std::atexit([] {
    std::error_code ec;
    std::filesystem::remove_all(kDir, ec);
  });
  if (std::freopen("/dev/null", "r", stdin) == nullptr) fail("cannot reopen stdin");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  try {
    check_controller(parse_controller_config(text, "c.yaml"), "c.yaml");
    check_agent(parse_agent_config(text, "a.yaml"), "a.yaml");
    std::FILE* f = std::fopen(g_file.c_str(), "wb");
    if (f == nullptr || std::fwrite(text.data(), 1, text.size(), f) != text.size() || std::fclose(f) != 0) {
      fail("cannot write " + g_file);
    }
    check_controller(load_controller_config(g_file), g_file);
    check_agent(load_agent_config(g_file), g_file);
  } catch (const std::exception& e) {
    fail(std::string("exception escaped a loader: ") + e.what());
  } catch (...) {
    fail("a non-standard exception escaped a loader");
  }
  return 0;
}
