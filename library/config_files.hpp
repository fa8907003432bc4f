#pragma once

// Reading the configuration files: the original installer's files under
// config/local_docker_scheduler/ and atlas.config.yaml. Private to
// library/config*.cpp; load_node_config (config.cpp) assembles the result.

#include <cstdint>
#include <optional>
#include <string>

#include "library/config.hpp"
#include "library/yaml_section.hpp"

namespace atlas::config_parts {

/// Where Redis is according to the files, before role resolution.
struct redis_place {
  std::string host;
  uint16_t port = 5556;
  bool set = false;
};

/// The signal a name ("SIGUSR1", "usr1") or number ("10") stands for; 0
/// when it is none that a job could be warned with.
int signal_number(const std::string& text);

/// The original installer's files under config/local_docker_scheduler/.
void read_original_files(yaml::sink& sk, const std::string& home, const std::string& user_home,
                         node_config& c, redis_place& redis);

/// atlas.config.yaml; `managed`: redis.managed when it is set.
void read_atlas_file(yaml::sink& sk, const std::string& home, const std::string& user_home,
                     node_config& c, redis_place& redis, std::optional<bool>& managed);

} // namespace atlas::config_parts
