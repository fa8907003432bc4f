#pragma once

// HTTP/1.1 on the wire, without sockets: the pure helpers the server uses to
// read a request target and to write status lines, headers, chunks and JSON
// error bodies. No state, no allocation beyond the returned strings; any
// thread. Kept apart from the connection code so they can be tested alone.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "messages/http.hpp"

namespace atlas::http_wire {

/// `s` in lower case (ASCII only).
std::string lower(std::string_view s);

/// `s` without leading and trailing spaces and tabs.
std::string_view trim(std::string_view s);

/// {"error":"<message>"} with quotes, backslashes and control characters
/// escaped, and bytes that are not UTF-8 replaced by U+FFFD (valid JSON
/// whatever the message quotes).
std::string json_error(std::string_view message);

/// Where percent-decoded text comes from, which sets how strict decoding is.
enum class percent_mode {
  path, ///< a request path: a bad or truncated %-escape or a NUL fails it
  form, ///< a query's key or value as forms send it: '+' is a space, a bad escape stays as written
};

/// `s` with its %XX escapes decoded; nullopt only in `path` mode (see there).
std::optional<std::string> percent_decode(std::string_view s, percent_mode mode);

/// Splits a request target into `req.path` (percent-decoded) and `req.query`
/// (raw, without '?'); a fragment is dropped. False when the path does not
/// start with '/', has a bad or truncated %-escape, or decodes to a NUL;
/// `req.path` is then left as it was (`req.query` may already be set).
bool split_target(std::string_view target, http_request& req);

/// True for statuses that never carry a body: 1xx, 204 and 304.
bool bodyless(uint16_t status);

/// True when the handler set "Connection: close" in `r.headers`.
bool asks_to_close(const http_response& r);

/// The reason phrase of `status` ("Not Found"), "Unknown" for one http_parser
/// does not know.
const char* reason_phrase(uint16_t status);

/// The status line and headers, ending with the blank line. `length` < 0
/// means chunked; otherwise Content-Length is written unless the status is
/// bodyless. From `r.headers`, framing headers (Content-Length,
/// Transfer-Encoding, Connection), Content-Type when `r.content_type` is set,
/// and any header with an empty name or a CR, LF or NUL in it are dropped; an
/// unsafe `r.content_type` is dropped too.
std::string response_head(const http_response& r, bool keep_alive, int64_t length);

/// One chunk of a chunked body: hex size, CRLF, data, CRLF. Empty `data`
/// gives the terminating chunk's size line, so callers skip it.
std::string chunk(std::string_view data);

} // namespace atlas::http_wire
