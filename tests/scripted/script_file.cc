#include "tests/scripted/script_file.h"

#include <fstream>
#include <sstream>

#include "tests/scripted/command.h"

namespace tenure::testing::scripted {

namespace {

bool is_blank(const std::string& s) { return s.find_first_not_of(" \t\r") == std::string::npos; }
bool is_prose(const std::string& s) { return is_blank(s) || s[0] == '#'; }

}  // namespace

ScriptFile read_script(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ScriptError("cannot open " + path);
  std::vector<std::string> lines;
  for (std::string l; std::getline(in, l);) lines.push_back(l);

  ScriptFile f;
  f.path = path;
  size_t i = 0;
  while (i < lines.size()) {
    ScriptItem item;
    item.text = lines[i];
    item.line = static_cast<int>(i) + 1;
    ++i;
    if (is_prose(item.text)) {
      f.items.push_back(std::move(item));
      continue;
    }
    item.is_command = true;
    if (i < lines.size() && lines[i] == "----") {
      item.has_separator = true;
      ++i;
      while (i < lines.size() && !is_blank(lines[i])) item.expected.push_back(lines[i++]);
    }
    f.items.push_back(std::move(item));
  }
  return f;
}

std::string render_script(const ScriptFile& f, const std::vector<std::vector<std::string>>& actual) {
  std::ostringstream out;
  size_t k = 0;
  for (size_t i = 0; i < f.items.size(); ++i) {
    const ScriptItem& item = f.items[i];
    out << item.text << "\n";
    if (!item.is_command) continue;
    out << "----\n";
    const auto& block = k < actual.size() ? actual[k] : item.expected;
    ++k;
    for (const auto& l : block) out << l << "\n";
    bool next_is_blank = i + 1 < f.items.size() && !f.items[i + 1].is_command && is_blank(f.items[i + 1].text);
    if (i + 1 < f.items.size() && !next_is_blank) out << "\n";
  }
  return out.str();
}

std::vector<std::string> diff_lines(const std::vector<std::string>& a, const std::vector<std::string>& b) {
  // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
  size_t n = a.size(), m = b.size();
  std::vector<std::vector<size_t>> lcs(n + 1, std::vector<size_t>(m + 1, 0));
  for (size_t i = n; i-- > 0;) {
    for (size_t j = m; j-- > 0;) {
      lcs[i][j] = a[i] == b[j] ? lcs[i + 1][j + 1] + 1 : std::max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  std::vector<std::string> out;
  size_t i = 0, j = 0;
  while (i < n || j < m) {
    if (i < n && j < m && a[i] == b[j]) {
      out.push_back("  " + a[i++]);
      ++j;
    } else if (i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1])) {
      out.push_back("- " + a[i++]);
    } else {
      out.push_back("+ " + b[j++]);
    }
  }
  return out;
}

}  // namespace tenure::testing::scripted
