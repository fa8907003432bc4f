#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <uv.h>

namespace atlas {

/// A libuv loop running on its own thread. The HTTP server and the process
/// supervisor live on it; blocking file work goes to libuv's thread pool.
///
/// Thread safety: post(), post_work(), stop() and running() may be called
/// from any thread. Callbacks given to post() run on the loop thread, in order.
/// Not copyable: the object owns the loop and its thread.
class event_loop {
public:
  event_loop();
  ~event_loop(); // stops the loop and joins its thread
  event_loop(const event_loop&) = delete;
  event_loop& operator=(const event_loop&) = delete;

  /// Starts the loop thread. Call once.
  void start();

  /// Runs `fn` on the loop thread.
  void post(std::function<void(uv_loop_t*)> fn);

  /// Runs `work` on libuv's thread pool (blocking calls allowed there).
  void post_work(std::function<void()> work);

  /// Closes every handle, finishes the loop and joins the thread.
  void stop();

  /// True from start() until the loop thread has finished (after stop()):
  /// before, a posted callback waits for start(); after, it never runs.
  bool running() const { return running_; }

  /// True when called from the loop thread itself.
  bool in_loop_thread() const;

  /// The raw loop; use only from the loop thread.
  uv_loop_t* raw() { return &loop_; }

private:
  static void on_async(uv_async_t* handle);
  void drain();

  uv_loop_t loop_;
  uv_async_t wakeup_;
  std::thread thread_;
  // Written by the loop thread as it starts, read from any thread.
  std::atomic<std::thread::id> thread_id_{};
  std::mutex mtx_;
  std::vector<std::function<void(uv_loop_t*)>> pending_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> running_{false};
};

} // namespace atlas
