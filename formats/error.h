// Errors returned by library code (formats/, codecs/, convert/).
//
// Library code never prints and never exits: it returns an Error whose message
// names the object (file, tensor, row), the value found and the allowed range,
// after gguf.cpp ("number of tensors is %d but must be in [0, %zu]") and XNNPACK's
// src/tensor.c. Only cli/ prints and turns ErrorKind into an exit code
// (ExitCodeFor below): 0 ok, 1 the job failed, 2 bad usage or bad input.
#pragma once

#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include <fmt/format.h>

namespace bitsmith {

enum class ErrorKind {
  kBadUsage,     // wrong flags or arguments                         -> exit 2
  kBadInput,     // malformed, inconsistent or hostile input data    -> exit 2
  kUnsupported,  // well-formed input we cannot handle (unknown dtype) -> exit 2
  kIo,           // the system failed us: read/write/rename errors    -> exit 1
  kNoSpace,      // ENOSPC / EFBIG while writing                      -> exit 1
  kFailed,       // the job ran and failed (verification mismatch)    -> exit 1
  kInternal,     // a bug in bitsmith                                 -> exit 1
};

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;
};

inline int ExitCodeFor(ErrorKind k) {
  switch (k) {
    case ErrorKind::kBadUsage:
    case ErrorKind::kBadInput:
    case ErrorKind::kUnsupported:
      return 2;
    default:
      return 1;
  }
}

// fmt-style constructors: MakeError(ErrorKind::kBadInput, "{}: tensor '{}' ...", ...)
template <typename... Args>
Error MakeError(ErrorKind kind, fmt::format_string<Args...> f, Args&&... args) {
  return Error{kind, fmt::format(f, std::forward<Args>(args)...)};
}

// Result<T>: a value or an Error (std::expected is C++23; this is the subset we use).
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}              // NOLINT(implicit)
  Result(Error error) : v_(std::move(error)) {}          // NOLINT(implicit)
  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<Error>(v_); }
  Error&& take_error() { return std::get<Error>(std::move(v_)); }

 private:
  std::variant<T, Error> v_;
};

// Status: success or an Error.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : e_(std::move(error)) {}  // NOLINT(implicit)
  static Status Ok() { return Status(); }
  bool ok() const { return !e_.has_value(); }
  explicit operator bool() const { return ok(); }
  const Error& error() const { return *e_; }
  Error&& take_error() { return std::move(*e_); }

 private:
  std::optional<Error> e_;
};

// Propagation helpers.
#define BITSMITH_RETURN_IF_ERROR(expr)                      \
  do {                                                      \
    auto bitsmith_status_ = (expr);                         \
    if (!bitsmith_status_.ok()) return bitsmith_status_.take_error(); \
  } while (0)

#define BITSMITH_CONCAT_INNER_(a, b) a##b
#define BITSMITH_CONCAT_(a, b) BITSMITH_CONCAT_INNER_(a, b)
#define BITSMITH_ASSIGN_OR_RETURN(lhs, expr)                                   \
  auto BITSMITH_CONCAT_(bitsmith_result_, __LINE__) = (expr);                  \
  if (!BITSMITH_CONCAT_(bitsmith_result_, __LINE__).ok())                      \
    return BITSMITH_CONCAT_(bitsmith_result_, __LINE__).take_error();          \
  lhs = std::move(BITSMITH_CONCAT_(bitsmith_result_, __LINE__)).value()

}  // namespace bitsmith
