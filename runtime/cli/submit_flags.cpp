#include "runtime/cli/submit_flags.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>

#include "adapters/byte_size.hpp"
#include "library/job_codec.hpp"

namespace atlas::cli {

namespace {

/// A plain decimal number ("12", "1.5"); nullopt for anything else
/// (signs, exponents, "inf" and "nan" included).
std::optional<double> decimal(std::string_view s) {
  if (s.empty() || s == "." || s.find_first_not_of("0123456789.") != std::string_view::npos
      || s.find('.') != s.rfind('.'))
    return std::nullopt;
  return std::strtod(std::string(s).c_str(), nullptr);
}

std::optional<double> whole(std::string_view s) {
  if (s.empty() || s.find_first_not_of("0123456789") != std::string_view::npos || s.size() > 9)
    return std::nullopt;
  return std::strtod(std::string(s).c_str(), nullptr);
}

std::string_view trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
    s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
    s.remove_suffix(1);
  return s;
}

constexpr double max_time_limit_s = 1e9; // what the server accepts

/// "MM:SS" or "H:MM:SS".
std::optional<double> clock_time(std::string_view s) {
  std::vector<std::string_view> parts;
  for (size_t start = 0;;) {
    auto colon = s.find(':', start);
    parts.push_back(s.substr(start, colon - start));
    if (colon == std::string_view::npos)
      break;
    start = colon + 1;
  }
  if (parts.size() < 2 || parts.size() > 3)
    return std::nullopt;
  double total = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    auto v = whole(parts[i]);
    // Below the first part, minutes and seconds stay under 60.
    if (!v || (i > 0 && (*v >= 60 || parts[i].size() != 2)))
      return std::nullopt;
    total = total * 60 + *v;
  }
  return total;
}

} // namespace

std::optional<double> parse_time_limit(std::string_view text) {
  auto s = trimmed(text);
  std::optional<double> seconds;
  if (s.find(':') != std::string_view::npos) {
    seconds = clock_time(s);
  } else if (!s.empty()) {
    double unit = 1;
    switch (std::tolower(static_cast<unsigned char>(s.back()))) {
      case 's': unit = 1; s.remove_suffix(1); break;
      case 'm': unit = 60; s.remove_suffix(1); break;
      case 'h': unit = 3600; s.remove_suffix(1); break;
      case 'd': unit = 86400; s.remove_suffix(1); break;
      default: break;
    }
    if (auto n = decimal(s))
      seconds = *n * unit;
  }
  if (!seconds || !(*seconds > 0) || *seconds > max_time_limit_s)
    return std::nullopt;
  return seconds;
}

std::optional<std::vector<std::string>> parse_after(std::string_view text) {
  std::vector<std::string> out;
  for (size_t start = 0;;) {
    auto comma = text.find(',', start);
    auto item = trimmed(text.substr(start, comma - start));
    auto dep = parse_dependency(item);
    if (!dep)
      return std::nullopt;
    out.push_back(dep->job_id + ":" + dep->when);
    if (comma == std::string_view::npos)
      break;
    start = comma + 1;
  }
  if (out.size() > max_dependencies)
    return std::nullopt;
  return out;
}

std::optional<double> parse_cpus(std::string_view text) {
  auto n = decimal(trimmed(text));
  if (!n || !(*n > 0) || *n > 1e6)
    return std::nullopt;
  return n;
}

std::optional<std::string> parse_memory_flag(std::string_view text) {
  std::string norm;
  for (char c : text)
    if (!std::isspace(static_cast<unsigned char>(c)))
      norm += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string error;
  auto bytes = parse_memory(norm, error);
  if (!bytes || *bytes == 0)
    return std::nullopt;
  return norm;
}

std::optional<std::string> parse_ram_gb(std::string_view text) {
  auto s = trimmed(text);
  auto n = decimal(s);
  if (!n || !(*n > 0) || *n > 1e6)
    return std::nullopt;
  return std::string(s) + "g";
}

} // namespace atlas::cli
