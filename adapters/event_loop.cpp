#include "adapters/event_loop.hpp"

#include <csignal>

#include <pthread.h>

namespace atlas {

namespace {

struct work_item {
  uv_work_t req;
  std::function<void()> work;
};

} // namespace

event_loop::event_loop() {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &wakeup_, &event_loop::on_async);
  wakeup_.data = this;
}

event_loop::~event_loop() {
  stop();
  if (!started_) {
    // Never run: its wake-up handle is still open, and uv_loop_close()
    // refuses (and frees nothing) while a handle is open.
    uv_close(reinterpret_cast<uv_handle_t*>(&wakeup_), nullptr);
    uv_run(&loop_, UV_RUN_DEFAULT);
  }
  uv_loop_close(&loop_);
}

void event_loop::start() {
  if (started_.exchange(true))
    return;
  running_ = true; // before the thread, so a post() right after start() is awaited
  try {
    thread_ = std::thread([this] {
      // Every socket and pipe write of the loop happens on this thread: a
      // peer that went away must give EPIPE, never kill the process,
      // whatever the embedding program does with SIGPIPE.
      sigset_t pipe;
      sigemptyset(&pipe);
      sigaddset(&pipe, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
      thread_id_.store(std::this_thread::get_id());
      uv_run(&loop_, UV_RUN_DEFAULT);
      running_ = false;
    });
  } catch (...) {
    running_ = false;
    throw;
  }
}

void event_loop::post(std::function<void(uv_loop_t*)> fn) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    pending_.push_back(std::move(fn));
  }
  uv_async_send(&wakeup_);
}

void event_loop::post_work(std::function<void()> work) {
  post([w = std::move(work)](uv_loop_t* loop) mutable {
    auto* item = new work_item{uv_work_t{}, std::move(w)};
    item->req.data = item;
    uv_queue_work(
      loop, &item->req,
      [](uv_work_t* req) { static_cast<work_item*>(req->data)->work(); },
      [](uv_work_t* req, int) { delete static_cast<work_item*>(req->data); });
  });
}

void event_loop::on_async(uv_async_t* handle) {
  static_cast<event_loop*>(handle->data)->drain();
}

void event_loop::drain() {
  std::vector<std::function<void(uv_loop_t*)>> batch;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    batch.swap(pending_);
  }
  for (auto& fn : batch)
    fn(&loop_);
  if (stopping_) {
    // Owners close their own handles first (server, pipes); whatever is left
    // is closed here so that uv_run returns once pending work has finished.
    uv_walk(
      &loop_,
      [](uv_handle_t* h, void*) {
        if (!uv_is_closing(h))
          uv_close(h, nullptr);
      },
      nullptr);
  }
}

void event_loop::stop() {
  if (!started_ || stopping_.exchange(true))
    return;
  uv_async_send(&wakeup_);
  if (thread_.joinable())
    thread_.join();
}

bool event_loop::in_loop_thread() const {
  return std::this_thread::get_id() == thread_id_.load();
}

} // namespace atlas
