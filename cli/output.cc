#include "cli/output.h"

#include <algorithm>

namespace tenure::cli {

namespace {
std::string cell(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    std::string s = v.dump();
    return s;
  }
  return v.dump();
}
}  // namespace

std::string table(const nlohmann::json& rows, const std::vector<std::string>& columns) {
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> width;
  std::vector<std::string> header;
  for (const auto& c : columns) {
    std::string h = c;
    std::transform(h.begin(), h.end(), h.begin(), ::toupper);
    header.push_back(h);
    width.push_back(h.size());
  }
  for (const auto& r : rows) {
    std::vector<std::string> line;
    for (size_t i = 0; i < columns.size(); ++i) {
      line.push_back(r.contains(columns[i]) ? cell(r[columns[i]]) : "-");
      width[i] = std::max(width[i], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  std::string out;
  auto emit = [&](const std::vector<std::string>& line) {
    for (size_t i = 0; i < line.size(); ++i) {
      out += line[i];
      if (i + 1 < line.size()) out += std::string(width[i] - line[i].size() + 2, ' ');
    }
    out += "\n";
  };
  emit(header);
  for (const auto& line : cells) emit(line);
  return out;
}

std::string key_values(const nlohmann::json& obj) {
  std::string out;
  for (const auto& [k, v] : obj.items()) {
    if (v.is_object()) continue;
    if (v.is_array()) {
      // Lists of plain values (created ids) print inline; lists of objects are tables.
      if (!v.empty() && v.front().is_object()) continue;
      std::string joined;
      for (const auto& item : v) joined += (joined.empty() ? "" : ", ") + cell(item);
      out += k + ": " + joined + "\n";
      continue;
    }
    out += k + ": " + cell(v) + "\n";
  }
  return out;
}

}  // namespace tenure::cli
