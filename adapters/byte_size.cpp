#include "adapters/byte_size.hpp"

#include <cctype>
#include <cmath>
#include <cstdlib>

namespace atlas {

namespace {

constexpr uint64_t mib = 1ull << 20;

} // namespace

std::optional<uint64_t> parse_memory(std::string_view text, std::string& error) {
  std::string s;
  for (char c : text)
    if (c != ' ' && c != '\t')
      s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto bad = [&] {
    error = "spec.mem_limit: expected a size such as 4g, 512m or a number of GB, got '"
            + std::string(text) + "'";
    return std::nullopt;
  };
  if (s.size() > 1 && s.back() == 'b' && std::string("kmgt").find(s[s.size() - 2]) != std::string::npos)
    s.pop_back(); // "4gb" reads as "4g"
  uint64_t unit = 0;
  if (!s.empty() && std::string("bkmgt").find(s.back()) != std::string::npos) {
    switch (s.back()) {
      case 'b': unit = 1; break;
      case 'k': unit = 1ull << 10; break;
      case 'm': unit = 1ull << 20; break;
      case 'g': unit = 1ull << 30; break;
      default: unit = 1ull << 40; break;
    }
    s.pop_back();
  }
  if (s.empty() || s.find_first_not_of("0123456789.") != std::string::npos
      || s.find('.') != s.rfind('.') || s == ".")
    return bad();
  double n = std::strtod(s.c_str(), nullptr);
  if (unit == 0) // a bare number: gigabytes when small (`--ram 4`), bytes otherwise
    unit = n < static_cast<double>(mib) ? 1ull << 30 : 1;
  double bytes = std::floor(n * static_cast<double>(unit));
  if (!(bytes >= 0) || bytes > 9.0e18)
    return bad();
  return static_cast<uint64_t>(bytes);
}

} // namespace atlas
