#include "runtime/docker_setup.hpp"

#include <memory>

#include <spdlog/spdlog.h>

#include "actors/policy/job_runners.hpp"
#include "adapters/docker_runner.hpp"

namespace atlas {

docker_settings docker_settings_of(const node_config& cfg) {
  docker_settings s;
  s.socket = cfg.docker_socket;
  s.node_id = cfg.node_id;
  s.default_image = cfg.docker_image;
  s.network_mode = cfg.docker_network;
  s.user = cfg.docker_user;
  s.python = cfg.docker_python;
  s.working_dir_root = cfg.working_dir_root;
  s.results_root = cfg.job_results_root;
  s.config_dir = cfg.foundations_home + "/config";
  s.volume_roots = {cfg.working_dir_root, cfg.job_results_root};
  s.node_env = current_environment();
  return s;
}

bool add_docker_runner(job_runners& runners, const node_config& cfg, event_loop& loop) {
  auto runner = std::make_unique<docker_runner>(docker_settings_of(cfg), loop);
  std::string why;
  bool up = runner->available(why);
  if (up) {
    if (runner->remove_leftovers(why) < 0)
      spdlog::warn("cannot list this node's leftover containers node={}: {}", cfg.node_id, why);
    spdlog::info("Docker engine at {} node={}: jobs whose spec names an image run in containers{}",
                 cfg.docker_socket, cfg.node_id,
                 cfg.runner == "docker" ? ", and so does every other job" : "");
  } else if (cfg.runner == "docker") {
    spdlog::warn("runner docker, but {} (container jobs fail until the engine answers) node={}",
                 why, cfg.node_id);
  } else {
    return false; // no Docker here: every job runs as a process
  }
  runners.add(std::move(runner));
  return true;
}

} // namespace atlas
