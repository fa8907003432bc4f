#include "actors/policy/job_runners.hpp"

#include "adapters/docker_spec.hpp"

namespace atlas {

void job_runners::add(std::unique_ptr<job_runner> runner) {
  runners_.insert(runners_.begin(), std::move(runner));
}

job_runner* job_runners::find(std::string_view name) const {
  for (auto& r : runners_)
    if (name == r->name())
      return r.get();
  return nullptr;
}

job_runner* job_runners::choose(const node_config& cfg, const job_record& job,
                                std::string& error) const {
  // A spec that names an image runs in a container where the node has Docker.
  if (cfg.runner != "docker" && !docker::spec_image(job.spec).empty())
    if (auto* d = find("docker"))
      return d;
  if (auto* r = find(cfg.runner))
    return r;
  error = "this node has no '" + cfg.runner + "' runner";
  return nullptr;
}

} // namespace atlas
