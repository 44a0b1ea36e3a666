// Errors as values. A Result<T> holds either a T or an Error whose message is
// the one line a user sees ("open pg_wal/000000010000000000000001: No such file
// or directory"). No exceptions cross module boundaries for I/O, network or
// corrupt data.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace walferry {

enum class ErrorCode : unsigned char {
  kOk = 0,
  kInvalidArgument,  // a user gave a bad flag, name or level
  kNotFound,         // file or archive entry does not exist
  kExists,           // target exists (and is not identical)
  kExistsDifferent,  // archive: same name, different content
  kCorrupt,          // bad checksum, bad frame, truncated stream
  kIo,               // read/write/fsync failure
  kNoSpace,          // ENOSPC / EDQUOT, or a buffer that is too small
  kNetwork,          // connect/reset/timeout
  kAuth,             // TLS or certificate refused
  kProtocol,         // peer violated the wire protocol
  kUnsupported,      // feature not available here (e.g. io_uring)
  kRefused,          // receiver refused (name, cluster, policy)
  kInternal,
};

// Short stable name of a code ("exists-different"), used on the wire and in logs.
std::string_view ErrorCodeName(ErrorCode code);

class Error {
 public:
  Error(ErrorCode code, std::string message) : code_(code), message_(std::move(message)) {}
  ErrorCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // Returns a copy with "context: " prepended to the message.
  Error Wrap(std::string_view context) const {
    return Error(code_, std::string(context) + ": " + message_);
  }

 private:
  ErrorCode code_;
  std::string message_;
};

// Converts an errno value into an Error; the one place errno becomes an Error.
// ENOSPC/EDQUOT -> kNoSpace, ENOENT -> kNotFound, EEXIST -> kExists,
// connection errors -> kNetwork, everything else -> kIo.
Error ErrnoError(int err, std::string_view context);

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}          // NOLINT(implicit)
  Result(Error error) : v_(std::move(error)) {}      // NOLINT(implicit)
  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() & { assert(ok()); return std::get<0>(v_); }
  const T& value() const& { assert(ok()); return std::get<0>(v_); }
  T&& value() && { assert(ok()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { assert(!ok()); return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

// Result of an operation that returns nothing.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(Error error) : error_(std::move(error)), ok_(false) {}  // NOLINT(implicit)
  static Status Ok() { return Status(); }
  bool ok() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const { assert(!ok_); return error_; }

 private:
  Error error_{ErrorCode::kOk, ""};
  bool ok_ = true;
};

}  // namespace walferry

// Early-return helpers. WF_TRY(expr) for Status; WF_ASSIGN(lhs, expr) for Result<T>.
#define WF_CONCAT_INNER(a, b) a##b
#define WF_CONCAT(a, b) WF_CONCAT_INNER(a, b)
#define WF_TRY(expr)                                  \
  do {                                                \
    auto wf_status_ = (expr);                         \
    if (!wf_status_.ok()) return wf_status_.error();  \
  } while (0)
#define WF_ASSIGN_IMPL(tmp, lhs, expr)      \
  auto tmp = (expr);                        \
  if (!tmp.ok()) return tmp.error();        \
  lhs = std::move(tmp).value()
#define WF_ASSIGN(lhs, expr) WF_ASSIGN_IMPL(WF_CONCAT(wf_result_, __LINE__), lhs, expr)
