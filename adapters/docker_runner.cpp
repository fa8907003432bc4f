#include "adapters/docker_runner.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <mutex>
#include <thread>

#include <spdlog/spdlog.h>

#include "adapters/docker_spec.hpp"
#include "adapters/event_loop.hpp"

namespace atlas {

struct docker_runner::run {
  run_request req;
  std::function<void(int)> on_started;
  std::function<void(process_exit)> on_exit;
  std::mutex mutex;
  std::string container;  // its id, once created
  int pending_signal = 0; // asked for before the container existed
  std::shared_ptr<std::atomic<bool>> done = std::make_shared<std::atomic<bool>>(false);
};

struct docker_runner::core {
  explicit core(docker_settings s) : settings(std::move(s)), client(settings.socket) {}
  docker_settings settings;
  docker_client client;
  std::atomic<bool> closing{false};
  std::mutex mutex;
  std::map<std::string, std::shared_ptr<run>> runs; // by job id, until on_exit
  std::vector<std::pair<std::shared_ptr<std::atomic<bool>>, std::thread>> threads;

  void execute(const std::shared_ptr<run>& r);
  void finish(const std::shared_ptr<run>& r, process_exit ex);
};

namespace {

const char* signal_word(int sig) {
  switch (sig) {
    case SIGTERM: return "SIGTERM";
    case SIGKILL: return "SIGKILL";
    case SIGINT: return "SIGINT";
    default: return nullptr;
  }
}

/// Samples a running container's CPU time and memory every two seconds on
/// its own thread (the engine tells nothing once the container has exited):
/// the last CPU figure and the largest memory figure are what the job used,
/// to within one interval.
class usage_sampler {
public:
  usage_sampler(const docker_client& client, std::string id)
      : thread_([this, &client, id = std::move(id)] {
          std::unique_lock<std::mutex> lock{mutex_};
          while (!stopping_) {
            lock.unlock();
            auto sample = client.stats(id);
            lock.lock();
            if (sample.ok()) {
              used_.cpu_seconds = std::max(used_.cpu_seconds, sample.value().cpu_seconds);
              used_.memory_bytes = std::max(used_.memory_bytes, sample.value().memory_bytes);
            }
            cv_.wait_for(lock, std::chrono::seconds(2), [this] { return stopping_; });
          }
        }) {}
  usage_sampler(const usage_sampler&) = delete;
  usage_sampler& operator=(const usage_sampler&) = delete;
  ~usage_sampler() { stop(); }

  container_usage stop() {
    {
      std::lock_guard<std::mutex> g{mutex_};
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable())
      thread_.join();
    return used_;
  }

private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  container_usage used_;
  std::thread thread_; // last: it starts once the rest is there
};

/// Appends a run's output to its log file, up to the cap (as process runs do).
class log_writer {
public:
  log_writer(const std::string& path, uint64_t cap) : cap_(cap) {
    if (!path.empty())
      file_ = std::fopen(path.c_str(), "ab");
  }
  ~log_writer() {
    if (file_)
      std::fclose(file_);
  }
  log_writer(const log_writer&) = delete;
  log_writer& operator=(const log_writer&) = delete;

  void write(std::string_view data) {
    if (!file_ || truncated_)
      return;
    auto room = written_ >= cap_ ? 0 : std::min<uint64_t>(cap_ - written_, data.size());
    std::fwrite(data.data(), 1, room, file_);
    written_ += room;
    if (room < data.size()) {
      truncated_ = true;
      auto marker = "\n[atlas] log truncated after " + std::to_string(cap_) + " bytes\n";
      std::fwrite(marker.data(), 1, marker.size(), file_);
    }
    std::fflush(file_); // followers of the log see it as it comes
  }
  bool truncated() const { return truncated_; }

private:
  std::FILE* file_ = nullptr;
  uint64_t cap_;
  uint64_t written_ = 0;
  bool truncated_ = false;
};

} // namespace

void docker_runner::core::finish(const std::shared_ptr<run>& r, process_exit ex) {
  {
    std::lock_guard<std::mutex> g{mutex};
    runs.erase(r->req.run_id);
  }
  if (!closing)
    r->on_exit(std::move(ex));
  *r->done = true;
}

void docker_runner::core::execute(const std::shared_ptr<run>& r) {
  auto& req = r->req;
  auto& s = settings;
  process_exit ex;
  docker::container_options o;
  o.job_id = req.job_id;
  o.node_id = s.node_id;
  o.default_image = s.default_image;
  o.network_mode = s.network_mode;
  o.user = s.user;
  o.python = s.python;
  o.work_dir = s.working_dir_root + "/" + req.job_id;
  o.cwd = req.cwd;
  o.results_root = s.results_root;
  o.config_dir = s.config_dir;
  o.volume_roots = s.volume_roots;
  o.env = docker::container_env(req.env, s.node_env, docker::spec_env_names(req.spec_json));
  o.gpus = req.gpus;
  o.cpus = req.cpus;
  auto body = docker::create_body(req.spec_json, o, ex.error);
  if (!body)
    return finish(r, std::move(ex));

  // One container per run (job and slot); a leftover of an earlier try goes first.
  auto name = "atlas-" + req.run_id;
  auto created = client.create(name, *body);
  if (!created.ok() && created.error().find("already in use") != std::string::npos) {
    client.remove(name);
    created = client.create(name, *body);
  }
  if (!created.ok()) {
    ex.error = created.error();
    return finish(r, std::move(ex));
  }
  auto id = created.value();
  int pending = 0;
  {
    std::lock_guard<std::mutex> g{r->mutex};
    r->container = id;
    pending = r->pending_signal;
  }
  if (closing) {
    client.remove(id);
    return finish(r, std::move(ex));
  }
  if (auto started = client.start(id); !started.ok()) {
    client.remove(id);
    ex.error = started.error();
    return finish(r, std::move(ex));
  }
  spdlog::info("container started job_id={} node={} container={}", req.job_id, s.node_id,
               id.substr(0, 12));
  r->on_started(0);
  if (pending != 0)
    if (auto w = signal_word(pending))
      client.kill(id, w);
  usage_sampler sampler{client, id};

  {
    log_writer log{req.log_path, req.log_cap_bytes};
    docker::log_demux demux;
    auto followed = client.follow_logs(id, [&](std::string_view chunk) {
      demux.feed(chunk, [&](int, std::string_view payload) { log.write(payload); });
    });
    if (!followed.ok())
      spdlog::warn("job_id={} logs not followed: {}", req.job_id, followed.error());
    ex.log_truncated = log.truncated();
  }
  auto waited = client.wait(id);
  if (waited.ok()) {
    ex.exit_status = waited.value();
  } else {
    ex.failure = "lost the container: " + waited.error();
  }
  auto used = sampler.stop();
  ex.cpu_seconds = used.cpu_seconds;
  ex.peak_memory_bytes = used.memory_bytes;
  if (auto st = client.inspect(id); st.ok() && st.value().oom_killed)
    ex.failure = "out of memory";
  if (auto removed = client.remove(id); !removed.ok())
    spdlog::warn("job_id={} container={} not removed: {}", req.job_id, id.substr(0, 12),
                 removed.error());
  finish(r, std::move(ex));
}

docker_runner::docker_runner(docker_settings settings, event_loop& loop)
    : core_(std::make_shared<core>(std::move(settings))), loop_(loop) {}

docker_runner::~docker_runner() {
  core_->closing = true;
  std::vector<std::string> containers;
  {
    std::lock_guard<std::mutex> g{core_->mutex};
    for (auto& [id, r] : core_->runs) {
      std::lock_guard<std::mutex> rg{r->mutex};
      if (!r->container.empty())
        containers.push_back(r->container);
    }
  }
  for (auto& c : containers) // ends their log streams and waits
    core_->client.remove(c);
  std::vector<std::pair<std::shared_ptr<std::atomic<bool>>, std::thread>> threads;
  {
    std::lock_guard<std::mutex> g{core_->mutex}; // not held below: finishing runs take it
    threads.swap(core_->threads);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (auto& [done, t] : threads) {
    while (!*done && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    if (*done)
      t.join();
    else
      t.detach(); // the engine hangs: the thread keeps `core` alive and ends on its own
  }
}

void docker_runner::start(run_request req, std::function<void(int pid)> on_started,
                          std::function<void(process_exit)> on_exit) {
  auto r = std::make_shared<run>();
  r->req = std::move(req);
  r->on_started = std::move(on_started);
  r->on_exit = std::move(on_exit);
  std::lock_guard<std::mutex> g{core_->mutex};
  // Threads of runs that ended are joined here, so they do not pile up.
  auto& threads = core_->threads;
  for (auto i = threads.begin(); i != threads.end();) {
    if (*i->first) {
      i->second.join();
      i = threads.erase(i);
    } else {
      ++i;
    }
  }
  core_->runs[r->req.run_id] = r;
  threads.emplace_back(r->done, std::thread([c = core_, r] { c->execute(r); }));
}

void docker_runner::signal(const std::string& run_id, int sig) {
  std::shared_ptr<run> r;
  {
    std::lock_guard<std::mutex> g{core_->mutex};
    auto it = core_->runs.find(run_id);
    if (it == core_->runs.end())
      return;
    r = it->second;
  }
  std::string container;
  {
    std::lock_guard<std::mutex> g{r->mutex};
    if (r->container.empty()) {
      r->pending_signal = sig;
      return;
    }
    container = r->container;
  }
  auto word = signal_word(sig);
  if (word == nullptr)
    return;
  // A short call, but still blocking: off the caller's (CAF) thread.
  loop_.post_work([c = core_, container, word, job_id = r->req.job_id] {
    if (auto k = c->client.kill(container, word); !k.ok())
      spdlog::debug("job_id={} {} not delivered: {}", job_id, word, k.error());
  });
}

int docker_runner::remove_leftovers(std::string& error) {
  auto listed = core_->client.list_labelled("atlas.node", core_->settings.node_id);
  if (!listed.ok()) {
    error = listed.error();
    return -1;
  }
  int removed = 0;
  for (auto& c : listed.value()) {
    if (auto r = core_->client.remove(c.id); r.ok()) {
      ++removed;
      spdlog::warn("removed container {} of job_id={} left by this node's previous run",
                   c.id.substr(0, 12), c.job_id);
    } else {
      error = r.error();
    }
  }
  return removed;
}

bool docker_runner::available(std::string& error) const {
  auto p = core_->client.ping();
  if (!p.ok())
    error = p.error();
  return p.ok();
}

} // namespace atlas
