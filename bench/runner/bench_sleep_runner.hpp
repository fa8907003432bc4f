#pragma once

// Benchmark code, kept out of the production folders: the server links it
// and adds the runner only when atlas.config.yaml says `runner: bench-sleep`.

#include <cstdint>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "adapters/event_loop.hpp"
#include "adapters/job_runner.hpp"

namespace atlas {

/// BENCHMARK ONLY (`runner: bench-sleep` in atlas.config.yaml, never the
/// default): a job "runs" for `sleep_ms` (ATLAS_BENCH_SLEEP_MS) on a libuv timer and then exits 0,
/// without any process being spawned, so that benchmarks measure the
/// control plane (master, Redis, CAF) rather than fork/exec. A node has this
/// runner only when its configuration names it explicitly.
///
/// Thread safety: start() and signal() may be called from any thread; the
/// timers live on `loop`'s thread, where the callbacks run. The loop must
/// outlive the runner.
class bench_sleep_runner final : public job_runner {
public:
  bench_sleep_runner(event_loop& loop, uint32_t sleep_ms) : loop_(loop), sleep_ms_(sleep_ms) {}
  ~bench_sleep_runner() override;

  const char* name() const override { return "bench-sleep"; }
  void start(run_request req, std::function<void(int pid)> on_started,
             std::function<void(process_exit)> on_exit) override;
  /// Ends the job at once, as if `sig` had killed it.
  void signal(const std::string& run_id, int sig) override;

  struct job; // one sleeping job: its timer and exit callback

private:
  void end(const std::string& run_id, int sig);

  event_loop& loop_;
  uint32_t sleep_ms_;
  std::mutex mutex_;
  std::unordered_map<std::string, job*> jobs_; // owned; touched on the loop thread
};

/// How long a bench-sleep job "runs": ATLAS_BENCH_SLEEP_MS in `env`, 0 when
/// unset; nullopt when it is not a whole number of milliseconds up to an hour.
std::optional<uint32_t> bench_sleep_ms_of(const std::map<std::string, std::string>& env);

} // namespace atlas
