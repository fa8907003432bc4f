#include "library/tracking/env.hpp"

namespace atlas {

void add_tracking_env(const node_config& cfg, const job_record& job,
                      std::map<std::string, std::string>& env) {
  if (!job.job_secret.empty())
    env["ATLAS_JOB_SECRET"] = job.job_secret;
  auto api = cfg.host_address;
  while (!api.empty() && api.back() == '/')
    api.pop_back();
  env["ATLAS_API_URL"] = api;
  if (!cfg.sdk_dir.empty()) {
    auto& path = env["PYTHONPATH"];
    path = path.empty() ? cfg.sdk_dir : cfg.sdk_dir + ":" + path;
  }
}

} // namespace atlas
