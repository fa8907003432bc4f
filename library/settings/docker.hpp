#pragma once

// The Docker runner's settings (atlas.config.yaml `docker:`), turned into the
// adapter's own options by runtime/docker_setup.cpp.

#include <string>

namespace atlas {

struct container_settings {
  std::string docker_socket = "/var/run/docker.sock"; // docker.socket: the engine's unix socket
  std::string docker_image;            // docker.image: for specs that name none (required with runner: docker)
  std::string docker_network = "none"; // docker.network_mode: none | host | bridge | a network's name
  std::string docker_user;             // docker.user: "uid[:gid]" containers run as; empty: the image's
  std::string docker_python = "python3"; // docker.python: runs `python3 <command...>` in containers

  /// "" or what is wrong, naming the setting. `runner` is the node's.
  std::string validate(const std::string& runner) const;
};

} // namespace atlas
