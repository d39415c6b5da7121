#pragma once
// A small binary encoding (commands, snapshots, the peer wire): little-endian varints
// and length-prefixed strings. Deterministic byte for byte, so every member
// encodes the same state identically.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tenure {

class Writer {
 public:
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void varint(uint64_t v);
  void str(std::string_view s);
  void f64(double v);
  /// Eight bytes, little-endian (fixed width: what a checksum's header hashes).
  void u64le(uint64_t v);
  std::string take() { return std::move(out_); }
  std::string& buffer() { return out_; }

 private:
  std::string out_;
};

/// Reads what Writer wrote; any malformed input sets failed() and every
/// later read returns a zero value, so callers check once at the end.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  uint8_t u8();
  uint64_t varint();
  std::string str();
  double f64();
  bool failed() const { return failed_; }
  bool done() const { return pos_ == in_.size(); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
  bool failed_ = false;
};

}  // namespace tenure
