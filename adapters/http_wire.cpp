#include "adapters/http_wire.hpp"

#include <cstdio>
#include <cstring>

#include <http_parser.h>

#include "adapters/utf8.hpp"

namespace atlas::http_wire {

namespace {

int hex_digit(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F')
    return ch - 'A' + 10;
  return -1;
}

bool header_safe(std::string_view s) {
  return s.find_first_of(std::string_view{"\r\n\0", 3}) == std::string_view::npos;
}

} // namespace

std::string lower(std::string_view s) {
  std::string out{s};
  for (auto& ch : out)
    if (ch >= 'A' && ch <= 'Z')
      ch = static_cast<char>(ch - 'A' + 'a');
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
    s.remove_suffix(1);
  return s;
}

std::string json_error(std::string_view message) {
  std::string out = "{\"error\":\"";
  for (size_t i = 0; i < message.size();) {
    const auto ch = static_cast<unsigned char>(message[i]);
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\u%04x", ch);
      out += esc;
    } else if (const size_t len = utf8::sequence_length(message, i); len > 1) {
      out.append(message.substr(i, len));
      i += len;
      continue;
    } else if (len == 0) {
      out += "\xEF\xBF\xBD"; // U+FFFD for a byte that is not UTF-8: still JSON
    } else {
      out += static_cast<char>(ch);
    }
    ++i;
  }
  return out + "\"}";
}

std::optional<std::string> percent_decode(std::string_view s, percent_mode mode) {
  const bool form = mode == percent_mode::form;
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char ch = s[i];
    if (ch == '+' && form) {
      ch = ' ';
    } else if (ch == '%') {
      const int hi = i + 2 < s.size() ? hex_digit(s[i + 1]) : -1;
      const int lo = i + 2 < s.size() ? hex_digit(s[i + 2]) : -1;
      if (hi >= 0 && lo >= 0) {
        ch = static_cast<char>(hi * 16 + lo);
        i += 2;
      } else if (!form) {
        return std::nullopt;
      }
    }
    if (ch == '\0' && !form) // a NUL would cut the path short in C APIs
      return std::nullopt;
    out += ch;
  }
  return out;
}

bool split_target(std::string_view target, http_request& req) {
  target = target.substr(0, target.find('#'));
  const size_t q = target.find('?');
  const std::string_view raw = target.substr(0, q);
  if (q != std::string_view::npos)
    req.query = target.substr(q + 1);
  if (raw.empty() || raw.front() != '/')
    return false;
  auto path = percent_decode(raw, percent_mode::path);
  if (!path)
    return false;
  req.path = std::move(*path);
  return true;
}

bool bodyless(uint16_t status) {
  return status < 200 || status == 204 || status == 304;
}

bool asks_to_close(const http_response& r) {
  for (auto& [k, v] : r.headers)
    if (lower(k) == "connection" && lower(trim(v)) == "close")
      return true;
  return false;
}

const char* reason_phrase(uint16_t status) {
  const char* reason = http_status_str(static_cast<http_status>(status));
  return std::strcmp(reason, "<unknown>") == 0 ? "Unknown" : reason;
}

std::string response_head(const http_response& r, bool keep_alive, int64_t length) {
  std::string out =
    "HTTP/1.1 " + std::to_string(r.status) + " " + reason_phrase(r.status) + "\r\n";
  if (!r.content_type.empty() && header_safe(r.content_type))
    out += "Content-Type: " + r.content_type + "\r\n";
  if (length < 0)
    out += "Transfer-Encoding: chunked\r\n";
  else if (!bodyless(r.status))
    out += "Content-Length: " + std::to_string(length) + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
  for (auto& [k, v] : r.headers) {
    // Framing headers are ours to write; a handler's would corrupt the stream.
    const std::string name = lower(k);
    if (name == "content-length" || name == "transfer-encoding" || name == "connection" ||
        (name == "content-type" && !r.content_type.empty()) || name.empty() ||
        !header_safe(k) || !header_safe(v))
      continue;
    out += k + ": " + v + "\r\n";
  }
  return out + "\r\n";
}

std::string chunk(std::string_view data) {
  char size[24];
  const int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out(size, static_cast<size_t>(n));
  out.append(data);
  return out + "\r\n";
}

} // namespace atlas::http_wire
