#pragma once

// A typed reader over the maps of a YAML settings file, for the loaders in
// config.cpp (and later `auth:` and `docker:`). Every getter leaves its `out`
// alone when the key is absent or null, and reports a bad value to the load's
// sink as "<file>: <prefix><key>: expected <what>, got <value>". Nothing here
// throws except yaml-cpp on a broken node, which the loaders catch.

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace atlas::yaml {

/// Where one load puts its warnings and its first error.
/// `s` with control characters written as \n, \t or \xHH, so that a
/// message quoting a file's text stays one line.
std::string one_line(std::string s);

struct sink {
  std::vector<std::string>& warnings;
  std::string& error;
  bool failed() const { return !error.empty(); }
  void fail(std::string m) {
    if (error.empty())
      error = one_line(std::move(m));
  }
  void warn(std::string m) { warnings.push_back(one_line(std::move(m))); }
};

/// `s` in lower case (ASCII).
std::string lower(std::string s);

/// A whole number written with digits only.
std::optional<uint64_t> parse_whole(std::string_view s);

/// "~/x" becomes "$HOME/x".
std::string expand_home(const std::string& p, const std::string& user_home);

/// "from <lo> to <hi>", or ">= <lo>" when `hi` is INT32_MAX or more.
std::string range_text(uint64_t lo, uint64_t hi);

/// A map inside one YAML file. It refers to the sink of its load, which must
/// outlive it.
class section {
public:
  section(sink& s, std::string file, YAML::Node node, std::string prefix, std::string user_home);

  /// The value at `key`; an undefined node when absent or null.
  YAML::Node get(const char* key) const;

  /// Reports `got` at `key` as not being `what`.
  void bad(const char* key, const std::string& what, const YAML::Node& got) const;

  /// Warns about every key not in `names`.
  void known(std::initializer_list<std::string_view> names) const;

  bool str(const char* key, std::string& out) const;

  /// An absolute path ("~" expanded, trailing '/' removed).
  bool path(const char* key, std::string& out) const;

  /// The whole number at `key` within [lo, hi]; anything else is reported as not `what`.
  std::optional<uint64_t> number(const char* key, uint64_t lo, uint64_t hi, const std::string& what) const;

  template <class Int>
  bool whole(const char* key, Int& out, uint64_t lo, uint64_t hi, const std::string& unit) const {
    auto n = number(key, lo, hi, "a whole number" + unit + " " + range_text(lo, hi));
    if (n)
      out = static_cast<Int>(*n);
    return n.has_value();
  }

  bool port(const char* key, uint16_t& out, uint64_t lo = 0) const;

  bool flag(const char* key, bool& out) const;

  /// One of `options`, compared in lower case; anything else is reported as not `what`.
  bool choice(const char* key, std::string& out, std::initializer_list<std::string_view> options,
              const std::string& what) const;

  /// A nested map; nullopt when absent (or not a map, which is an error).
  std::optional<section> sub(const char* key) const;

  /// A list of maps (notifications.webhooks): one section each, named
  /// "<key>[<i>]." in messages; empty when absent (a list of anything
  /// else is an error).
  std::vector<section> maps(const char* key) const;

  /// Fails on the first key not in `names`: for sections where a misspelt
  /// key would silently change what happens.
  void only(std::initializer_list<std::string_view> names) const;

  /// The keys of this map, in file order (for maps keyed by names).
  std::vector<std::string> keys() const;

  /// A list of strings (a single string reads as a list of one).
  bool strings(const char* key, std::vector<std::string>& out) const;

  const std::string& file() const { return file_; }

private:
  sink& s_;
  std::string file_;
  YAML::Node node_;
  std::string prefix_;
  std::string user_home_;
};

/// Reads a YAML file whose top level is a map. An absent file gives nullopt
/// and no error; an unreadable or invalid one gives nullopt and an error.
std::optional<section> open_yaml(sink& s, const std::string& file, const std::string& user_home);

} // namespace atlas::yaml
