// The server object: the impl's construction, its tokens and the
// listener's hooks (tcp_listener does the binding, closing and posting), and
// the thread-safe calls that hand answers to a connection.

#include "adapters/http_server.hpp"

#include <filesystem>
#include <mutex>
#include <utility>
#include <vector>

#include "adapters/http_server_impl.hpp"

namespace atlas {

// -- the impl ---------------------------------------------------------------------

http_server::impl::impl(event_loop& l, http_server_options o, http_handler h)
  : tcp_listener(l, o.host, o.port, "cannot listen on " + host_port(o.host, o.port),
                 "server closed"),
    opts(std::move(o)), handler(std::move(h)) {
  settings.on_message_begin = &impl::on_message_begin;
  settings.on_url = &impl::on_url;
  settings.on_header_field = &impl::on_header_field;
  settings.on_header_value = &impl::on_header_value;
  settings.on_headers_complete = &impl::on_headers_complete;
  settings.on_body = &impl::on_body;
  settings.on_message_complete = &impl::on_message_complete;
}

bool http_server::impl::token_open(uint64_t token) const {
  std::lock_guard<std::mutex> guard{mtx};
  return open_tokens.count(token) != 0;
}

bool http_server::impl::take_token(uint64_t token) {
  std::lock_guard<std::mutex> guard{mtx};
  return open_tokens.erase(token) != 0;
}

status http_server::impl::prepare() {
  std::error_code ec;
  upload_dir = opts.upload_dir;
  if (upload_dir.empty())
    upload_dir = std::filesystem::temp_directory_path(ec).string();
  else if (std::filesystem::create_directories(upload_dir, ec); ec)
    return status::fail("cannot create upload directory " + upload_dir + ": " + ec.message());
  return status::success();
}

void http_server::impl::stopping() {
  std::lock_guard<std::mutex> guard{mtx};
  open_tokens.clear();
}

void http_server::impl::close_connections() {
  for (conn* c : std::vector<conn*>(conns.begin(), conns.end()))
    close_now(c);
  by_token.clear();
}

// -- public API -----------------------------------------------------------------

http_server::http_server(event_loop& loop, http_server_options opts, http_handler handler)
  : impl_(std::make_shared<impl>(loop, std::move(opts), std::move(handler))) {}

http_server::~http_server() {
  close();
}

status http_server::listen() {
  return impl_->listen();
}

uint16_t http_server::port() const {
  return impl_->bound_port;
}

void http_server::respond(uint64_t token, http_response resp) {
  const bool last = !resp.stream || resp.stream_done;
  if (last ? !impl_->take_token(token) : !impl_->token_open(token))
    return;
  impl_->post<impl>([token, r = std::move(resp)](impl& s) {
    if (auto* c = s.find(token))
      s.answer(c, r);
  });
}

void http_server::begin_stream(uint64_t token, uint16_t status, std::string content_type,
                               std::map<std::string, std::string> headers) {
  if (!impl_->token_open(token))
    return;
  impl_->post<impl>([token, status, ct = std::move(content_type),
                     hs = std::move(headers)](impl& s) mutable {
    http_response r;
    r.status = status;
    r.content_type = ct;
    r.headers = std::move(hs);
    if (auto* c = s.find(token); c != nullptr && !c->streaming)
      s.start_stream(c, r);
  });
}

void http_server::send_chunk(uint64_t token, std::string data) {
  if (data.empty() || !impl_->token_open(token))
    return;
  impl_->post<impl>([token, d = std::move(data)](impl& s) {
    if (auto* c = s.find(token); c != nullptr && c->streaming)
      s.write_chunk(c, d);
  });
}

void http_server::end_stream(uint64_t token) {
  if (!impl_->take_token(token))
    return;
  impl_->post<impl>([token](impl& s) {
    auto* c = s.find(token);
    if (c == nullptr)
      return;
    if (!c->streaming)
      s.start_stream(c, http_response{});
    s.end_stream(c);
  });
}

bool http_server::is_open(uint64_t token) const {
  try {
    return impl_->token_open(token);
  } catch (...) {
    return false;
  }
}

void http_server::close() {
  impl_->close();
}

} // namespace atlas
