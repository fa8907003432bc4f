#pragma once

// The command line of `atlas-server start`: ours (-p, -g, --role,
// --foreground) and the original installer's (-d, -s, -l and the long
// names), which mean the same here; the original's options for services
// that do not exist here are refused with one line naming what replaces
// them. Plain C++, no I/O.

#include <map>
#include <string>
#include <vector>

#include "library/config.hpp"

namespace atlas {

struct start_options {
  start_flags flags;
  bool foreground = false;
  /// Environment settings the options stand for (-d: ATLAS_DASHBOARD_PORT,
  /// -s: HOST_ADDRESS), applied before the configuration is read.
  std::map<std::string, std::string> env;
  std::string error; // "" when the line was understood
};

/// Parses the words after `start`. `env` is the process environment (-s
/// keeps an explicit HOST_ADDRESS's port and path).
start_options parse_start_options(const std::vector<std::string>& words,
                                  const std::map<std::string, std::string>& env);

} // namespace atlas
