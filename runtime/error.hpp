#pragma once

#include <cstdint>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace dml {

/// Error codes of the runtime. Each names a class of problem; the message of
/// an `error` says what and where.
enum class errc : uint8_t {
  /// No error.
  none = 0,
  /// A file could not be opened, read or written.
  io_error,
  /// A file's content does not follow its format (bad magic, ragged row,
  /// non-numeric cell, truncated stream, ...).
  bad_format,
  /// A value is outside what the operation accepts (a flag, a label, ...).
  bad_value,
  /// Two shapes that must agree do not.
  shape_mismatch,
  /// No model of that name is registered.
  unknown_model,
  /// No entry of that name is registered (actor type, optimizer, ...).
  unknown_name,
  /// A stored checksum does not match the content.
  checksum_mismatch,
  /// A file or peer speaks a version this build does not understand.
  version_mismatch,
  /// A configuration that cannot run (e.g., more workers than rows).
  bad_config,
  /// A peer broke the protocol (stale step, unknown rank, bad payload).
  protocol_violation,
  /// A peer did not answer in time.
  timeout,
  /// A peer went away (its process died or the connection dropped).
  peer_lost,
};

/// Returns the name of `x`, e.g. `"bad_format"`.
const char* to_string(errc x) noexcept;

/// An error as a value: a code plus a one-line, human-readable message that
/// names what is wrong and where (file, line, flag).
class [[nodiscard]] error {
public:
  error() noexcept = default;

  error(errc code, std::string message)
    : code_(code), message_(std::move(message)) {
    // nop
  }

  /// Returns whether this holds an error.
  explicit operator bool() const noexcept {
    return code_ != errc::none;
  }

  errc code() const noexcept {
    return code_;
  }

  const std::string& message() const noexcept {
    return message_;
  }

  /// Returns `"<code>: <message>"`.
  std::string to_string() const;

private:
  errc code_ = errc::none;
  std::string message_;
};

/// Returns an error with `code` and `message`.
inline error make_error(errc code, std::string message) {
  return error{code, std::move(message)};
}

/// Either a value of type `T` or an `error`.
template <class T>
class [[nodiscard]] expected {
public:
  static_assert(!std::is_same<T, error>::value);

  expected(T value) : data_(std::move(value)) {
    // nop
  }

  expected(error err) : data_(std::move(err)) {
    // nop
  }

  /// Returns whether this holds a value.
  explicit operator bool() const noexcept {
    return data_.index() == 0;
  }

  T& operator*() & {
    return std::get<0>(data_);
  }

  const T& operator*() const& {
    return std::get<0>(data_);
  }

  T&& operator*() && {
    return std::get<0>(std::move(data_));
  }

  T* operator->() {
    return &std::get<0>(data_);
  }

  const T* operator->() const {
    return &std::get<0>(data_);
  }

  T& value() {
    return std::get<0>(data_);
  }

  const error& err() const {
    return std::get<1>(data_);
  }

private:
  std::variant<T, error> data_;
};

} // namespace dml
