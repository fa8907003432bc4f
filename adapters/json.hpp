#pragma once

// JSON in and out. Parsing goes through simdjson into a small owned tree
// (bodies here are small: job submissions, API answers); writing appends to a
// string with correct escaping. No exceptions leave this adapter.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace atlas::json {

/// One parsed JSON value, owning its children.
struct value {
  enum class kind : uint8_t { null, boolean, integer, number, string, array, object };

  kind type = kind::null;
  bool boolean = false;
  int64_t integer = 0; // set for kind::integer
  double number = 0;   // set for kind::integer and kind::number
  std::string string;
  std::vector<value> array;
  std::vector<std::pair<std::string, value>> object; // in document order

  // Defined in json.cpp, where `value` is complete: clang with libstdc++ in
  // C++20 mode cannot instantiate the vectors' members inline here.
  value();
  ~value();
  value(const value&);
  value(value&&) noexcept;
  value& operator=(const value&);
  value& operator=(value&&) noexcept;

  bool is_null() const { return type == kind::null; }
  bool is_object() const { return type == kind::object; }
  bool is_array() const { return type == kind::array; }
  bool is_string() const { return type == kind::string; }
  bool is_number() const { return type == kind::integer || type == kind::number; }

  /// The member named `key` of an object, or nullptr.
  const value* find(std::string_view key) const;

  /// Member `key` as a string, when it is one.
  std::optional<std::string> get_string(std::string_view key) const;
  /// Member `key` as an integer, when it is a number without fraction.
  std::optional<int64_t> get_int(std::string_view key) const;

  /// Compact JSON text of this value.
  std::string dump() const;
};

/// Parses `text`; on failure returns nullopt and sets `error` to a short
/// human-readable reason.
std::optional<value> parse(std::string_view text, std::string& error);

/// Appends `s` as a quoted, escaped JSON string (invalid UTF-8 is replaced).
void append_quoted(std::string& out, std::string_view s);
std::string quote(std::string_view s);

/// A Docker-style spec field (`command`, `entrypoint`) that is a list of
/// strings, or one string split on spaces; absent or null is empty.
/// nullopt with `error` ("spec.<field> ...") for anything else.
std::optional<std::vector<std::string>> spec_words(const value* v, const char* field,
                                                   std::string& error);

/// Builds JSON text incrementally; commas are placed automatically.
///   writer w; w.begin_object().kv("a", 1).key("b").raw("[1,2]").end_object();
class writer {
public:
  writer& begin_object();
  writer& end_object();
  writer& begin_array();
  writer& end_array();
  writer& key(std::string_view k);
  writer& value(std::string_view s);
  writer& value(const char* s) { return value(std::string_view{s}); }
  writer& value(const std::string& s) { return value(std::string_view{s}); }
  writer& value(int64_t x);
  writer& value(int x) { return value(static_cast<int64_t>(x)); }
  writer& value(uint64_t x);
  writer& value(double x);
  writer& value(bool x);
  writer& null();
  /// Inserts already-valid JSON text (an empty view writes null).
  writer& raw(std::string_view json_text);

  template <class T>
  writer& kv(std::string_view k, T&& v) {
    key(k);
    return value(std::forward<T>(v));
  }

  const std::string& str() const { return out_; }
  std::string take() { return std::move(out_); }

private:
  void separate();
  std::string out_;
  std::vector<bool> first_; // per open container: no element written yet
  bool after_key_ = false;
};

} // namespace atlas::json
