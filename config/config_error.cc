#include "config/config_error.h"

namespace tenure::config {

const char* to_string(ConfigErrorCode code) {
  switch (code) {
    case ConfigErrorCode::kUnreadableFile: return "unreadable_file";
    case ConfigErrorCode::kInvalidYaml: return "invalid_yaml";
    case ConfigErrorCode::kUnknownKey: return "unknown_key";
    case ConfigErrorCode::kMissingKey: return "missing_key";
    case ConfigErrorCode::kWrongType: return "wrong_type";
    case ConfigErrorCode::kInvalidValue: return "invalid_value";
  }
  return "unknown";
}

}  // namespace tenure::config
