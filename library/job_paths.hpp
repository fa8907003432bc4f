#pragma once

// Where a job's files live. One place, so the slot that writes them and the
// gateway that serves them agree.

#include <string>

#include "library/config.hpp"

namespace atlas {

struct job_paths {
  std::string bundle;       // <job_store_dir_root>/<id>.tgz, as uploaded
  std::string bundle_owner; // <job_store_dir_root>/<id>.owner: who uploaded it (job_files.hpp)
  std::string work_dir;     // <working_dir_root>/<id>/, the extracted bundle
  std::string log;          // <job_results_root>/logs/<id>.log, kept until delete
  std::string archive_dir;  // <job_results_root>/archive/<id>/
  std::string artifacts;    // <archive_dir>/artifacts: the working dir after the run

  static job_paths of(const node_config& cfg, const std::string& job_id) {
    job_paths p;
    p.bundle = cfg.job_store_dir_root + "/" + job_id + ".tgz";
    p.bundle_owner = cfg.job_store_dir_root + "/" + job_id + ".owner";
    p.work_dir = cfg.working_dir_root + "/" + job_id;
    p.log = cfg.job_results_root + "/logs/" + job_id + ".log";
    p.archive_dir = cfg.job_results_root + "/archive/" + job_id;
    p.artifacts = p.archive_dir + "/artifacts";
    return p;
  }
};

} // namespace atlas
