#include "runtime/cli/format.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <random>
#include <sstream>

namespace atlas::cli {

std::string new_job_id() {
  std::random_device rd;
  uint8_t b[16];
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = rd();
    std::memcpy(b + i, &r, 4);
  }
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40); // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80); // RFC 4122 variant
  static const char* hex = "0123456789abcdef";
  std::string id;
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10)
      id += '-';
    id += hex[b[i] >> 4];
    id += hex[b[i] & 15];
  }
  return id;
}

std::string format_duration(long long s) {
  s = std::max(s, 0LL);
  std::ostringstream o;
  o << std::setfill('0');
  if (s >= 3600)
    o << s / 3600 << "h" << std::setw(2) << s % 3600 / 60 << "m" << std::setw(2) << s % 60 << "s";
  else if (s >= 60)
    o << s / 60 << "m" << std::setw(2) << s % 60 << "s";
  else
    o << s << "s";
  return o.str();
}

} // namespace atlas::cli
