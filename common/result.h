#pragma once
// Expected failures are values (DESIGN.md, house style 4): a Result<T> holds
// either a T or an Error whose code is an enum class of the caller's domain.

#include <string>
#include <utility>
#include <variant>

namespace tenure {

/// An expected failure: a code from a domain enum and a human message.
template <typename Code>
struct Error {
  Code code;
  std::string message;
};

/// Either a value or an Error<Code>. Cheap to move; never throws on access
/// misuse in release builds, so callers must check ok() first.
template <typename T, typename Code>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Error<Code> error) : v_(std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  const Error<Code>& error() const { return std::get<1>(v_); }
  Code code() const { return std::get<1>(v_).code; }

 private:
  std::variant<T, Error<Code>> v_;
};

/// A Result with no value.
struct Ok {};

}  // namespace tenure
