#include "tests/scripted/command.h"

#include <cctype>

namespace tenure::testing::scripted {

namespace {

// Splits a line into raw tokens at whitespace outside quotes and parentheses.
std::vector<std::string> split_raw(const std::string& line) {
  std::vector<std::string> out;
  std::string cur;
  bool in_quote = false;
  int depth = 0;
  bool have = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (in_quote) {
      cur += c;
      if (c == '\\' && i + 1 < line.size()) {
        cur += line[++i];
      } else if (c == '"') {
        in_quote = false;
      }
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(c)) && depth == 0) {
      if (have) out.push_back(cur);
      cur.clear();
      have = false;
      continue;
    }
    if (c == '"') in_quote = true;
    if (c == '(') ++depth;
    if (c == ')' && --depth < 0) throw ScriptError("unbalanced ')' in: " + line);
    if (!std::isspace(static_cast<unsigned char>(c))) cur += c;  // "(1, 2)" == "(1,2)"
    have = true;
  }
  if (in_quote) throw ScriptError("unterminated quote in: " + line);
  if (depth != 0) throw ScriptError("unbalanced '(' in: " + line);
  if (have) out.push_back(cur);
  return out;
}

std::string unquote(const std::string& s) {
  if (s.empty() || s[0] != '"') return s;
  std::string out;
  size_t i = 1;
  for (; i < s.size() && s[i] != '"'; ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    out += s[i];
  }
  if (i + 1 != s.size()) throw ScriptError("text after closing quote in: " + s);
  return out;
}

// Position of the first '=' outside quotes and parentheses, or npos.
size_t key_separator(const std::string& raw) {
  if (raw.empty() || raw[0] == '"' || raw[0] == '(') return std::string::npos;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '"' || raw[i] == '(') return std::string::npos;
    if (raw[i] == '=') return i;
  }
  return std::string::npos;
}

std::vector<std::string> parse_value(const std::string& raw) {
  std::vector<std::string> vals;
  if (raw.size() < 2 || raw.front() != '(' || raw.back() != ')') {
    vals.push_back(unquote(raw));
    return vals;
  }
  std::string inner = raw.substr(1, raw.size() - 2);
  std::string cur;
  bool in_quote = false;
  for (size_t i = 0; i < inner.size(); ++i) {
    char c = inner[i];
    if (c == '"') in_quote = !in_quote;
    if (c == '\\' && in_quote && i + 1 < inner.size()) {
      cur += c;
      cur += inner[++i];
      continue;
    }
    if (c == ',' && !in_quote) {
      vals.push_back(unquote(cur));
      cur.clear();
      continue;
    }
    cur += c;
  }
  if (!cur.empty()) vals.push_back(unquote(cur));
  return vals;
}

}  // namespace

uint64_t parse_uint(const std::string& s, const std::string& what) {
  if (s.empty() || s.size() > 18) throw ScriptError("bad " + what + ": '" + s + "'");
  uint64_t v = 0;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) throw ScriptError("bad " + what + ": '" + s + "'");
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

Command Command::parse(const std::string& line) {
  std::vector<std::string> raw = split_raw(line);
  if (raw.empty()) throw ScriptError("empty command");
  Command c;
  c.name_ = raw[0];
  for (size_t i = 1; i < raw.size(); ++i) {
    size_t eq = key_separator(raw[i]);
    if (eq == std::string::npos) {
      c.positional_.push_back(unquote(raw[i]));
      continue;
    }
    std::string key = raw[i].substr(0, eq);
    if (c.keyed_.count(key)) throw ScriptError("argument given twice: " + key);
    c.keyed_[key] = parse_value(raw[i].substr(eq + 1));
  }
  return c;
}

std::vector<int> Command::positional_ids() const {
  std::vector<int> ids;
  for (const auto& p : positional_) ids.push_back(static_cast<int>(parse_uint(p, "node id")));
  return ids;
}

int Command::single_id() const {
  if (positional_.size() != 1) throw ScriptError(name_ + " needs exactly one node id");
  return static_cast<int>(parse_uint(positional_[0], "node id"));
}

bool Command::has(const std::string& key) const {
  used_.insert(key);
  return keyed_.count(key) > 0;
}

std::string Command::get(const std::string& key, const std::string& fallback) const {
  used_.insert(key);
  auto it = keyed_.find(key);
  if (it == keyed_.end()) return fallback;
  if (it->second.size() != 1) throw ScriptError(key + "= takes one value");
  return it->second[0];
}

uint64_t Command::get_uint(const std::string& key, uint64_t fallback) const {
  if (!has(key)) return fallback;
  return parse_uint(get(key, ""), key);
}

bool Command::get_bool(const std::string& key, bool fallback) const {
  if (!has(key)) return fallback;
  std::string v = get(key, "");
  if (v == "true") return true;
  if (v == "false") return false;
  throw ScriptError(key + "= must be true or false, got '" + v + "'");
}

std::vector<std::string> Command::get_list(const std::string& key) const {
  used_.insert(key);
  auto it = keyed_.find(key);
  return it == keyed_.end() ? std::vector<std::string>() : it->second;
}

std::vector<int> Command::get_ids(const std::string& key) const {
  std::vector<int> ids;
  for (const auto& v : get_list(key)) ids.push_back(static_cast<int>(parse_uint(v, key + " node id")));
  return ids;
}

void Command::check_no_unused_keys() const {
  for (const auto& [key, vals] : keyed_) {
    if (!used_.count(key)) throw ScriptError("unknown argument " + key + "= for " + name_);
  }
}

}  // namespace tenure::testing::scripted
