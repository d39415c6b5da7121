#pragma once
// Splits a byte stream (the pieces StreamDataFn delivers) into lines, for
// ndjson watch streams. Bounded: a line longer than the limit is an error,
// not an ever-growing buffer.

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace tenure::net {

class LineSplitter {
 public:
  /// Lines longer than `max_line_bytes` (without the newline) are an error.
  explicit LineSplitter(size_t max_line_bytes = 1 << 20) : max_line_bytes_(max_line_bytes) {}

  /// Feeds one piece; calls `on_line` for each complete line, without its
  /// "\n" (and "\r\n"), skipping empty lines (keep-alive newlines). Returns
  /// false once a line exceeded the limit; the splitter then stays failed.
  bool feed(std::string_view piece, const std::function<void(std::string_view line)>& on_line);

  /// Bytes of an unfinished line held.
  size_t pending_bytes() const { return partial_.size(); }
  bool failed() const { return failed_; }

 private:
  size_t max_line_bytes_;
  std::string partial_;
  bool failed_ = false;
};

}  // namespace tenure::net
