#pragma once

#include <cstdint>
#include <string>

#include <caf/error.hpp>
#include <caf/make_message.hpp>

namespace atlas {

/// Error codes carried as values between actors (and nodes). Each maps to
/// one HTTP status in the gateway.
enum class ec : uint8_t {
  unspecified = 1,
  not_found,          // 404
  invalid_argument,   // 400
  conflict,           // 409: e.g. deleting a running job
  unavailable,        // 503: Redis or the master cannot be reached
  illegal_transition, // 409: the lifecycle refuses the change
  forbidden,          // 403
};

const char* to_string(ec x);

/// An error with a human-readable message as its context.
caf::error make_error(ec code, std::string message);

/// The message of an error made by make_error (or CAF's own rendering).
std::string error_message(const caf::error& err);

/// The HTTP status for an error.
uint16_t http_status_of(const caf::error& err);

} // namespace atlas

namespace caf::detail {
template <>
struct error_factory<atlas::ec> {
  static constexpr bool specialized = true;
  static constexpr atom_value category = atom("atlas");
  template <class... Ts>
  static message context(Ts&&... xs) {
    return make_message(std::forward<Ts>(xs)...);
  }
};
} // namespace caf::detail
