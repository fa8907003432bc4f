#include "bench/runner/bench_sleep_runner.hpp"

#include <charconv>

namespace atlas {

struct bench_sleep_runner::job {
  uv_timer_t timer;
  std::string id;
  bench_sleep_runner* owner = nullptr;
  std::function<void(process_exit)> on_exit;
};

namespace {

void free_job(uv_handle_t* h) {
  delete static_cast<bench_sleep_runner::job*>(h->data);
}

} // namespace

bench_sleep_runner::~bench_sleep_runner() {
  // The loop has stopped by now (the node stops it before the runners go)
  // and closed the timers; what is left is freed here.
  std::lock_guard<std::mutex> guard(mutex_);
  if (!loop_.running())
    for (auto& [id, j] : jobs_)
      delete j;
  jobs_.clear();
}

void bench_sleep_runner::start(run_request req, std::function<void(int pid)> on_started,
                               std::function<void(process_exit)> on_exit) {
  loop_.post([this, id = std::move(req.run_id), on_started = std::move(on_started),
              on_exit = std::move(on_exit)](uv_loop_t* loop) mutable {
    on_started(0); // nothing local to signal: no process group
    auto* j = new job{uv_timer_t{}, id, this, std::move(on_exit)};
    uv_timer_init(loop, &j->timer);
    j->timer.data = j;
    {
      std::lock_guard<std::mutex> guard(mutex_);
      jobs_[id] = j;
    }
    uv_update_time(loop); // count the time from now, not from the loop's last tick
    uv_timer_start(
      &j->timer,
      [](uv_timer_t* t) {
        auto* j = static_cast<job*>(t->data);
        j->owner->end(j->id, 0);
      },
      sleep_ms_, 0);
  });
}

void bench_sleep_runner::signal(const std::string& run_id, int sig) {
  loop_.post([this, run_id, sig](uv_loop_t*) { end(run_id, sig); });
}

void bench_sleep_runner::end(const std::string& run_id, int sig) {
  job* j = nullptr;
  {
    std::lock_guard<std::mutex> guard(mutex_);
    auto it = jobs_.find(run_id);
    if (it == jobs_.end())
      return; // already ended
    j = it->second;
    jobs_.erase(it);
  }
  uv_timer_stop(&j->timer);
  process_exit ex;
  ex.exit_status = sig ? -1 : 0;
  ex.term_signal = sig;
  auto on_exit = std::move(j->on_exit);
  uv_close(reinterpret_cast<uv_handle_t*>(&j->timer), free_job);
  on_exit(std::move(ex));
}

std::optional<uint32_t> bench_sleep_ms_of(const std::map<std::string, std::string>& env) {
  auto v = env.find("ATLAS_BENCH_SLEEP_MS");
  if (v == env.end() || v->second.empty())
    return 0;
  uint32_t ms = 0;
  auto& s = v->second;
  auto [end, bad] = std::from_chars(s.data(), s.data() + s.size(), ms);
  if (bad != std::errc{} || end != s.data() + s.size() || ms > 3600000)
    return std::nullopt;
  return ms;
}

} // namespace atlas
