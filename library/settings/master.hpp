#pragma once

// The master's queue and dispatch (actors/master*.cpp, actors/policy/).

#include <string>

namespace atlas {

struct master_settings {
  std::string placement = "spread"; // cluster.placement: spread | pack
  int max_retries = 1;              // limits.max_retries: requeues of a lost job
  int gpu_reserve_after_s = 600;    // limits.gpu_reserve_after_s: a GPU job waiting longer gets GPUs held for it

  /// "" or what is wrong, naming the setting.
  std::string validate() const;
};

} // namespace atlas
