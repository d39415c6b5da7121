#include "sim/state_machine.h"

#include <sstream>

namespace tenure::sim {

std::string KvRegister::encode_put(const std::string& key, const std::string& value) {
  return "put " + key + " " + value;
}

std::optional<std::pair<std::string, std::string>> KvRegister::decode_put(const std::string& data) {
  if (data.rfind("put ", 0) != 0) return std::nullopt;
  size_t sp = data.find(' ', 4);
  if (sp == std::string::npos || sp == 4) return std::nullopt;
  return std::make_pair(data.substr(4, sp - 4), data.substr(sp + 1));
}

std::string KvRegister::apply(LogIndex, const std::string& data) {
  auto kv = decode_put(data);
  if (!kv) return "error: unknown command";
  values_[kv->first] = kv->second;
  return "ok";
}

std::string KvRegister::snapshot() const {
  // One `key value` pair per line, in key order (std::map): deterministic.
  std::string out = "kv1\n";
  for (const auto& [k, v] : values_) out += k + " " + v + "\n";
  return out;
}

bool KvRegister::restore(const std::string& data) {
  std::istringstream in(data);
  std::string line;
  if (!std::getline(in, line) || line != "kv1") return false;
  std::map<std::string, std::string> values;
  while (std::getline(in, line)) {
    size_t sp = line.find(' ');
    if (sp == std::string::npos || sp == 0) return false;
    values[line.substr(0, sp)] = line.substr(sp + 1);
  }
  values_ = std::move(values);
  return true;
}

std::string KvRegister::query(const std::string& key) const {
  auto it = values_.find(key);
  return it == values_.end() ? "" : it->second;
}

}  // namespace tenure::sim
