#include "common/log.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace tenure {

namespace {
std::atomic<bool> logging_on{true};
}  // namespace

void set_logging(bool on) { logging_on.store(on, std::memory_order_relaxed); }

void log_line(const char* level, const char* component, const std::string& fields) {
  if (!logging_on.load(std::memory_order_relaxed)) return;
  static std::mutex mu;
  auto now = std::chrono::system_clock::now();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  std::lock_guard<std::mutex> lock(mu);
  std::fprintf(stderr, "%s.%03dZ %s %s %s\n", ts, static_cast<int>(ms % 1000), level, component, fields.c_str());
}

}  // namespace tenure
