#include "runtime/cli/yaml_json.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdlib>

#include "adapters/json.hpp"

namespace atlas::cli {

std::optional<double> yaml_number(const std::string& s) {
  if (s.empty())
    return std::nullopt;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (*end != '\0' || !std::isfinite(v))
    return std::nullopt;
  return v;
}

namespace {

/// Writes a YAML value as JSON: plain scalars become numbers, booleans or
/// null where they read as such; quoted ones stay strings.
void write_value(const YAML::Node& n, json::writer& w) {
  if (n.IsSequence()) {
    w.begin_array();
    for (const auto& item : n)
      write_value(item, w);
    w.end_array();
    return;
  }
  if (n.IsMap()) {
    w.begin_object();
    for (const auto& kv : n) {
      w.key(kv.first.Scalar());
      write_value(kv.second, w);
    }
    w.end_object();
    return;
  }
  if (!n.IsScalar() || n.IsNull()) {
    w.null();
    return;
  }
  const std::string& s = n.Scalar();
  if (n.Tag() == "!") // quoted
    return void(w.value(s));
  if (s == "true" || s == "True" || s == "false" || s == "False")
    return void(w.value(s[0] == 't' || s[0] == 'T'));
  std::string perr;
  if (auto v = yaml_number(s)) {
    // Keep the number as written when it is valid JSON ("0.01", not 0.01000000000000000020816).
    if (auto parsed = json::parse(s, perr); parsed && parsed->is_number())
      return void(w.raw(s));
    return void(w.value(*v));
  }
  w.value(s);
}

} // namespace

std::string yaml_json(const YAML::Node& node) {
  json::writer w;
  write_value(node, w);
  return w.take();
}

} // namespace atlas::cli
