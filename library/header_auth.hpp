#pragma once

// -p mode at the HTTP server's header stage (DESIGN.md §8): the bearer token
// is verified from the request's headers before any of its body is read, so
// a client without a valid token cannot make a node read or spool a large
// upload. The gateway's auth gate (actors/gateway/auth_check.cpp) still verifies the
// whole request and decides who may do what; this check only refuses
// earlier, with the same answers.

#include <memory>
#include <string>

#include "adapters/http_server.hpp"
#include "library/config.hpp"

namespace atlas {

class event_loop;
class oidc_client;

/// The node's OpenID client for `cfg`'s auth settings, one per process and
/// settings, so that the header check and the gateway share one key cache
/// (and one JWKS fetch per refresh interval). Thread-safe.
std::shared_ptr<oidc_client> node_oidc_client(const node_config& cfg);

/// The header-stage check for the listener `listener` ("api", "gateway" or
/// "dashboard"), to set as http_server_options::header_check; empty when
/// `cfg->auth` is off. Routes exempt from auth (auth::exempt) pass. A valid
/// token passes; a bad one gets the gateway's 401. A token signed by a key
/// not known yet passes when the request has no body (the gateway fetches
/// the keys and decides); with a body it gets 503 + Retry-After while the
/// keys are being fetched or have never loaded, else 401. Starts the first
/// key fetch on `loop`'s thread pool. The check runs on the loop thread and
/// never blocks: verification reads the cached keys only, fetches go to the
/// thread pool. `loop` must outlive the check.
http_header_check header_auth_check(std::shared_ptr<const node_config> cfg,
                                    std::string listener, event_loop& loop);

} // namespace atlas
