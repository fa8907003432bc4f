#pragma once

// HTTP requests and responses as messages: the libuv server turns bytes into
// an http_request, the gateway actor answers with an http_response, and both
// can cross nodes when a request is proxied to the node that owns a job.

#include <cstdint>
#include <map>
#include <string>

#include <caf/meta/type_name.hpp>

namespace atlas {

struct http_request {
  std::string method;                         // "GET", "POST", ...
  std::string path;                           // percent-decoded, without query
  std::string query;                          // raw query string, without '?'
  std::map<std::string, std::string> headers; // names in lower case
  std::string body;                           // small bodies only
  std::string upload_path;     // a streamed multipart file part, spooled to disk
  std::string upload_filename; // its client-side file name
  std::string upload_field;    // its form field name
  std::string peer;            // "ip:port" of the client
  /// Which of the node's listeners took it: "api" (5000), "gateway"
  /// (5558) or "dashboard" (5555). Set by the node, never by the client.
  std::string listener;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_request& x) {
  return f(caf::meta::type_name("atlas::http_request"), x.method, x.path, x.query,
           x.headers, x.body, x.upload_path, x.upload_filename, x.upload_field,
           x.peer, x.listener);
}

struct http_response {
  uint16_t status = 200;
  std::string content_type = "application/json";
  std::map<std::string, std::string> headers; // extra headers
  std::string body;
  /// Streamed responses (log follow): the server sends the headers with
  /// chunked transfer encoding and asks for more until `stream_done`.
  bool stream = false;
  bool stream_done = false;
  uint64_t stream_offset = 0; // where the next chunk starts
  /// Where the next chunk starts when it is not a byte offset (an event id):
  /// asked for with `after=` instead of `offset=`.
  std::string stream_cursor;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, http_response& x) {
  return f(caf::meta::type_name("atlas::http_response"), x.status, x.content_type,
           x.headers, x.body, x.stream, x.stream_done, x.stream_offset, x.stream_cursor);
}

} // namespace atlas
