#pragma once
// tenurectl's commands: each maps to one REST call (or a watch stream).

#include <string>
#include <vector>

namespace tenure::cli {

struct Options {
  std::string endpoints = "127.0.0.1:7001";
  std::string output = "table";
  std::string token;
  std::string ca_file, cert_file, key_file;
};

/// Runs one command; returns the exit code (0 ok, 1 the server refused or
/// was unreachable, 2 bad usage), with `error` saying why.
int run(const Options& opt, const std::vector<std::string>& args, std::string& error);

}  // namespace tenure::cli
