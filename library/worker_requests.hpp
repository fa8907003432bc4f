#pragma once

// POST and DELETE /workers (the original scheduler's slot routes): which
// node and which slot a request names. Pure, so that it is unit-tested.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace atlas {

/// The node a POST /workers adds a slot to: the body's "node" when it names
/// one, else `answering` (the node the client asked). An empty body is
/// fine (the original client sends none); anything else must be a JSON
/// object. nullopt with `error` set when the body is not understood.
std::optional<std::string> worker_node_of(std::string_view body, const std::string& answering,
                                          std::string& error);

/// The slot key ("<node>/<index>") a DELETE /workers/... names:
/// /workers/<node>/<index>, /workers/<node>%2F<index>, or the original's
/// /workers/<index> for a slot of `answering`. nullopt when malformed.
std::optional<std::string> worker_key_of(const std::vector<std::string>& parts,
                                         const std::string& answering);

} // namespace atlas
