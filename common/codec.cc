#include "common/codec.h"

#include <cstring>

namespace tenure {

void Writer::varint(uint64_t v) {
  while (v >= 0x80) {
    out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out_.push_back(static_cast<char>(v));
}

void Writer::str(std::string_view s) {
  varint(s.size());
  out_.append(s.data(), s.size());
}

void Writer::f64(double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  u64le(bits);
}

void Writer::u64le(uint64_t v) {
  for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint8_t Reader::u8() {
  if (failed_ || pos_ >= in_.size()) {
    failed_ = true;
    return 0;
  }
  return static_cast<uint8_t>(in_[pos_++]);
}

uint64_t Reader::varint() {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    uint8_t b = u8();
    if (failed_) return 0;
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return v;
  }
  failed_ = true;
  return 0;
}

std::string Reader::str() {
  uint64_t n = varint();
  if (failed_ || in_.size() - pos_ < n) {
    failed_ = true;
    return {};
  }
  std::string s(in_.substr(pos_, n));
  pos_ += n;
  return s;
}

double Reader::f64() {
  if (failed_ || in_.size() - pos_ < 8) {
    failed_ = true;
    return 0;
  }
  uint64_t bits = 0;
  for (int i = 0; i < 8; ++i) bits |= static_cast<uint64_t>(static_cast<uint8_t>(in_[pos_ + i])) << (8 * i);
  pos_ += 8;
  double v;
  std::memcpy(&v, &bits, sizeof v);
  return v;
}

}  // namespace tenure
