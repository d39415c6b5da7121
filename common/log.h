#pragma once
// Structured logs: `level component key=value ...` on stderr, one line each
// (DESIGN.md, house style 10). ERROR: a contract broke; WARN: transient,
// recovering; INFO: state changes an operator wants to see.

#include <string>

namespace tenure {

void log_line(const char* level, const char* component, const std::string& fields);
/// Switches every log line of this process off (or back on): the simulator
/// runs thousands of members' drivers a second, whose lines would be noise.
void set_logging(bool on);
inline void log_info(const char* component, const std::string& fields) { log_line("INFO", component, fields); }
inline void log_warn(const char* component, const std::string& fields) { log_line("WARN", component, fields); }
inline void log_error(const char* component, const std::string& fields) { log_line("ERROR", component, fields); }

}  // namespace tenure
