#pragma once

// A thin, blocking HTTP client over libcurl for the CLI and for helpers that
// run off the actor threads (OIDC/JWKS fetches, the Docker Engine API over a
// unix socket). No CAF here.
//
// Contract: every call is blocking and self-contained (one curl easy handle
// per call), so any thread may call any function at the same time; callbacks
// run on the calling thread. Nothing throws: a transport failure comes back as
// `http_result::error`, an HTTP error status as `status` with the body kept.

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace atlas {

/// The outcome of one HTTP exchange.
struct http_result {
  long status = 0;   // HTTP status code; 0 when no response arrived
  std::string body;  // response body (for stream_get/download_to_file: only when status is not 2xx)
  std::string error; // transport error, one readable line; empty when the HTTP exchange happened
  /// The exchange happened and the status is 2xx.
  bool ok() const { return error.empty() && status >= 200 && status < 300; }
};

/// Per-call settings. Defaults suit a CLI talking to a scheduler.
struct http_options {
  std::string token = "None";        // sent as `Authorization: Bearer <token>` (the original client sent "None"); empty: no header
  std::string peer = "the server";   // names the other side in errors: "cannot reach <peer> at <url>: ..."
  long connect_timeout_s = 5;
  long request_timeout_s = 60;       // total time of get/post/del/patch/request; 0 = unbounded
  long stall_timeout_s = 60;         // upload/download/stream: abort after this long below 1 byte/s; 0 = never
  std::string unix_socket;           // when set, connect through this unix socket (Docker Engine API)
  std::vector<std::string> headers;  // extra "Name: value" lines
  std::string ca_file;               // https: trust this CA bundle (self-signed Keycloak) instead of the system's
  /// request()/get()/post_json()...: the transfer is abandoned soon (within
  /// about a second) after this turns true, e.g. when its owner stops.
  const std::atomic<bool>* cancel = nullptr;
};

/// Upload progress: bytes sent so far and the total (0 while unknown).
using progress_fn = std::function<void(uint64_t sent, uint64_t total)>;
/// Receives each chunk of a streamed body as it arrives.
using chunk_fn = std::function<void(std::string_view chunk)>;

namespace http_client {

/// Any method with an optional body (`content_type` empty: no body is sent).
http_result request(const std::string& method, const std::string& url, std::string_view body,
                    const std::string& content_type, const http_options& opts = {});

http_result get(const std::string& url, const http_options& opts = {});
http_result del(const std::string& url, const http_options& opts = {});
/// POST with a JSON body (Content-Type: application/json).
http_result post_json(const std::string& url, std::string_view json, const http_options& opts = {});
/// PATCH with a JSON body.
http_result patch_json(const std::string& url, std::string_view json, const http_options& opts = {});

/// POSTs `file_path` as multipart/form-data field `field` named `file_name`.
/// No total timeout; aborts when the transfer stalls (opts.stall_timeout_s).
http_result upload_file(const std::string& url, const std::string& field, const std::string& file_path,
                        const std::string& file_name, const progress_fn& progress = {},
                        const http_options& opts = {});

/// GETs `url` and hands each received chunk of a 2xx body to `on_data`;
/// returns when the server ends the response. A non-2xx body is collected
/// into `body` instead. Set opts.stall_timeout_s = 0 for streams that may be
/// silent for long (TCP keep-alive still detects a dead peer).
http_result stream_get(const std::string& url, const chunk_fn& on_data, const http_options& opts = {});

/// GETs `url` into `file_path` (created or truncated). On a non-2xx answer or
/// a failed transfer the file is removed and the answer's body is in `body`.
http_result download_to_file(const std::string& url, const std::string& file_path,
                             const http_options& opts = {});

/// `text` percent-encoded for a URL's query value or path segment: the
/// RFC 3986 unreserved characters as they are, every other byte as %XX.
std::string escape(std::string_view text);

} // namespace http_client
} // namespace atlas
