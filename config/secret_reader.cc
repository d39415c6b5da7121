// Secrets in configs: a token given inline or read from a file at start.
// No message here ever contains the secret itself.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "config/yaml_reader.h"

namespace tenure::config::detail {

namespace {

constexpr size_t kMaxSecretBytes = 4096;

// A bearer token travels in an HTTP header: visible ASCII, no spaces
// (RFC 6750 §2.1 allows less; we accept any visible character).
bool valid_secret(const std::string& s) {
  if (s.empty() || s.size() > kMaxSecretBytes) return false;
  for (unsigned char c : s) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

std::optional<std::string> read_secret_file(YamlReader& r, const std::string& path, const std::string& file) {
  std::error_code ec;
  if (std::filesystem::is_directory(file, ec)) {
    r.fail(ConfigErrorCode::kInvalidValue, path, "cannot read \"" + file + "\": is a directory");
    return std::nullopt;
  }
  std::FILE* f = std::fopen(file.c_str(), "rb");
  if (f == nullptr) {
    r.fail(ConfigErrorCode::kInvalidValue, path, "cannot read \"" + file + "\": " + std::strerror(errno));
    return std::nullopt;
  }
  std::string text;
  char buf[1024];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() <= kMaxSecretBytes + 2) text.append(buf, n);
  bool error = std::ferror(f) != 0;
  std::fclose(f);
  if (error) {
    r.fail(ConfigErrorCode::kInvalidValue, path, "cannot read \"" + file + "\"");
    return std::nullopt;
  }
  // `echo secret > file` writes a newline after it: it is not part of the token.
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  return text;
}

}  // namespace

void read_secret(YamlReader& r, const YAML::Node& map, const std::string& path, const std::string& key,
                 std::string& out) {
  const std::string inline_path = join_path(path, key), file_path = join_path(path, key + "_file");
  const YAML::Node inline_node = map[key], file_node = map[key + "_file"];
  if (r.failed()) return;
  if (inline_node.IsDefined() && file_node.IsDefined()) {
    r.fail(ConfigErrorCode::kInvalidValue, inline_path, "give either " + inline_path + " or " + file_path + ", not both");
    return;
  }
  if (inline_node.IsDefined()) {
    r.read_nonempty(inline_node, inline_path, out);
    if (!r.failed() && !valid_secret(out)) {
      r.fail(ConfigErrorCode::kInvalidValue, inline_path, "must be 1 to 4096 visible ASCII characters, no spaces");
    }
    return;
  }
  if (!file_node.IsDefined()) return;
  std::string file;
  r.read_nonempty(file_node, file_path, file);
  if (r.failed()) return;
  auto text = read_secret_file(r, file_path, file);
  if (!text) return;
  if (!valid_secret(*text)) {
    r.fail(ConfigErrorCode::kInvalidValue, file_path,
           "\"" + file + "\" must hold 1 to 4096 visible ASCII characters, no spaces (one trailing newline is allowed)");
    return;
  }
  out = std::move(*text);
}

}  // namespace tenure::config::detail
