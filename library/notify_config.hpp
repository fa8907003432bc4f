#pragma once

// The `notifications:` section of atlas.config.yaml (library/notifier.hpp):
// webhooks and Slack. Its keys are checked strictly: a misspelt `events:`
// would otherwise notify nobody, silently.

#include <map>
#include <string>

#include "library/config.hpp"

namespace atlas {

namespace yaml {
class section;
}

/// Reads `notifications:` into c.notify_sinks; an unknown key or a bad
/// value fails the load, naming the key.
void read_notifications_section(const yaml::section& s, node_config& c);

/// Resolves each sink's secret_env / token_env from `env`. "" or, on the
/// master (the only node that sends), the variable that is not set.
std::string finish_notify_config(node_config& c, const std::map<std::string, std::string>& env);

} // namespace atlas
