#pragma once

// The runners a node has, and which one runs a given job. Plain C++ (no
// actors) so the choice is unit-tested alone.

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "adapters/job_runner.hpp"
#include "messages/job.hpp"
#include "library/config.hpp"

namespace atlas {

class job_runners {
public:
  /// Adds a runner under its name(); a later one with the same name wins.
  void add(std::unique_ptr<job_runner> runner);

  /// The runner called `name`, or nullptr.
  job_runner* find(std::string_view name) const;

  /// The runner for `job` on a node configured as `cfg`: "docker" when the
  /// job's spec names an image and this node has that runner, else the
  /// configured `runner`. nullptr with `error` when this node cannot run it.
  job_runner* choose(const node_config& cfg, const job_record& job, std::string& error) const;

private:
  std::vector<std::unique_ptr<job_runner>> runners_;
};

} // namespace atlas
