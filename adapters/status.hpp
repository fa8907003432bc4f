#pragma once

#include <string>
#include <utility>

namespace atlas {

/// The outcome of an adapter call: success, or one clear message saying what
/// went wrong. Adapters and the library return this (or result<T> below)
/// instead of throwing; inside actors, errors are caf::error with our ec.
class status {
public:
  static status success() { return status{}; }
  static status fail(std::string message) { return status{std::move(message)}; }

  bool ok() const { return error_.empty(); }
  explicit operator bool() const { return ok(); }
  const std::string& error() const { return error_; }

private:
  status() = default;
  explicit status(std::string message) : error_(std::move(message)) {
    if (error_.empty())
      error_ = "unknown error";
  }
  std::string error_;
};

/// A value, or one clear message saying why there is none: what adapters
/// and the library return where `status` alone says too little. Built from
/// the value (`return v;`) or from a failed status
/// (`return status::fail("...");`).
template <class T>
class result {
public:
  result(T value) : value_(std::move(value)) {}
  result(const status& failure) : error_(failure.ok() ? "unknown error" : failure.error()) {}

  bool ok() const { return error_.empty(); }
  explicit operator bool() const { return ok(); }
  const std::string& error() const { return error_; }

  T& value() { return value_; }
  const T& value() const { return value_; }
  T* operator->() { return &value_; }
  const T* operator->() const { return &value_; }

private:
  T value_{};
  std::string error_;
};

} // namespace atlas
