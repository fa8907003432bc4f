#pragma once

// Memory sizes as people write them (`--ram 4`, `mem_limit: 512m`).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace atlas {

/// A memory size as docker-py reads `mem_limit`: "4g", "512m", "1.5g",
/// "64k", "100b" (units 1024-based, case-insensitive, "gb"/"mb" accepted).
/// A bare number is a count of gigabytes when below 1 MiB (`--ram 4`), else
/// of bytes. nullopt with `error` when it is not a size.
std::optional<uint64_t> parse_memory(std::string_view text, std::string& error);


} // namespace atlas
