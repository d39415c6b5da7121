#pragma once
// The datadriven file format of scripted tests (after cockroachdb/datadriven
// as etcd-io/raft uses it):
//
//   # prose and comments, kept as they are
//   command args...
//   ----
//   expected output, one or more lines
//   <blank line or end of file>
//
// Reading keeps every line so that rewrite mode can regenerate the expected
// blocks and leave everything else byte for byte.

#include <string>
#include <vector>

namespace tenure::testing::scripted {

struct ScriptItem {
  bool is_command = false;
  std::string text;                    ///< the prose line, or the command line
  int line = 0;                        ///< 1-based line of `text`
  bool has_separator = false;          ///< a `----` line followed the command
  std::vector<std::string> expected;   ///< the expected block (commands only)
};

struct ScriptFile {
  std::string path;
  std::vector<ScriptItem> items;
};

/// Reads `path`; throws ScriptError when it cannot be opened.
ScriptFile read_script(const std::string& path);

/// Renders the file with each command's expected block replaced by
/// `actual[k]` for the k-th command (a blank line is added between a block
/// and a following command if none was there).
std::string render_script(const ScriptFile& f, const std::vector<std::vector<std::string>>& actual);

/// A line diff of `expected` against `actual` (longest common subsequence):
/// lines prefixed "  " (same), "- " (expected only), "+ " (actual only).
std::vector<std::string> diff_lines(const std::vector<std::string>& expected,
                                    const std::vector<std::string>& actual);

}  // namespace tenure::testing::scripted
