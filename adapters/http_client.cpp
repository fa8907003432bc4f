#include "adapters/http_client.hpp"

#include <curl/curl.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

namespace atlas {
namespace {

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

/// One easy handle and what it owns; freed on scope exit.
class easy {
public:
  easy() : h_(curl_easy_init()) {}
  ~easy() {
    if (mime_)
      curl_mime_free(mime_);
    if (headers_)
      curl_slist_free_all(headers_);
    if (h_)
      curl_easy_cleanup(h_);
  }
  easy(const easy&) = delete;
  easy& operator=(const easy&) = delete;

  CURL* get() const { return h_; }
  void header(const std::string& line) { headers_ = curl_slist_append(headers_, line.c_str()); }
  curl_slist* headers() const { return headers_; }
  curl_mime* mime() {
    if (!mime_)
      mime_ = curl_mime_init(h_);
    return mime_;
  }

  char errbuf[CURL_ERROR_SIZE] = {};

private:
  CURL* h_;
  curl_slist* headers_ = nullptr;
  curl_mime* mime_ = nullptr;
};

/// What the write callback does with the body.
struct sink {
  CURL* h = nullptr;
  std::string* body = nullptr;       // non-2xx bodies (or every body when no other target)
  const chunk_fn* on_data = nullptr; // 2xx bodies of streams
  std::FILE* file = nullptr;         // 2xx bodies of downloads
  std::string failure;               // set when the callback aborts the transfer
};

bool is_2xx(CURL* h) {
  long code = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
  return code >= 200 && code < 300;
}

size_t on_write(char* data, size_t, size_t n, void* user) {
  auto* s = static_cast<sink*>(user);
  if ((s->on_data || s->file) && is_2xx(s->h)) {
    if (s->file) {
      if (std::fwrite(data, 1, n, s->file) != n) {
        s->failure = std::string{"cannot write the downloaded file: "} + std::strerror(errno);
        return 0; // aborts the transfer
      }
      return n;
    }
    (*s->on_data)(std::string_view{data, n});
    return n;
  }
  s->body->append(data, n);
  return n;
}

int on_progress(void* user, curl_off_t, curl_off_t, curl_off_t ultotal, curl_off_t ulnow) {
  const auto* p = static_cast<const progress_fn*>(user);
  (*p)(static_cast<uint64_t>(ulnow), static_cast<uint64_t>(ultotal));
  return 0;
}

/// "http://host:port" of a URL, for messages.
std::string origin_of(const std::string& url) {
  auto scheme = url.find("://");
  auto start = scheme == std::string::npos ? 0 : scheme + 3;
  auto end = url.find_first_of("/?#", start);
  return url.substr(0, end);
}

std::string lower_first(std::string s) {
  if (!s.empty() && s[0] >= 'A' && s[0] <= 'Z' && (s.size() < 2 || !(s[1] >= 'A' && s[1] <= 'Z')))
    s[0] = static_cast<char>(s[0] - 'A' + 'a');
  return s;
}

/// One readable line for a failed transfer.
std::string describe(CURLcode rc, const easy& e, const std::string& url, const http_options& o,
                     const sink& s, bool streaming) {
  if (!s.failure.empty())
    return s.failure;
  const std::string where = o.peer + " at " + (o.unix_socket.empty() ? origin_of(url) : o.unix_socket);
  long code = 0, os_errno = 0;
  curl_easy_getinfo(e.get(), CURLINFO_RESPONSE_CODE, &code);
  curl_easy_getinfo(e.get(), CURLINFO_OS_ERRNO, &os_errno);
  std::string detail = e.errbuf[0] ? e.errbuf : curl_easy_strerror(rc);
  switch (rc) {
  case CURLE_COULDNT_CONNECT:
    return "cannot reach " + where + ": " +
           (os_errno ? lower_first(std::strerror(static_cast<int>(os_errno))) : detail);
  case CURLE_COULDNT_RESOLVE_HOST:
    return "cannot reach " + where + ": unknown host name";
  case CURLE_OPERATION_TIMEDOUT:
    if (code == 0 && !streaming) {
      double connect = 0;
      curl_easy_getinfo(e.get(), CURLINFO_CONNECT_TIME, &connect);
      if (connect <= 0)
        return "cannot reach " + where + ": no answer within " + std::to_string(o.connect_timeout_s) + " s";
      return where + " did not answer within " + std::to_string(o.request_timeout_s) + " s";
    }
    return streaming ? "the transfer with " + where + " stalled for " + std::to_string(o.stall_timeout_s) + " s"
                     : where + " did not answer within " + std::to_string(o.request_timeout_s) + " s";
  case CURLE_GOT_NOTHING:
    return where + " closed the connection without answering";
  case CURLE_RECV_ERROR:
  case CURLE_SEND_ERROR:
  case CURLE_PARTIAL_FILE:
    return "the connection to " + where + " was lost: " + lower_first(detail);
  case CURLE_ABORTED_BY_CALLBACK:
    return "the request to " + where + " was abandoned";
  case CURLE_READ_ERROR:
    return "cannot read the file to upload: " + lower_first(detail);
  default:
    return "cannot talk to " + where + ": " + lower_first(detail);
  }
}

/// Sets what every call shares.
void common_setup(easy& e, const std::string& url, const http_options& o, sink& s) {
  CURL* h = e.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, e.errbuf);
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, o.connect_timeout_s);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
  curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 15L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
  if (!o.unix_socket.empty())
    curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, o.unix_socket.c_str());
  if (!o.token.empty())
    e.header("Authorization: Bearer " + o.token);
  if (!o.ca_file.empty())
    curl_easy_setopt(h, CURLOPT_CAINFO, o.ca_file.c_str());
  e.header("Expect:"); // no 100-continue round trip before bodies
  for (const auto& line : o.headers)
    e.header(line);
  s.h = h;
}

int on_cancel_check(void* user, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<const std::atomic<bool>*>(user)->load() ? 1 : 0;
}

void bounded(easy& e, const http_options& o) {
  curl_easy_setopt(e.get(), CURLOPT_TIMEOUT, o.request_timeout_s);
  if (o.cancel != nullptr) { // curl calls this about once a second while idle
    curl_easy_setopt(e.get(), CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e.get(), CURLOPT_XFERINFOFUNCTION, on_cancel_check);
    curl_easy_setopt(e.get(), CURLOPT_XFERINFODATA, o.cancel);
  }
}

void stall_limited(easy& e, const http_options& o) {
  curl_easy_setopt(e.get(), CURLOPT_TIMEOUT, 0L);
  if (o.stall_timeout_s > 0) {
    curl_easy_setopt(e.get(), CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(e.get(), CURLOPT_LOW_SPEED_TIME, o.stall_timeout_s);
  }
}

/// Runs the transfer and fills `r`.
void perform(easy& e, const std::string& url, const http_options& o, sink& s, http_result& r,
             bool streaming) {
  curl_easy_setopt(e.get(), CURLOPT_HTTPHEADER, e.headers());
  CURLcode rc = curl_easy_perform(e.get());
  curl_easy_getinfo(e.get(), CURLINFO_RESPONSE_CODE, &r.status);
  if (rc != CURLE_OK)
    r.error = describe(rc, e, url, o, s, streaming);
}

http_result no_handle() {
  http_result r;
  r.error = "cannot start an HTTP request (libcurl could not allocate a handle)";
  return r;
}

} // namespace

namespace http_client {

http_result request(const std::string& method, const std::string& url, std::string_view body,
                    const std::string& content_type, const http_options& opts) {
  global_init();
  easy e;
  if (!e.get())
    return no_handle();
  http_result r;
  sink s;
  s.body = &r.body;
  common_setup(e, url, opts, s);
  bounded(e, opts);
  CURL* h = e.get();
  if (method == "GET")
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  else if (method == "POST")
    curl_easy_setopt(h, CURLOPT_POST, 1L);
  else
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  if (!content_type.empty() || method == "POST") {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.empty() ? "" : body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    if (!content_type.empty())
      e.header("Content-Type: " + content_type);
  }
  e.header("Accept: application/json, */*");
  perform(e, url, opts, s, r, false);
  return r;
}

http_result get(const std::string& url, const http_options& opts) {
  return request("GET", url, {}, "", opts);
}

http_result del(const std::string& url, const http_options& opts) {
  return request("DELETE", url, {}, "", opts);
}

http_result post_json(const std::string& url, std::string_view json, const http_options& opts) {
  return request("POST", url, json, "application/json", opts);
}

http_result patch_json(const std::string& url, std::string_view json, const http_options& opts) {
  return request("PATCH", url, json, "application/json", opts);
}

http_result upload_file(const std::string& url, const std::string& field, const std::string& file_path,
                        const std::string& file_name, const progress_fn& progress,
                        const http_options& opts) {
  global_init();
  http_result r;
  if (std::FILE* f = std::fopen(file_path.c_str(), "rb"))
    std::fclose(f);
  else
    return r.error = "cannot read " + file_path + ": " + std::strerror(errno), r;
  easy e;
  if (!e.get())
    return no_handle();
  sink s;
  s.body = &r.body;
  common_setup(e, url, opts, s);
  stall_limited(e, opts);
  curl_mimepart* part = curl_mime_addpart(e.mime());
  curl_mime_name(part, field.c_str());
  if (curl_mime_filedata(part, file_path.c_str()) != CURLE_OK)
    return r.error = "cannot read " + file_path, r;
  curl_mime_filename(part, file_name.c_str());
  curl_mime_type(part, "application/octet-stream");
  curl_easy_setopt(e.get(), CURLOPT_MIMEPOST, e.mime());
  if (progress) {
    curl_easy_setopt(e.get(), CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(e.get(), CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(e.get(), CURLOPT_XFERINFODATA, &progress);
  }
  perform(e, url, opts, s, r, true);
  return r;
}

http_result stream_get(const std::string& url, const chunk_fn& on_data, const http_options& opts) {
  global_init();
  easy e;
  if (!e.get())
    return no_handle();
  http_result r;
  sink s;
  s.body = &r.body;
  s.on_data = &on_data;
  common_setup(e, url, opts, s);
  stall_limited(e, opts);
  curl_easy_setopt(e.get(), CURLOPT_HTTPGET, 1L);
  perform(e, url, opts, s, r, true);
  return r;
}

http_result download_to_file(const std::string& url, const std::string& file_path,
                             const http_options& opts) {
  global_init();
  http_result r;
  std::FILE* f = std::fopen(file_path.c_str(), "wb");
  if (!f)
    return r.error = "cannot create " + file_path + ": " + std::strerror(errno), r;
  easy e;
  if (!e.get()) {
    std::fclose(f);
    std::remove(file_path.c_str());
    return no_handle();
  }
  sink s;
  s.body = &r.body;
  s.file = f;
  common_setup(e, url, opts, s);
  stall_limited(e, opts);
  curl_easy_setopt(e.get(), CURLOPT_HTTPGET, 1L);
  perform(e, url, opts, s, r, true);
  if (std::fclose(f) != 0 && r.error.empty() && r.ok())
    r.error = "cannot write " + file_path + ": " + std::strerror(errno);
  if (!r.ok())
    std::remove(file_path.c_str());
  return r;
}

std::string escape(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

} // namespace http_client
} // namespace atlas
