// The request parser's callbacks of http_server, on the loop thread: they
// gather the target and headers, enforce the header and body limits before
// anything is read or invited (100 Continue), and spool uploads to disk. A
// refusal is left on the connection for consume() to answer.

#include "adapters/http_server_impl.hpp"

#include <algorithm>
#include <climits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "adapters/http_wire.hpp"

namespace atlas {

using http_wire::lower;
using http_wire::split_target;
using http_wire::trim;

namespace {

std::string too_large(uint64_t limit) {
  return "request body too large (limit " + std::to_string(limit) + " bytes)";
}

http_server::impl::conn* conn_of(http_parser* p) {
  return static_cast<http_server::impl::conn*>(p->data);
}

void add_header(http_server::impl::conn* c) {
  const std::string_view v = trim(c->value);
  auto [it, fresh] = c->req.headers.try_emplace(lower(c->field), v);
  if (!fresh) {
    it->second += ", ";
    it->second += v;
  }
  c->field.clear();
  c->value.clear();
  c->in_value = false;
}

int count_header(http_server::impl::conn* c, size_t n) {
  c->header_bytes += n;
  return c->header_bytes > c->srv->opts.max_header_bytes
           ? c->refuse(431, "request headers too large")
           : 0;
}

} // namespace

int http_server::impl::on_message_begin(http_parser* p) {
  auto* c = conn_of(p);
  c->req = http_request{};
  c->url.clear();
  c->field.clear();
  c->value.clear();
  c->in_value = false;
  c->started = true;
  c->header_bytes = c->body_bytes = 0;
  c->spool.reset();
  c->refusal.reset();
  return 0;
}

int http_server::impl::on_url(http_parser* p, const char* at, size_t n) {
  auto* c = conn_of(p);
  if (count_header(c, n) != 0)
    return -1;
  c->url.append(at, n);
  return 0;
}

int http_server::impl::on_header_field(http_parser* p, const char* at, size_t n) {
  auto* c = conn_of(p);
  if (count_header(c, n) != 0)
    return -1;
  if (c->in_value)
    add_header(c);
  c->field.append(at, n);
  return 0;
}

int http_server::impl::on_header_value(http_parser* p, const char* at, size_t n) {
  auto* c = conn_of(p);
  if (count_header(c, n) != 0)
    return -1;
  c->in_value = true;
  c->value.append(at, n);
  return 0;
}

int http_server::impl::on_headers_complete(http_parser* p) {
  auto* c = conn_of(p);
  impl& s = *c->srv;
  auto& req = c->req;
  if (c->in_value)
    add_header(c);
  req.method = http_method_str(static_cast<http_method>(p->method));
  req.peer = c->peer;
  if (!split_target(c->url, req))
    return c->refuse(400, "bad request target");
  // Who asks is settled before anything of the body is read, spooled or
  // invited with 100 Continue (e.g. a bearer token in -p mode).
  if (s.opts.header_check) {
    std::optional<http_response> early;
    try {
      early = s.opts.header_check(req);
    } catch (...) {
      return c->refuse(500, "internal error");
    }
    if (early)
      return c->refuse(std::move(*early));
  }
  const bool chunked = (p->flags & F_CHUNKED) != 0;
  const bool sized = !chunked && p->content_length != ULLONG_MAX;
  const bool upload = p->method == HTTP_POST &&
                      std::find(s.opts.upload_paths.begin(), s.opts.upload_paths.end(),
                                req.path) != s.opts.upload_paths.end();
  const uint64_t limit = upload ? s.opts.max_upload_bytes : s.opts.max_body_bytes;
  // Refused before the body is read, and before any 100 Continue invites it.
  if (sized && p->content_length > limit)
    return c->refuse(413, too_large(limit));
  if (upload) {
    auto ct = req.headers.find("content-type");
    auto boundary = ct == req.headers.end() ? std::nullopt : multipart_boundary(ct->second);
    if (!boundary)
      return c->refuse(400, "expected multipart/form-data");
    c->spool = std::make_unique<upload_spool>(s.upload_dir, *boundary);
  }
  const bool has_body = chunked || (sized && p->content_length > 0);
  auto expect = req.headers.find("expect");
  if (has_body && p->http_major == 1 && p->http_minor >= 1 && expect != req.headers.end() &&
      lower(expect->second) == "100-continue")
    s.write(c, "HTTP/1.1 100 Continue\r\n\r\n");
  return 0;
}

int http_server::impl::on_body(http_parser* p, const char* at, size_t n) {
  auto* c = conn_of(p);
  impl& s = *c->srv;
  c->body_bytes += n;
  if (c->spool) {
    if (c->body_bytes > s.opts.max_upload_bytes)
      return c->refuse(413, too_large(s.opts.max_upload_bytes));
    auto fed = c->spool->feed({at, n});
    if (!fed.ok())
      return c->refuse(c->spool->disk_error() ? 500 : 400, fed.error());
    s.arm_idle(c); // moving uploads are not slow
    return 0;
  }
  if (c->body_bytes > s.opts.max_body_bytes)
    return c->refuse(413, too_large(s.opts.max_body_bytes));
  c->req.body.append(at, n);
  return 0;
}

int http_server::impl::on_message_complete(http_parser* p) {
  auto* c = conn_of(p);
  if (c->in_value)
    add_header(c); // a trailer
  if (c->spool && !c->spool->complete())
    return c->refuse(400, "multipart body ends before its closing boundary");
  c->complete = true;
  http_parser_pause(p, 1); // one request at a time; what follows waits in `pending`
  return 0;
}

} // namespace atlas
