#pragma once

// The HTTP/1.1 server: libuv for the sockets, http_parser for the bytes.
// It turns requests into atlas::http_request values for one handler and
// writes back whatever is answered for their token, from any thread.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adapters/event_loop.hpp"
#include "adapters/status.hpp"
#include "messages/http.hpp"

namespace atlas {

/// Decides a request from its request line and headers alone, before any
/// byte of its body is read. Runs on the loop thread once per request, as
/// soon as its headers are complete, so it must not block (no I/O). `req`
/// holds method, path, query, headers and peer; its body and upload fields
/// are empty. nullopt lets the request go on as usual. A response is sent at
/// once with `Connection: close` (it may not be a stream): the body is never
/// read, spooled or acknowledged with 100 Continue, the handler never sees
/// the request, and the connection closes after the answer. A check that
/// throws counts as a 500 answer.
using http_header_check = std::function<std::optional<http_response>(const http_request& req)>;

/// Limits and places. Every limit answers with a JSON error body
/// ({"error":"..."}) and closes the connection.
struct http_server_options {
  std::string host = "127.0.0.1"; // IPv4 or IPv6 literal
  uint16_t port = 0;              // 0 = ephemeral, see http_server::port()
  uint64_t max_header_bytes = 64 << 10;   // request line + headers; beyond: 431
  uint64_t max_body_bytes = 1 << 20;      // bodies kept in memory; beyond: 413
  uint64_t max_upload_bytes = 1ull << 30; // bodies of upload routes; beyond: 413
  /// Where upload routes spool their file part (created if missing); empty
  /// means the system's temporary directory.
  std::string upload_dir;
  /// POST to one of these paths with a multipart/form-data body streams the
  /// first file part to disk instead of into http_request::body.
  std::vector<std::string> upload_paths = {"/job_bundle", "/api/v1/bundles"};
  /// An idle keep-alive connection is closed after this long, and a request
  /// must arrive (headers and body) within it; an upload that keeps sending
  /// restarts it with every slice. It never runs while a handler holds the
  /// request (unless writing the answer stalls for this long). 0 or less: none.
  int idle_timeout_ms = 60000;
  /// Runs before the body limits and the upload spool (see above); empty:
  /// every request is read whole.
  http_header_check header_check;
};

/// Receives each complete request with the token that answers it (respond or
/// the stream calls). Runs on the loop thread: it must not block; it may
/// answer at once or hand the token to someone else. For an upload route,
/// req.upload_path names a file that now belongs to the handler (move or
/// delete it); it is empty when the body held no file part.
using http_handler = std::function<void(http_request&& req, uint64_t token)>;

/// An HTTP/1.1 server on an event_loop: keep-alive, pipelining (answers in
/// order, one request in flight per connection), `Expect: 100-continue`,
/// chunked request bodies, chunked (streamed) responses, multipart uploads
/// spooled to disk, body/header limits and an idle timeout.
///
/// Lifetime: create it after the loop and destroy (or close()) it before the
/// loop stops; the loop must be running for listen() and close() to finish.
/// Not copyable. No exception leaves it; failures come back as status or as
/// the connection being closed.
class http_server {
public:
  http_server(event_loop& loop, http_server_options opts, http_handler handler);
  ~http_server(); // calls close()
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  /// Binds and listens, and creates the upload directory. May be called from
  /// any thread (on the loop thread it runs inline, elsewhere it posts and
  /// waits). The error names the address and the reason, e.g. "cannot listen
  /// on 127.0.0.1:5000: address already in use".
  status listen();

  /// The bound port once listen() succeeded (the real one when asked for 0),
  /// else 0. Any thread.
  uint16_t port() const;

  /// Answers the request `token`. Thread-safe; a token that is unknown,
  /// already answered or whose client went away is ignored. With
  /// `resp.stream` set this begins (or continues) a chunked stream with
  /// `resp.body` as its next chunk and ends it when `resp.stream_done`.
  void respond(uint64_t token, http_response resp);

  /// Sends the status line and headers of a chunked response; the token stays
  /// open for send_chunk() until end_stream(). Thread-safe.
  void begin_stream(uint64_t token, uint16_t status, std::string content_type,
                    std::map<std::string, std::string> headers = {});

  /// Sends one chunk (ignored before begin_stream()). Empty data is skipped
  /// (it would end the stream). A client that falls more than 16 MiB behind
  /// is disconnected. Thread-safe.
  void send_chunk(uint64_t token, std::string data);

  /// Sends the terminating chunk (an empty 200 stream when begin_stream()
  /// never came); the connection then serves its next request or closes.
  /// Thread-safe.
  void end_stream(uint64_t token);

  /// True while `token` still wants an answer (or more chunks): false once it
  /// was answered or its client went away. Thread-safe.
  bool is_open(uint64_t token) const;

  /// Stops listening and closes every connection; later calls to the other
  /// members do nothing. Idempotent; any thread (inline on the loop thread).
  /// After it returns the handler is not called again.
  void close();

  struct impl; // the loop-side state; public only so the source's helpers can name it

private:
  std::shared_ptr<impl> impl_; // shared with callbacks still queued on the loop
};

} // namespace atlas
