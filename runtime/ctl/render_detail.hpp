#pragma once

// Pieces shared by atlas-ctl's tables (render.cpp) and its JSON
// (render_json.cpp). Private to those two files.

#include <cstddef>
#include <string>
#include <vector>

#include "messages/introspection.hpp"

namespace atlas::ctl::detail {

/// `x` formatted by snprintf with `fmt` (one double).
std::string printf_string(const char* fmt, double x);

/// True when `filter` is empty (all nodes) or names `node_id`.
bool node_matches(const std::string& filter, const std::string& node_id);

/// Busy slots, GPUs and running jobs of a node.
struct node_totals {
  size_t busy = 0;
  std::vector<std::string> gpus;
  std::vector<std::string> jobs;
};

node_totals totals(const node_view& n);

/// The actors of node `node` ("" = all), ordered by node, name, id.
std::vector<actor_stats> sorted_actors(std::vector<actor_stats> xs, const std::string& node);

} // namespace atlas::ctl::detail
