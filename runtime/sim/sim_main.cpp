// atlas-sim-nodes: many worker nodes in one process, for measuring the
// master against a thousand nodes on one machine (bench/thousand_nodes.py).
// Each is a whole worker node (node_runtime: its own actor system, event
// loop, certificate and link to the master, gateway, HTTP port and slots),
// joining and talking to the master exactly as a separate atlas-server
// would; only the jobs are simulated: the runner must be bench-sleep.
//
//   atlas-sim-nodes --nodes N --first-port P
//
// Node i serves HTTP on 127.0.0.1:P+i (its node id follows from it). The
// rest comes from the environment and configuration as for `atlas-server
// start --role worker` (FOUNDATIONS_HOME, REDIS_ADDRESS, NUM_WORKERS,
// ATLAS_BENCH_SLEEP_MS). Prints "ok N nodes" once every node is up, and
// stops them all on SIGTERM or SIGINT.

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/spdlog.h>

#include "library/config.hpp"
#include "runtime/logging.hpp"
#include "runtime/node_capacity.hpp"
#include "runtime/node_runtime.hpp"

using namespace atlas;

namespace {

int usage() {
  std::cerr << "usage: atlas-sim-nodes --nodes N --first-port P   (runner: bench-sleep only)\n";
  return 2;
}

/// Runs `work(i)` for i in [0, n) on a few threads: bringing a node up or
/// down mostly waits (Redis, the master's answer), so they overlap.
template <class F>
void for_each_node(size_t n, F work) {
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < std::min<size_t>(n, 16); ++t)
    threads.emplace_back([&] {
      for (size_t i; (i = next++) < n;)
        work(i);
    });
  for (auto& t : threads)
    t.join();
}

} // namespace

int main(int argc, char** argv) {
  long nodes = 0, first_port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--nodes")
      nodes = std::strtol(argv[i + 1], nullptr, 10);
    else if (a == "--first-port")
      first_port = std::strtol(argv[i + 1], nullptr, 10);
    else
      return usage();
  }
  if (argc % 2 == 0 || nodes <= 0 || nodes > 10000 || first_port <= 0
      || first_port + nodes > 65536)
    return usage();

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr); // before any thread exists
  std::signal(SIGPIPE, SIG_IGN);

  auto env = current_environment();
  start_flags flags;
  flags.role = "worker";
  std::vector<std::shared_ptr<node_config>> configs;
  for (long i = 0; i < nodes; ++i) {
    env["HOST_ADDRESS"] = "http://127.0.0.1:" + std::to_string(first_port + i) + "/";
    auto loaded = load_node_config(env, flags);
    if (!loaded.ok()) {
      std::cerr << "atlas-sim-nodes: " << loaded.error << "\n";
      return 1;
    }
    if (loaded.config.runner != "bench-sleep") {
      std::cerr << "atlas-sim-nodes: simulated nodes run no jobs: set runner: bench-sleep\n";
      return 1;
    }
    // A hundred nodes share this process's CPUs: one scheduler thread each.
    if (loaded.config.actor_threads == 0)
      loaded.config.actor_threads = 1;
    configs.push_back(std::make_shared<node_config>(loaded.config));
  }
  if (!init_logging(configs[0]->log_level, "", "sim-nodes"))
    std::cerr << "atlas-sim-nodes: unknown log level " << configs[0]->log_level << "\n";

  std::vector<std::unique_ptr<node_runtime>> runtimes(configs.size());
  std::mutex failed_mutex;
  std::vector<std::string> failed;
  for_each_node(configs.size(), [&](size_t i) {
    apply_node_capacity(*configs[i]);
    runtimes[i] = std::make_unique<node_runtime>(configs[i]);
    if (auto st = runtimes[i]->bring_up(); !st) {
      std::lock_guard<std::mutex> guard(failed_mutex);
      failed.push_back(configs[i]->node_id + ": " + st.error());
    }
  });
  if (failed.empty()) {
    std::cout << "ok " << nodes << " nodes" << std::endl;
    int sig = 0;
    while (sig <= 0)
      sig = sigwaitinfo(&stop_signals, nullptr);
    spdlog::info("signal {} received: stopping {} nodes", sig, nodes);
  } else {
    for (auto& line : failed)
      spdlog::error("{}", line);
    std::cout << "failed: " << failed.front() << std::endl;
  }
  std::atomic<bool> clean{true};
  for_each_node(runtimes.size(), [&](size_t i) {
    if (runtimes[i] && !runtimes[i]->tear_down())
      clean = false;
  });
  spdlog::default_logger()->flush();
  // Nothing is left to save: leave without a thousand actor systems'
  // destructors, some of whose threads may still be blocked inside CAF.
  std::_Exit(failed.empty() && clean ? 0 : 1);
}
