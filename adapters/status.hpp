#pragma once

#include <string>
#include <utility>

namespace atlas {

/// The outcome of an adapter call: success, or one clear message saying what
/// went wrong. Adapters return this instead of throwing.
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

} // namespace atlas
