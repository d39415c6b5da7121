#pragma once
// Rendering answers for people (aligned tables) or programs (-o json).

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tenure::cli {

/// Prints `rows` (objects) as an aligned table of `columns`; null prints "-".
std::string table(const nlohmann::json& rows, const std::vector<std::string>& columns);
/// A table printed a page at a time (tenurectl's paged lists): the header
/// and the column widths come from the first page; a longer cell later only
/// pushes its own line out of line.
class TableWriter {
 public:
  explicit TableWriter(std::vector<std::string> columns) : columns_(std::move(columns)) {}
  /// The lines of `rows`, preceded by the header on the first call.
  std::string rows(const nlohmann::json& rows);

 private:
  std::vector<std::string> columns_;
  std::vector<size_t> width_;
};

/// One object as "key: value" lines.
std::string key_values(const nlohmann::json& obj);

}  // namespace tenure::cli
