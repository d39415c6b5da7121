// scripted_tests FILE...: runs scripted interaction tests of the Raft core.
// Each command's output is compared with the expected block under it; with
// TENURE_REWRITE=1 in the environment (or --rewrite) the expected blocks are
// regenerated in place instead. Exit status 0 iff every file passed.
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include "tests/scripted/interaction_env.h"
#include "tests/scripted/script_file.h"

namespace tenure::testing::scripted {
namespace {

void report_mismatch(const ScriptFile& f, const ScriptItem& item, const std::vector<std::string>& actual) {
  std::cerr << f.path << ":" << item.line << ": output of `" << item.text << "` differs"
            << (item.has_separator ? "" : " (no ---- block)") << "; - expected, + actual:\n";
  for (const auto& l : diff_lines(item.expected, actual)) std::cerr << "  " << l << "\n";
}

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  return static_cast<bool>(out);
}

// Runs one file; returns whether it passed (or was rewritten).
bool run_file(const std::string& path, bool rewrite) {
  ScriptFile f;
  std::vector<std::vector<std::string>> outputs;
  int mismatches = 0;
  InteractionEnv env;
  const ScriptItem* current = nullptr;
  try {
    f = read_script(path);
    for (const auto& item : f.items) {
      if (!item.is_command) continue;
      current = &item;
      std::vector<std::string> actual = env.run(Command::parse(item.text));
      if (!rewrite && (!item.has_separator || actual != item.expected)) {
        report_mismatch(f, item, actual);
        ++mismatches;
      }
      outputs.push_back(std::move(actual));
    }
  } catch (const ScriptError& e) {
    std::cerr << path << ":" << (current ? current->line : 0) << ": script error: " << e.what() << "\n";
    return false;
  }
  if (rewrite) {
    std::ifstream in(path);
    std::stringstream old;
    old << in.rdbuf();
    std::string text = render_script(f, outputs);
    if (text == old.str()) return true;
    if (!write_file(path, text)) {
      std::cerr << path << ": cannot write\n";
      return false;
    }
    std::cerr << path << ": rewritten\n";
    return true;
  }
  if (mismatches > 0) {
    std::cerr << path << ": " << mismatches << " command(s) differ; rerun with TENURE_REWRITE=1 to accept "
              << "the new output, then read the diff by hand\n";
    return false;
  }
  return true;
}

}  // namespace
}  // namespace tenure::testing::scripted

int main(int argc, char** argv) {
  const char* env = std::getenv("TENURE_REWRITE");
  bool rewrite = env != nullptr && std::strcmp(env, "") != 0 && std::strcmp(env, "0") != 0;
  std::vector<std::string> files;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rewrite") == 0) {
      rewrite = true;
    } else {
      files.emplace_back(argv[i]);
    }
  }
  if (files.empty()) {
    std::cerr << "usage: scripted_tests [--rewrite] FILE...  (TENURE_REWRITE=1 also rewrites)\n";
    return 2;
  }
  bool ok = true;
  for (const auto& f : files) ok = tenure::testing::scripted::run_file(f, rewrite) && ok;
  return ok ? 0 : 1;
}
