#pragma once

// The dashboard's routes, served by the gateway on every listener (the page
// itself only on "dashboard"): the in-job tracking API, the v2beta REST API
// of the original dashboard plus what the page needs (metric series, the
// cluster), the page's static files and the jobs' artifacts.

#include "actors/gateway/gateway_state.hpp"

namespace atlas::gateway {

/// Answers `req` and returns true when it is one of the dashboard's routes;
/// returns false (and answers nothing) otherwise.
bool route_dashboard(gateway_ptr self, answer& rp, const http_request& req);

} // namespace atlas::gateway
