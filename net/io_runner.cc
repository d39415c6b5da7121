#include "net/io_runner.h"

#include <atomic>
#include <exception>
#include <string>

#include <boost/asio/io_context.hpp>

#include "common/log.h"

namespace tenure::net {

namespace {
std::atomic<uint64_t> g_escaped{0};
}  // namespace

void count_escaped_exception() { g_escaped.fetch_add(1, std::memory_order_relaxed); }

uint64_t escaped_exceptions() { return g_escaped.load(std::memory_order_relaxed); }

void run_guarded(boost::asio::io_context& ioc, const char* component) {
  for (;;) {
    try {
      ioc.run();
      return;
    } catch (const std::exception& e) {
      count_escaped_exception();
      log_error(component, std::string("event=handler_exception what=\"") + e.what() + "\"");
    } catch (...) {
      count_escaped_exception();
      log_error(component, "event=handler_exception what=unknown");
    }
  }
}

}  // namespace tenure::net
