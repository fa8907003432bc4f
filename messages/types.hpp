#pragma once

namespace caf {
class actor_system_config;
}

namespace atlas {

/// Registers every message type and actor handle that may cross nodes.
/// Every process (server, atlas-ctl, tests) calls it on its config.
void register_message_types(caf::actor_system_config& cfg);

} // namespace atlas
