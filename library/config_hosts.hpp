#pragma once

// Host names and addresses in the configuration: splitting URL-ish texts,
// telling whether two names are the same machine or this one. Private to
// library/config*.cpp.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace atlas::config_parts {

/// host[:port] of a URL-ish text: "http://h:1/", "h:1", "[::1]:1", "redis://h:1/0".
struct address {
  std::string scheme, host, rest;
  std::optional<uint16_t> port;
};

std::optional<address> split_address(std::string_view s);

/// Names of this master in the original installer's files.
bool is_original_alias(const std::string& host);

/// "host:port" items (a YAML list, or one string split at commas) as
/// sentinels; false when one is not host:port.
bool parse_sentinels(const std::vector<std::string>& items, std::vector<std::string>& out,
                     std::string& bad);

/// Loopback addresses tell nodes on one machine apart; "localhost" is 127.0.0.1.
bool same_host(std::string a, std::string b);

/// Whether `host` is this machine: loopback, the HOST_ADDRESS host, the host
/// name, or an address of a local interface.
bool names_this_host(std::string host, const std::string& own_host);

/// A host name made safe as a path segment (node ids).
std::string safe_segment(std::string s);

} // namespace atlas::config_parts
