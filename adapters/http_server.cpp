// The server object: the impl's construction and cross-thread helpers,
// binding and closing on the loop, and the thread-safe calls that hand
// answers to a connection (whose state machine is in http_connection.cpp).

#include "adapters/http_server.hpp"

#include <chrono>
#include <filesystem>
#include <future>
#include <mutex>
#include <utility>
#include <vector>

#include "adapters/http_server_impl.hpp"
#include "adapters/tcp_listen.hpp"

namespace atlas {

namespace {

constexpr auto call_timeout = std::chrono::seconds(10); // listen()/close() waiting on the loop

} // namespace

// -- the impl, any thread -------------------------------------------------------

http_server::impl::impl(event_loop& l, http_server_options o, http_handler h)
  : loop(l), opts(std::move(o)), handler(std::move(h)) {
  settings.on_message_begin = &impl::on_message_begin;
  settings.on_url = &impl::on_url;
  settings.on_header_field = &impl::on_header_field;
  settings.on_header_value = &impl::on_header_value;
  settings.on_headers_complete = &impl::on_headers_complete;
  settings.on_body = &impl::on_body;
  settings.on_message_complete = &impl::on_message_complete;
}

std::string http_server::impl::where() const {
  const bool v6 = opts.host.find(':') != std::string::npos;
  return "cannot listen on " + (v6 ? "[" + opts.host + "]" : opts.host) + ":" +
         std::to_string(opts.port);
}

bool http_server::impl::token_open(uint64_t token) const {
  std::lock_guard<std::mutex> guard{mtx};
  return open_tokens.count(token) != 0;
}

bool http_server::impl::take_token(uint64_t token) {
  std::lock_guard<std::mutex> guard{mtx};
  return open_tokens.erase(token) != 0;
}

template <class F>
void http_server::impl::post(F fn) {
  try {
    loop.post([self = shared_from_this(), fn = std::move(fn)](uv_loop_t*) mutable {
      try {
        fn(*self);
      } catch (...) {
      }
    });
  } catch (...) {
  }
}

// -- listening ------------------------------------------------------------------

status http_server::impl::do_listen(uv_loop_t* l) {
  if (stopped)
    return status::fail(where() + ": server closed");
  if (listener != nullptr)
    return status::fail(where() + ": already listening");
  std::error_code ec;
  upload_dir = opts.upload_dir;
  if (upload_dir.empty())
    upload_dir = std::filesystem::temp_directory_path(ec).string();
  else if (std::filesystem::create_directories(upload_dir, ec); ec)
    return status::fail("cannot create upload directory " + upload_dir + ": " + ec.message());
  std::string error;
  listener = listen_tcp(l, opts.host, opts.port, this, &impl::on_connection, error);
  if (listener == nullptr)
    return status::fail(where() + ": " + error);
  bound_port = atlas::bound_port(listener);
  return status::success();
}

void http_server::impl::do_close() {
  if (listener != nullptr)
    uv_close(reinterpret_cast<uv_handle_t*>(std::exchange(listener, nullptr)),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
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
  try {
    impl_->listen_called = true;
    if (impl_->loop.in_loop_thread())
      return impl_->do_listen(impl_->loop.raw());
    if (!impl_->loop.running())
      return status::fail(impl_->where() + ": the event loop is not running");
    auto done = std::make_shared<std::promise<status>>();
    auto result = done->get_future();
    impl_->post([done](impl& s) {
      status st = status::fail(s.where() + ": out of memory");
      try {
        st = s.do_listen(s.loop.raw());
      } catch (...) {
      }
      done->set_value(std::move(st));
    });
    if (result.wait_for(call_timeout) != std::future_status::ready)
      return status::fail(impl_->where() + ": the event loop is not running");
    return result.get();
  } catch (...) {
    return status::fail(impl_->where() + ": out of memory");
  }
}

uint16_t http_server::port() const {
  return impl_->bound_port;
}

void http_server::respond(uint64_t token, http_response resp) {
  const bool last = !resp.stream || resp.stream_done;
  if (last ? !impl_->take_token(token) : !impl_->token_open(token))
    return;
  impl_->post([token, r = std::move(resp)](impl& s) {
    if (auto* c = s.find(token))
      s.answer(c, r);
  });
}

void http_server::begin_stream(uint64_t token, uint16_t status, std::string content_type) {
  if (!impl_->token_open(token))
    return;
  impl_->post([token, status, ct = std::move(content_type)](impl& s) {
    http_response r;
    r.status = status;
    r.content_type = ct;
    if (auto* c = s.find(token); c != nullptr && !c->streaming)
      s.start_stream(c, r);
  });
}

void http_server::send_chunk(uint64_t token, std::string data) {
  if (data.empty() || !impl_->token_open(token))
    return;
  impl_->post([token, d = std::move(data)](impl& s) {
    if (auto* c = s.find(token); c != nullptr && c->streaming)
      s.write_chunk(c, d);
  });
}

void http_server::end_stream(uint64_t token) {
  if (!impl_->take_token(token))
    return;
  impl_->post([token](impl& s) {
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
  try {
    if (impl_->stopped.exchange(true))
      return;
    {
      std::lock_guard<std::mutex> guard{impl_->mtx};
      impl_->open_tokens.clear();
    }
    // Nothing on the loop to close, or no loop left to close it (it closed
    // every handle when it stopped).
    if (!impl_->listen_called || !impl_->loop.running())
      return;
    if (impl_->loop.in_loop_thread())
      return impl_->do_close();
    auto done = std::make_shared<std::promise<void>>();
    auto closed = done->get_future();
    impl_->post([done](impl& s) {
      s.do_close();
      done->set_value();
    });
    // Bounded: the loop may stop before it gets to this.
    closed.wait_for(call_timeout);
  } catch (...) {
  }
}

} // namespace atlas
