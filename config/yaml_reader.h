#pragma once
// Strict reading of a YAML tree into config structs (internal to config/).
// yaml-cpp throws; nothing here lets an exception out. The reader keeps the
// first error it meets ("sticky"): once failed(), every read is a no-op, so
// a loader reads all its fields in a row and checks failed() once per block.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config_error.h"
#include "config/host_port.h"
#include "config/tls_config.h"

namespace tenure::config::detail {

/// `path.key`, or `key` at the top level.
std::string join_path(const std::string& path, std::string_view key);
/// `path[i]`.
std::string index_path(const std::string& path, size_t i);
/// Whether `s` matches [A-Za-z0-9._-]{1,max_len}.
bool valid_id(std::string_view s, size_t max_len = 64);

class YamlReader {
 public:
  /// `source` names the config in every message (a path, or "<inline>").
  explicit YamlReader(std::string source) : source_(std::move(source)) {}

  const std::string& source() const { return source_; }
  bool failed() const { return error_.has_value(); }
  /// The first error recorded. Requires failed().
  const ConfigError& error() const { return *error_; }

  /// Records an error `config <source>: <path>: <what>` unless one is recorded.
  void fail(ConfigErrorCode code, const std::string& path, const std::string& what);
  void fail_missing(const std::string& path);

  /// Parses `text` as exactly one YAML document; a blank document is a null node.
  YAML::Node parse(const std::string& text);

  /// Checks that `node` is a map (null counts as an empty one) whose keys
  /// are all in `allowed`, none repeated. Returns false on error.
  bool check_map(const YAML::Node& node, const std::string& path, std::initializer_list<std::string_view> allowed);
  /// Checks that `node` is a list (null counts as an empty one).
  bool check_list(const YAML::Node& node, const std::string& path);

  /// Field readers: `node` is map[key] (undefined when absent), `path` its
  /// key path. An absent optional field leaves `out` untouched; `required`
  /// turns absence into a kMissingKey error.
  void read_string(const YAML::Node& node, const std::string& path, std::string& out, bool required = false);
  /// A string matching [A-Za-z0-9._-]{1,64}.
  void read_id(const YAML::Node& node, const std::string& path, std::string& out, bool required = false);
  /// A non-empty string.
  void read_nonempty(const YAML::Node& node, const std::string& path, std::string& out, bool required = false);
  /// A non-empty path to a regular file this process can read.
  void read_readable_file(const YAML::Node& node, const std::string& path, std::string& out);
  void read_host_port(const YAML::Node& node, const std::string& path, HostPort& out, bool required = false);
  /// A plain (unquoted) decimal integer in [min, max].
  void read_uint(const YAML::Node& node, const std::string& path, uint64_t& out, uint64_t min, uint64_t max);
  void read_u32(const YAML::Node& node, const std::string& path, uint32_t& out, uint32_t min = 0);
  void read_u64(const YAML::Node& node, const std::string& path, uint64_t& out, uint64_t min = 0);
  /// A plain (unquoted) true or false.
  void read_bool(const YAML::Node& node, const std::string& path, bool& out);
  /// A plain finite number > 0.
  void read_positive_double(const YAML::Node& node, const std::string& path, double& out);

 private:
  /// Common entry of the readers: false when already failed or absent
  /// (recording kMissingKey if required), or when not a scalar (recording
  /// kWrongType with `expected`).
  bool scalar_present(const YAML::Node& node, const std::string& path, bool required, const char* expected);

  std::string source_;
  std::optional<ConfigError> error_;
};

/// Reads a `tls:` block at `path`: cert_file and key_file both or neither,
/// every file readable; `ca_needs_cert` also refuses a ca_file alone.
void read_tls(YamlReader& r, const YAML::Node& node, const std::string& path, TlsConfig& out, bool ca_needs_cert);

/// Reads a secret of the map `map` at `path`, given inline as `key` or as
/// `key`_file (a path read now; one trailing newline is not part of it),
/// never both. `out` stays empty when neither is given. No message shows the
/// secret.
void read_secret(YamlReader& r, const YAML::Node& map, const std::string& path, const std::string& key,
                 std::string& out);

/// How a node is shown in messages: `"fast"` (escaped, shortened), `null`,
/// `a map`, `a list`.
std::string describe(const YAML::Node& node);

/// Reads a whole file (bounded to 1 MiB). Records kUnreadableFile on failure.
std::optional<std::string> read_config_file(const std::string& path, YamlReader& reader);

}  // namespace tenure::config::detail
