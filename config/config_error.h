#pragma once
// Errors of config loading. Every message is one line that starts with
// `config <source>:` and names the offending key path, so a binary can print
// it verbatim and exit non-zero (CONTRACT.md, "Build and binaries").

#include "common/result.h"

namespace tenure::config {

/// Why a config was refused.
enum class ConfigErrorCode {
  kUnreadableFile,  ///< the file could not be opened or read
  kInvalidYaml,     ///< not parseable as one YAML document
  kUnknownKey,      ///< a key that is not part of the schema (or a duplicate key)
  kMissingKey,      ///< a required key is absent
  kWrongType,       ///< e.g. a string where an unsigned integer is expected
  kInvalidValue,    ///< right type, bad value (bad id, port out of range, ...)
};

/// A short stable name for a code (for logs and tests), e.g. "unknown_key".
const char* to_string(ConfigErrorCode code);

using ConfigError = Error<ConfigErrorCode>;

template <typename T>
using ConfigResult = Result<T, ConfigErrorCode>;

}  // namespace tenure::config
