#pragma once
// The last line of defence of every io thread (controller, agent): an
// exception that escapes a completion handler is logged and counted, and the
// thread goes on serving, instead of reaching std::terminate and taking the
// whole process (and, for a controller, its vote) down with one request.
// Handlers still catch what they expect close to where it is thrown; this
// only keeps what nobody foresaw from being fatal.

#include <cstdint>

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace tenure::net {

/// Runs `ioc` on the calling thread until it stops (as io_context::run()).
/// An exception escaping a handler is logged as ERROR under `component` and
/// run() is resumed (Asio allows that without restart()). The handler that
/// threw is destroyed, so a request it held is answered 500 by its
/// Responder. Thread-safe; any number of threads may run it on one context.
void run_guarded(boost::asio::io_context& ioc, const char* component);

/// Exceptions caught by run_guarded and by the other last-resort catches
/// that report here (count_escaped_exception), process-wide, since start:
/// exported as tenure_escaped_exceptions_total. Should stay 0.
uint64_t escaped_exceptions();

/// Records one exception caught at a thread or handler boundary (logged by
/// the caller). Thread-safe.
void count_escaped_exception();

}  // namespace tenure::net
