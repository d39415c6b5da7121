#pragma once
// Callbacks the Raft node runs on its strand (a request's completion, the
// tick and apply hooks) are the program's code running in the middle of the
// node's own work: an exception from one must not unwind through the apply
// loop (it would skip the rest of a committed batch) nor end the process.
// guarded() wraps such a callback: an exception is logged as ERROR, counted
// (tenure_escaped_exceptions_total) and swallowed. A request whose callback
// threw is still answered: its Responder answers 500 once dropped.

#include <exception>
#include <functional>
#include <string>

#include "common/log.h"
#include "net/io_runner.h"

namespace tenure::member {

template <typename... Args>
std::function<void(Args...)> guarded(std::function<void(Args...)> fn, const char* what) {
  if (!fn) return fn;
  return [fn = std::move(fn), what](Args... args) {
    try {
      fn(args...);
    } catch (const std::exception& e) {
      net::count_escaped_exception();
      log_error("raft", std::string("event=callback_exception callback=") + what + " what=\"" + e.what() + "\"");
    } catch (...) {
      net::count_escaped_exception();
      log_error("raft", std::string("event=callback_exception callback=") + what + " what=unknown");
    }
  };
}

}  // namespace tenure::member
