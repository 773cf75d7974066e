// Errors are values: every fallible call returns a Status or a Result<T>.
// No exception crosses the public API.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace wavekv {

enum class Code {
  kOk = 0,
  kNotFound,         // the key (or file) does not exist
  kInvalidArgument,  // the caller passed something we refuse (too large, bad config)
  kCorruption,       // on-disk data failed a check and cannot be repaired
  kIOError,          // the operating system reported a failure
  kBusy,             // another process holds the data directory
  kWrongNode,        // the data directory belongs to another node id
  kFailed,           // an earlier write or fsync failed; reopen the store
  kClosed,           // the store was closed
  kUnavailable,      // refused for now (the node's clock is out of bounds); retry later
};

const char* code_name(Code code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  static Status ok() { return Status(); }
  static Status not_found(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status invalid(std::string msg) { return {Code::kInvalidArgument, std::move(msg)}; }
  static Status corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status unavailable(std::string msg) { return {Code::kUnavailable, std::move(msg)}; }
  static Status io_error(std::string msg) { return {Code::kIOError, std::move(msg)}; }
  static Status busy(std::string msg) { return {Code::kBusy, std::move(msg)}; }
  static Status wrong_node(std::string msg) { return {Code::kWrongNode, std::move(msg)}; }
  static Status failed(std::string msg) { return {Code::kFailed, std::move(msg)}; }
  static Status closed(std::string msg) { return {Code::kClosed, std::move(msg)}; }

  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return msg_; }
  // "NotFound: key 'x' does not exist"
  std::string to_string() const;

 private:
  Status(Code code, std::string msg) : code_(code), msg_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string msg_;
};

// A value or the Status that explains why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT: implicit by design
    assert(!status_.is_ok() && "a Result built from a Status must carry an error");
  }

  bool is_ok() const { return value_.has_value(); }
  explicit operator bool() const { return is_ok(); }
  const Status& status() const { return status_; }
  T& value() & {
    assert(is_ok());
    return *value_;
  }
  const T& value() const& {
    assert(is_ok());
    return *value_;
  }
  T&& value() && {
    assert(is_ok());
    return std::move(*value_);
  }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace wavekv

#define WAVEKV_RETURN_IF_ERROR(expr) \
  do {                               \
    ::wavekv::Status _st = (expr);   \
    if (!_st.is_ok()) return _st;    \
  } while (0)
