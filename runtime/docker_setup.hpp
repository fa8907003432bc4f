#pragma once

// Gives a node its Docker runner: when `runner: docker` is configured, or
// when the engine answers on docker.socket (so that jobs whose spec names
// an image run in containers). Clears the containers a killed previous run
// of this node left behind.

#include "library/config.hpp"

namespace atlas {

class event_loop;
class job_runners;

/// The docker runner's settings from the node's configuration.
struct docker_settings docker_settings_of(const node_config& cfg);

/// Adds the docker runner to `runners` when this node has (or is configured
/// for) Docker. Blocking (pings the engine, removes leftovers): call at
/// start-up before any job runs. Returns whether it was added.
bool add_docker_runner(job_runners& runners, const node_config& cfg, event_loop& loop);

} // namespace atlas
