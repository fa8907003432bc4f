#pragma once

// Configuration of a node and of the CLI: the Atlas files under
// $FOUNDATIONS_HOME/config/ (layout of the original installer), then
// atlas.config.yaml, then environment variables, which win. Defaults live in
// the structs below and nowhere else.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "adapters/status.hpp"
#include "library/settings/auth.hpp"
#include "library/settings/cluster.hpp"
#include "library/settings/docker.hpp"
#include "library/settings/gateway.hpp"
#include "library/settings/master.hpp"
#include "library/settings/node.hpp"
#include "library/settings/notifications.hpp"
#include "library/settings/redis.hpp"
#include "library/settings/retention.hpp"
#include "library/settings/scheduling.hpp"
#include "library/settings/slot.hpp"

namespace atlas {

/// Everything `atlas-server start` needs to know about this node: one
/// settings struct per component (library/settings/), each with its own
/// validate(), assembled here so that `cfg.<setting>` reads the same
/// everywhere. A component that needs only its own part takes that part.
struct node_config : node_settings,
                     gateway_settings,
                     redis_settings,
                     cluster_settings,
                     master_settings,
                     slot_settings,
                     container_settings,
                     auth_settings,
                     scheduling_settings,
                     notification_settings,
                     retention_settings {
  /// Each component's validate(), then what spans components (distinct
  /// ports). "" or the first thing wrong, naming the setting.
  std::string validate() const;
};

/// What `foundations` reads from submission/<env>.config.yaml.
struct submission_config {
  std::string env_name;
  std::string file;                 // the file it was read from
  std::string scheduler_url = "http://127.0.0.1:5558"; // no trailing '/'
  std::string working_dir_root;
  std::string job_results_root;
  std::string job_store_dir_root;
  std::string container_config_root;
};

/// Flags of `atlas-server start` that shape the configuration.
struct start_flags {
  bool auth = false;       // -p
  bool gpu = false;        // -g
  std::string role = "auto";
};

/// The result of loading: a config, warnings (unknown keys), or one error
/// line naming the file, the key and what was expected.
template <class T>
struct loaded {
  T config;
  std::vector<std::string> warnings;
  std::string error; // empty when loading succeeded
  bool ok() const { return error.empty(); }
};

/// Loads the node configuration. `env` is the process environment (tests pass
/// their own). Never throws.
loaded<node_config> load_node_config(const std::map<std::string, std::string>& env,
                                     const start_flags& flags);

/// Loads submission/<env_name>.config.yaml under `home`.
loaded<submission_config> load_submission_config(const std::string& home,
                                                 const std::string& env_name);

/// Writes the original installer's files under <home>/config with local
/// defaults where they do not exist yet (existing files are never touched).
status write_default_config(const std::string& home);

/// The process environment as a map.
std::map<std::string, std::string> current_environment();

/// 127.x, ::1 or localhost (any case): an address of this machine only.
bool is_loopback_host(const std::string& host);

/// $FOUNDATIONS_HOME, or ~/.foundations.
std::string foundations_home(const std::map<std::string, std::string>& env);

} // namespace atlas
