#pragma once
// UTF-8 validation for text we write into JSON: strict RFC 3629, as JSON
// parsers check it (simdjson, Python's json): no overlong forms, no
// surrogates, nothing above U+10FFFF.
#include <cstddef>
#include <string_view>

namespace atlas::utf8 {

/// The length (1 to 4) of the valid UTF-8 sequence starting at `s[i]`, or 0
/// when the bytes there are not one. `i` must be inside `s`.
inline size_t sequence_length(std::string_view s, size_t i) {
  auto at = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const unsigned char c = at(0);
  if (c < 0x80)
    return 1;
  size_t len = 0;
  unsigned char lo = 0x80, hi = 0xBF; // allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    lo = c == 0xE0 ? 0xA0 : 0x80; // no overlong
    hi = c == 0xED ? 0x9F : 0xBF; // no surrogate
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    lo = c == 0xF0 ? 0x90 : 0x80; // no overlong
    hi = c == 0xF4 ? 0x8F : 0xBF; // at most U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size() || at(1) < lo || at(1) > hi)
    return 0;
  for (size_t k = 2; k < len; ++k)
    if ((at(k) & 0xC0) != 0x80)
      return 0;
  return len;
}

} // namespace atlas::utf8
