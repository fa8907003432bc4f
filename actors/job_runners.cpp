#include "actors/job_runners.hpp"

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

job_runner* job_runners::choose(const node_config& cfg, const job_record&,
                                std::string& error) const {
  if (auto* r = find(cfg.runner))
    return r;
  error = "this node has no '" + cfg.runner + "' runner";
  return nullptr;
}

} // namespace atlas
