#include "cli/output.h"

#include <algorithm>

#include "net/http_types.h"

namespace tenure::cli {

namespace {
std::string cell(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) {
    return net::json_text(v);
  }
  return net::json_text(v);
}
}  // namespace

std::string TableWriter::rows(const nlohmann::json& rows) {
  std::vector<std::vector<std::string>> cells;
  for (const auto& r : rows) {
    std::vector<std::string> line;
    for (const auto& c : columns_) line.push_back(r.contains(c) ? cell(r[c]) : "-");
    cells.push_back(std::move(line));
  }
  std::string out;
  auto emit = [&](const std::vector<std::string>& line) {
    for (size_t i = 0; i < line.size(); ++i) {
      out += line[i];
      if (i + 1 < line.size()) out += std::string(width_[i] > line[i].size() ? width_[i] - line[i].size() + 2 : 2, ' ');
    }
    out += "\n";
  };
  if (width_.empty()) {
    std::vector<std::string> header;
    for (const auto& c : columns_) {
      std::string h = c;
      std::transform(h.begin(), h.end(), h.begin(), ::toupper);
      header.push_back(h);
      width_.push_back(h.size());
    }
    for (const auto& line : cells) {
      for (size_t i = 0; i < line.size(); ++i) width_[i] = std::max(width_[i], line[i].size());
    }
    emit(header);
  }
  for (const auto& line : cells) emit(line);
  return out;
}

std::string table(const nlohmann::json& rows, const std::vector<std::string>& columns) {
  return TableWriter(columns).rows(rows);
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
