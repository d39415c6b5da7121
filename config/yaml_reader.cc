#include "config/yaml_reader.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

namespace tenure::config::detail {

namespace {

constexpr size_t kMaxConfigBytes = 1 << 20;
constexpr size_t kMaxShownChars = 60;

// yaml-cpp marks plain (unquoted, untagged) scalars with the tag "?". Only
// those may be numbers: `"100"` is a string in YAML and we say so.
bool is_plain(const YAML::Node& node) { return node.Tag() == "?"; }

std::string quote(std::string_view s) {
  std::string out = "\"";
  size_t shown = 0;
  for (char c : s) {
    if (++shown > kMaxShownChars) {
      out += "...";
      break;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;  // keeps every message on one line
    } else {
      out += c;
    }
  }
  return out + "\"";
}

/// `s` with control characters written as \xNN, so that a message stays on
/// one line whatever it repeats: yaml-cpp's messages show the offending
/// character as it is (a newline, a NUL), file names may hold any byte.
std::string one_line(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", static_cast<unsigned char>(c));
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

const char* kind(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Map: return "a map";
    case YAML::NodeType::Sequence: return "a list";
    case YAML::NodeType::Null: return "null";
    default: return "a scalar";
  }
}

/// Where each document of a stream starts; nothing else of it is kept.
class DocumentStarts final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override {
    previous_ = last_;
    last_ = mark;
  }
  /// Whether the last document started where the one before it did: the
  /// parser consumed nothing in between and would go on so forever.
  bool stuck() const { return previous_.pos == last_.pos; }
  const YAML::Mark& last() const { return last_; }

  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

 private:
  YAML::Mark previous_ = YAML::Mark::null_mark();
  YAML::Mark last_ = YAML::Mark::null_mark();
};

}  // namespace

std::string join_path(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : path + "." + std::string(key);
}

std::string index_path(const std::string& path, size_t i) { return path + "[" + std::to_string(i) + "]"; }

bool valid_id(std::string_view s, size_t max_len) {
  if (s.empty() || s.size() > max_len) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string describe(const YAML::Node& node) {
  if (!node.IsScalar()) return kind(node);
  std::string q = quote(node.Scalar());
  return is_plain(node) ? q : "the quoted string " + q;
}

void YamlReader::fail(ConfigErrorCode code, const std::string& path, const std::string& what) {
  if (error_) return;
  std::string msg = "config " + source_ + ": ";
  if (!path.empty()) msg += one_line(path) + ": ";
  error_ = ConfigError{code, msg + one_line(what)};
}

void YamlReader::fail_missing(const std::string& path) {
  if (error_) return;
  error_ = ConfigError{ConfigErrorCode::kMissingKey, "config " + source_ + ": missing required key " + quote(path)};
}

YAML::Node YamlReader::parse(const std::string& text) {
  try {
    // Documents are counted by our own loop, not YAML::LoadAll: yaml-cpp
    // 0.7's parser makes no progress on a stray ',' (a config holding just
    // ",") and LoadAll then adds empty documents forever, growing until the
    // process is killed (yaml-cpp issue 1040, found by the config fuzz target).
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts starts;
    size_t docs = 0;
    while (parser.HandleNextDocument(starts)) {
      if (++docs > 1 && starts.stuck()) {
        const YAML::Mark& at = starts.last();
        fail(ConfigErrorCode::kInvalidYaml, "",
             "invalid YAML at line " + std::to_string(at.line + 1) + ", column " + std::to_string(at.column + 1) +
                 ": unexpected character");
        return YAML::Node();
      }
    }
    if (docs == 0) return YAML::Node(YAML::NodeType::Null);
    if (docs > 1) {
      fail(ConfigErrorCode::kInvalidYaml, "", "expected one YAML document, got " + std::to_string(docs));
      return YAML::Node();
    }
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    std::string where = e.mark.is_null() ? "" : " at line " + std::to_string(e.mark.line + 1) + ", column " +
                                                    std::to_string(e.mark.column + 1);
    fail(ConfigErrorCode::kInvalidYaml, "", "invalid YAML" + where + ": " + e.msg);
  } catch (const std::exception& e) {
    fail(ConfigErrorCode::kInvalidYaml, "", std::string("invalid YAML: ") + e.what());
  }
  return YAML::Node();
}

bool YamlReader::check_map(const YAML::Node& node, const std::string& path,
                           std::initializer_list<std::string_view> allowed) {
  if (failed()) return false;
  if (node.IsNull()) return true;
  const std::string where = path.empty() ? "top level" : path;
  if (!node.IsMap()) {
    fail(ConfigErrorCode::kWrongType, where, std::string("expected a map, got ") + describe(node));
    return false;
  }
  std::vector<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      fail(ConfigErrorCode::kWrongType, where, std::string("keys must be strings, got ") + kind(it->first));
      return false;
    }
    const std::string& key = it->first.Scalar();
    bool known = false;
    for (std::string_view a : allowed) known = known || a == key;
    if (!known) {
      error_ = ConfigError{ConfigErrorCode::kUnknownKey,
                           "config " + source_ + ": unknown key " + quote(join_path(path, key))};
      return false;
    }
    for (const auto& s : seen) {
      if (s == key) {
        error_ = ConfigError{ConfigErrorCode::kUnknownKey,
                             "config " + source_ + ": duplicate key " + quote(join_path(path, key))};
        return false;
      }
    }
    seen.push_back(key);
  }
  return true;
}

bool YamlReader::check_list(const YAML::Node& node, const std::string& path) {
  if (failed()) return false;
  if (node.IsNull() || node.IsSequence()) return true;
  fail(ConfigErrorCode::kWrongType, path, std::string("expected a list, got ") + describe(node));
  return false;
}

bool YamlReader::scalar_present(const YAML::Node& node, const std::string& path, bool required,
                                const char* expected) {
  if (failed()) return false;
  if (!node.IsDefined()) {
    if (required) fail_missing(path);
    return false;
  }
  if (!node.IsScalar()) {
    fail(ConfigErrorCode::kWrongType, path, std::string("expected ") + expected + ", got " + describe(node));
    return false;
  }
  return true;
}

void YamlReader::read_string(const YAML::Node& node, const std::string& path, std::string& out, bool required) {
  if (scalar_present(node, path, required, "a string")) out = node.Scalar();
}

void YamlReader::read_id(const YAML::Node& node, const std::string& path, std::string& out, bool required) {
  if (!scalar_present(node, path, required, "a string")) return;
  if (!valid_id(node.Scalar())) {
    fail(ConfigErrorCode::kInvalidValue, path, "must match [A-Za-z0-9._-]{1,64}, got " + describe(node));
    return;
  }
  out = node.Scalar();
}

void YamlReader::read_nonempty(const YAML::Node& node, const std::string& path, std::string& out, bool required) {
  if (!scalar_present(node, path, required, "a string")) return;
  if (node.Scalar().empty()) {
    fail(ConfigErrorCode::kInvalidValue, path, "must not be empty");
    return;
  }
  out = node.Scalar();
}

void YamlReader::read_readable_file(const YAML::Node& node, const std::string& path, std::string& out) {
  std::string file;
  read_nonempty(node, path, file);
  if (failed() || file.empty()) return;
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    fail(ConfigErrorCode::kInvalidValue, path, "cannot read " + quote(file) + ": is a directory");
    return;
  }
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (f == nullptr) {
    fail(ConfigErrorCode::kInvalidValue, path, "cannot read " + quote(file) + ": " + std::strerror(errno));
    return;
  }
  std::fclose(f);
  out = file;
}

void YamlReader::read_host_port(const YAML::Node& node, const std::string& path, HostPort& out, bool required) {
  if (!scalar_present(node, path, required, "host:port")) return;
  auto hp = parse_host_port(node.Scalar());
  if (!hp.ok()) {
    fail(ConfigErrorCode::kInvalidValue, path, hp.error().message + ", got " + describe(node));
    return;
  }
  out = hp.value();
}

void YamlReader::read_uint(const YAML::Node& node, const std::string& path, uint64_t& out, uint64_t min,
                           uint64_t max) {
  if (!scalar_present(node, path, false, "an unsigned integer")) return;
  const std::string& s = node.Scalar();
  bool digits = is_plain(node) && !s.empty() && s.size() <= 20;
  for (char c : s) digits = digits && c >= '0' && c <= '9';
  if (!digits) {
    fail(ConfigErrorCode::kWrongType, path, "expected an unsigned integer, got " + describe(node));
    return;
  }
  errno = 0;
  unsigned long long v = std::strtoull(s.c_str(), nullptr, 10);
  if (errno == ERANGE || v < min || v > max) {
    fail(ConfigErrorCode::kInvalidValue, path,
         "must be in " + std::to_string(min) + ".." + std::to_string(max) + ", got " + s);
    return;
  }
  out = v;
}

void YamlReader::read_u32(const YAML::Node& node, const std::string& path, uint32_t& out, uint32_t min) {
  uint64_t v = out;
  read_uint(node, path, v, min, UINT32_MAX);
  out = static_cast<uint32_t>(v);
}

void YamlReader::read_u64(const YAML::Node& node, const std::string& path, uint64_t& out, uint64_t min) {
  read_uint(node, path, out, min, UINT64_MAX);
}

void YamlReader::read_bool(const YAML::Node& node, const std::string& path, bool& out) {
  if (!scalar_present(node, path, false, "true or false")) return;
  const std::string& s = node.Scalar();
  if (!is_plain(node) || (s != "true" && s != "false")) {
    fail(ConfigErrorCode::kWrongType, path, "expected true or false, got " + describe(node));
    return;
  }
  out = s == "true";
}

void YamlReader::read_positive_double(const YAML::Node& node, const std::string& path, double& out) {
  if (!scalar_present(node, path, false, "a number")) return;
  const std::string& s = node.Scalar();
  char* end = nullptr;
  double v = is_plain(node) && !s.empty() ? std::strtod(s.c_str(), &end) : 0.0;
  // strtod also takes "inf", "nan" and hex floats; only plain decimals pass.
  bool decimal = end != nullptr && *end == '\0' && s.find_first_not_of("0123456789.eE+-") == std::string::npos;
  if (!decimal) {
    fail(ConfigErrorCode::kWrongType, path, "expected a number, got " + describe(node));
    return;
  }
  if (!std::isfinite(v) || v <= 0) {
    fail(ConfigErrorCode::kInvalidValue, path, "must be a number > 0, got " + s);
    return;
  }
  out = v;
}

std::optional<std::string> read_config_file(const std::string& path, YamlReader& reader) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    reader.fail(ConfigErrorCode::kUnreadableFile, "", "cannot read file: is a directory");
    return std::nullopt;
  }
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    reader.fail(ConfigErrorCode::kUnreadableFile, "", std::string("cannot read file: ") + std::strerror(errno));
    return std::nullopt;
  }
  std::string text;
  char buf[8192];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() <= kMaxConfigBytes) text.append(buf, n);
  bool error = std::ferror(f) != 0;
  int err = errno;
  std::fclose(f);
  if (error) {
    reader.fail(ConfigErrorCode::kUnreadableFile, "", std::string("cannot read file: ") + std::strerror(err));
    return std::nullopt;
  }
  if (text.size() > kMaxConfigBytes) {
    reader.fail(ConfigErrorCode::kUnreadableFile, "", "file larger than 1 MiB");
    return std::nullopt;
  }
  return text;
}

}  // namespace tenure::config::detail

namespace tenure::config::detail {

void read_tls(YamlReader& r, const YAML::Node& node, const std::string& path, TlsConfig& out, bool ca_needs_cert) {
  if (!node.IsDefined() || !r.check_map(node, path, {"cert_file", "key_file", "ca_file"}) || node.IsNull()) return;
  r.read_readable_file(node["cert_file"], join_path(path, "cert_file"), out.cert_file);
  r.read_readable_file(node["key_file"], join_path(path, "key_file"), out.key_file);
  r.read_readable_file(node["ca_file"], join_path(path, "ca_file"), out.ca_file);
  if (r.failed()) return;
  if (out.cert_file.empty() != out.key_file.empty()) {
    const char* missing = out.cert_file.empty() ? "cert_file" : "key_file";
    r.fail(ConfigErrorCode::kMissingKey, path,
           std::string("cert_file and key_file go together: missing required key \"") + join_path(path, missing) +
               "\"");
    return;
  }
  if (ca_needs_cert && !out.ca_file.empty() && out.cert_file.empty()) {
    r.fail(ConfigErrorCode::kMissingKey, join_path(path, "ca_file"),
           "requires " + join_path(path, "cert_file") + " and " + join_path(path, "key_file"));
  }
}

}  // namespace tenure::config::detail
