#pragma once
// One command line of a scripted interaction test, e.g.
//   add-nodes 3 voters=(1,2,3) prevote=false
//   propose 1 "hello world"
//   partition 1 | 2 3
// Positional words, `key=value` and `key=(a,b,c)` arguments, and double
// quoted strings (with \" and \\ escapes) anywhere a word is expected.

#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace tenure::testing::scripted {

/// A mistake in a script (unknown command, bad argument). The runner stops
/// the file and reports it with the file and line: a broken script is not a
/// Raft outcome to record, so it is not a value in the expected output.
class ScriptError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A parsed command line. Accessors record which `key=` arguments were
/// read, so that check_no_unused_keys() can reject the others.
class Command {
 public:
  /// Parses one line; throws ScriptError on unbalanced quotes or parentheses.
  static Command parse(const std::string& line);

  /// The first word: the command name.
  const std::string& name() const { return name_; }
  /// Words that are not `key=value`, in order, unquoted.
  const std::vector<std::string>& positional() const { return positional_; }
  /// The positional arguments parsed as node ids (all must be integers).
  std::vector<int> positional_ids() const;
  /// The one positional node id the command requires.
  int single_id() const;

  /// Whether `key=` was given.
  bool has(const std::string& key) const;
  /// The single value of `key=`, or `fallback`; throws if it is a list.
  std::string get(const std::string& key, const std::string& fallback) const;
  /// `key=N` as an unsigned integer, or `fallback`.
  uint64_t get_uint(const std::string& key, uint64_t fallback) const;
  /// `key=true|false`, or `fallback`.
  bool get_bool(const std::string& key, bool fallback) const;
  /// `key=(a,b)` or `key=a` as a list of words; empty when absent.
  std::vector<std::string> get_list(const std::string& key) const;
  /// `key=(1,2,3)` or `key=1` as a list of node ids; empty when absent.
  std::vector<int> get_ids(const std::string& key) const;

  /// Throws ScriptError naming any `key=` argument no accessor asked for,
  /// so a typo (`voter=(1,2)`) fails loudly instead of being ignored.
  void check_no_unused_keys() const;

 private:
  std::string name_;
  std::vector<std::string> positional_;
  std::map<std::string, std::vector<std::string>> keyed_;
  mutable std::set<std::string> used_;
};

/// Parses a decimal integer node id or unsigned count; throws ScriptError.
uint64_t parse_uint(const std::string& s, const std::string& what);

}  // namespace tenure::testing::scripted
