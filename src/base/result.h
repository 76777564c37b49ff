// Result<T>: the value of an operation that can fail in an expected way (bad input, not
// found, disk, conflict). Programming errors are not Results: they abort (see DROVER_CHECK).
// The error policy is written down in docs/architecture.md ("Errors").
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <variant>

namespace drover {

enum class ErrorCode {
  kInvalidArgument,     // the caller's input is malformed or violates a rule
  kNotFound,            // the named thing does not exist
  kAlreadyExists,       // a create collided with an existing record
  kFailedPrecondition,  // the request is valid but the state does not allow it now
  kConflict,            // a state machine refused a transition
  kIo,                  // the disk or the database failed
  kCorruption,          // stored data could not be read back
  kInternal,            // a dependency failed in a way the caller cannot fix
  kUnauthenticated,     // no credentials, or ones that do not prove who the caller is
  kPermissionDenied,    // the caller is known but may not do this
  kResourceExhausted,   // no room for it: the disk (or a quota) would be exceeded
};

const char* error_code_name(ErrorCode code);

struct Error {
  ErrorCode code;
  std::string message;

  // "invalid_argument: stage 2: percent must grow (was 10, now 5)"
  std::string to_string() const;
};

inline Error invalid_argument(std::string message) {
  return {ErrorCode::kInvalidArgument, std::move(message)};
}
inline Error not_found(std::string message) { return {ErrorCode::kNotFound, std::move(message)}; }
inline Error conflict(std::string message) { return {ErrorCode::kConflict, std::move(message)}; }
inline Error io_error(std::string message) { return {ErrorCode::kIo, std::move(message)}; }
// The system's text for an errno value, safe on any thread (std::strerror is not).
std::string errno_text(int err);

// Result<T> holds either a T or an Error. Result<void> holds nothing or an Error.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}  // NOLINT

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }

  // Accessing the wrong alternative is a programming error and aborts.
  T& value() & { return std::get<0>(checked()); }
  const T& value() const& { return std::get<0>(checked()); }
  T&& value() && { return std::get<0>(std::move(checked())); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const {
    if (ok()) abort_with("Result::error() on a value");
    return std::get<1>(v_);
  }

 private:
  [[noreturn]] static void abort_with(const char* what) {
    std::fprintf(stderr, "fatal: %s\n", what);
    std::abort();
  }
  std::variant<T, Error>& checked() {
    if (!ok()) abort_with(("Result::value() on error: " + std::get<1>(v_).to_string()).c_str());
    return v_;
  }
  const std::variant<T, Error>& checked() const {
    if (!ok()) abort_with(("Result::value() on error: " + std::get<1>(v_).to_string()).c_str());
    return v_;
  }
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT: implicit by design
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const {
    if (ok_) {
      std::fprintf(stderr, "fatal: Result<void>::error() on success\n");
      std::abort();
    }
    return error_;
  }

 private:
  Error error_{ErrorCode::kInternal, {}};
  bool ok_ = true;
};

using Status = Result<void>;
inline Status ok_status() { return {}; }

// Aborts with a message when an invariant does not hold. For programming errors only.
#define DROVER_CHECK(cond)                                                          \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (false)

// Propagates an error Result from the current function.
#define DROVER_TRY(expr)                                             \
  do {                                                               \
    auto drover_try_result_ = (expr);                                \
    if (!drover_try_result_.ok()) return drover_try_result_.error(); \
  } while (false)

}  // namespace drover
