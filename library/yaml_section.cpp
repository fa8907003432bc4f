#include "library/yaml_section.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace atlas::yaml {
namespace {

std::string describe(const YAML::Node& n) {
  if (n.IsScalar())
    return "'" + n.Scalar() + "'";
  if (n.IsSequence())
    return "a list";
  if (n.IsMap())
    return "a map";
  return "nothing";
}

} // namespace

std::string one_line(std::string s) {
  std::string out;
  out.reserve(s.size());
  for (const unsigned char ch : s) {
    if (ch >= 0x20 && ch != 0x7f) {
      out += static_cast<char>(ch);
    } else if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\t') {
      out += "\\t";
    } else {
      static constexpr char hex[] = "0123456789abcdef";
      out += "\\x";
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

std::optional<uint64_t> parse_whole(std::string_view s) {
  uint64_t v = 0;
  if (s.empty() || s.size() > 19 || !std::all_of(s.begin(), s.end(), ::isdigit))
    return std::nullopt;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::string range_text(uint64_t lo, uint64_t hi) {
  if (hi >= INT32_MAX)
    return ">= " + std::to_string(lo);
  return "from " + std::to_string(lo) + " to " + std::to_string(hi);
}

std::string expand_home(const std::string& p, const std::string& user_home) {
  if (p == "~" || p.rfind("~/", 0) == 0)
    return user_home + p.substr(1);
  return p;
}

section::section(sink& s, std::string file, YAML::Node node, std::string prefix, std::string user_home)
  : s_(s), file_(std::move(file)), node_(std::move(node)), prefix_(std::move(prefix)),
    user_home_(std::move(user_home)) {}

YAML::Node section::get(const char* key) const {
  const YAML::Node& n = node_;
  YAML::Node v = n[key];
  return (v && !v.IsNull()) ? v : YAML::Node{YAML::NodeType::Undefined};
}

void section::bad(const char* key, const std::string& what, const YAML::Node& got) const {
  s_.fail(file_ + ": " + prefix_ + key + ": expected " + what + ", got " + describe(got));
}

void section::known(std::initializer_list<std::string_view> names) const {
  for (const auto& kv : node_) {
    std::string k = kv.first.IsScalar() ? kv.first.Scalar() : describe(kv.first);
    if (std::find(names.begin(), names.end(), k) == names.end())
      s_.warn("unknown key '" + prefix_ + k + "' in " + file_ + " (ignored)");
  }
}

bool section::str(const char* key, std::string& out) const {
  YAML::Node v = get(key);
  if (!v)
    return false;
  if (!v.IsScalar())
    return bad(key, "a string", v), false;
  out = v.Scalar();
  return true;
}

bool section::path(const char* key, std::string& out) const {
  std::string p;
  if (!str(key, p))
    return false;
  p = expand_home(p, user_home_);
  if (p.empty() || p[0] != '/')
    return bad(key, "an absolute path", get(key)), false;
  while (p.size() > 1 && p.back() == '/')
    p.pop_back();
  out = p;
  return true;
}

std::optional<uint64_t> section::number(const char* key, uint64_t lo, uint64_t hi,
                                        const std::string& what) const {
  YAML::Node v = get(key);
  if (!v)
    return std::nullopt;
  auto n = v.IsScalar() ? parse_whole(v.Scalar()) : std::nullopt;
  if (!n || *n < lo || *n > hi)
    return bad(key, what, v), std::nullopt;
  return n;
}

bool section::port(const char* key, uint16_t& out, uint64_t lo) const {
  auto n = number(key, lo, 65535, "a port number " + std::to_string(lo) + "..65535");
  if (n)
    out = static_cast<uint16_t>(*n);
  return n.has_value();
}

bool section::flag(const char* key, bool& out) const {
  YAML::Node v = get(key);
  if (!v)
    return false;
  bool b = false;
  if (!v.IsScalar() || !YAML::convert<bool>::decode(v, b))
    return bad(key, "true or false", v), false;
  out = b;
  return true;
}

bool section::choice(const char* key, std::string& out, std::initializer_list<std::string_view> options,
                     const std::string& what) const {
  std::string v;
  if (!str(key, v))
    return false;
  v = lower(v);
  if (std::find(options.begin(), options.end(), v) == options.end())
    return bad(key, what, get(key)), false;
  out = v;
  return true;
}

std::optional<section> section::sub(const char* key) const {
  YAML::Node v = get(key);
  if (!v)
    return std::nullopt;
  if (!v.IsMap())
    return bad(key, "a map", v), std::nullopt;
  return section{s_, file_, v, prefix_ + key + ".", user_home_};
}

std::vector<section> section::maps(const char* key) const {
  std::vector<section> out;
  YAML::Node v = get(key);
  if (!v)
    return out;
  if (!v.IsSequence())
    return bad(key, "a list of maps", v), out;
  size_t i = 0;
  for (const auto& item : v) {
    auto name = std::string{key} + "[" + std::to_string(i++) + "]";
    if (!item.IsMap()) {
      bad(name.c_str(), "a map", item);
      return {};
    }
    out.emplace_back(s_, file_, item, prefix_ + name + ".", user_home_);
  }
  return out;
}

void section::only(std::initializer_list<std::string_view> names) const {
  for (const auto& kv : node_) {
    std::string k = kv.first.IsScalar() ? kv.first.Scalar() : describe(kv.first);
    if (std::find(names.begin(), names.end(), k) != names.end())
      continue;
    std::string list;
    for (auto n : names)
      list += (list.empty() ? "" : ", ") + std::string{n};
    return s_.fail(file_ + ": " + prefix_ + k + ": unknown key (expected one of " + list + ")");
  }
}

std::vector<std::string> section::keys() const {
  std::vector<std::string> out;
  for (const auto& kv : node_)
    out.push_back(kv.first.IsScalar() ? kv.first.Scalar() : describe(kv.first));
  return out;
}

bool section::strings(const char* key, std::vector<std::string>& out) const {
  YAML::Node v = get(key);
  if (!v)
    return false;
  std::vector<std::string> items;
  if (v.IsScalar()) {
    items.push_back(v.Scalar());
  } else if (v.IsSequence()) {
    for (const auto& item : v) {
      if (!item.IsScalar())
        return bad(key, "a list of names", v), false;
      items.push_back(item.Scalar());
    }
  } else {
    return bad(key, "a list of names", v), false;
  }
  out = std::move(items);
  return true;
}

std::optional<section> open_yaml(sink& s, const std::string& file, const std::string& user_home) {
  std::error_code ec;
  if (!std::filesystem::exists(file, ec))
    return std::nullopt;
  std::ifstream in(file, std::ios::binary);
  std::stringstream text;
  // An empty file inserts nothing, which sets failbit on `text`: only a
  // failed open or read (badbit) is an error.
  if (in)
    text << in.rdbuf();
  if (!in || in.bad()) {
    s.fail(file + ": cannot read the file: " + std::strerror(errno));
    return std::nullopt;
  }
  try {
    YAML::Node root = YAML::Load(text.str());
    if (root.IsNull())
      root = YAML::Node(YAML::NodeType::Map);
    if (!root.IsMap()) {
      s.fail(file + ": expected a map of settings at the top level, got " + describe(root));
      return std::nullopt;
    }
    return section{s, file, root, "", user_home};
  } catch (const YAML::Exception& e) {
    s.fail(file + ": not valid YAML (line " + std::to_string(e.mark.line + 1) + ", column " +
           std::to_string(e.mark.column + 1) + "): " + e.msg);
  }
  return std::nullopt;
}

} // namespace atlas::yaml
