#pragma once
// Rendering answers for people (aligned tables) or programs (-o json).

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace tenure::cli {

/// Prints `rows` (objects) as an aligned table of `columns`; null prints "-".
std::string table(const nlohmann::json& rows, const std::vector<std::string>& columns);
/// One object as "key: value" lines.
std::string key_values(const nlohmann::json& obj);

}  // namespace tenure::cli
