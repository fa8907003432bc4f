#include "library/config_hosts.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cctype>

#include "library/config.hpp"
#include "library/yaml_section.hpp"

namespace atlas::config_parts {

using yaml::lower;
using yaml::parse_whole;

std::optional<address> split_address(std::string_view s) {
  address a;
  if (auto pos = s.find("://"); pos != std::string_view::npos) {
    a.scheme = lower(std::string{s.substr(0, pos)});
    s.remove_prefix(pos + 3);
  }
  auto slash = s.find('/');
  if (slash != std::string_view::npos) {
    a.rest = std::string{s.substr(slash)};
    s = s.substr(0, slash);
  }
  std::string_view port;
  const bool bracketed = !s.empty() && s.front() == '[';
  if (bracketed) {
    auto close = s.find(']');
    if (close == std::string_view::npos)
      return std::nullopt;
    a.host = std::string{s.substr(1, close - 1)};
    s.remove_prefix(close + 1);
    if (!s.empty() && s.front() != ':')
      return std::nullopt;
    port = s.empty() ? s : s.substr(1);
  } else if (auto colon = s.rfind(':'); colon != std::string_view::npos) {
    a.host = std::string{s.substr(0, colon)};
    port = s.substr(colon + 1);
  } else {
    a.host = std::string{s};
  }
  if (a.host.empty() || a.host.find_first_of(bracketed ? " \t@/" : " \t@/:") != std::string::npos)
    return std::nullopt;
  if (!port.empty() || (!s.empty() && s.back() == ':')) {
    auto p = parse_whole(port);
    if (!p || *p == 0 || *p > 65535)
      return std::nullopt;
    a.port = static_cast<uint16_t>(*p);
  }
  return a;
}

/// Names of this master in the original installer's files.
bool is_original_alias(const std::string& host) {
  return host == "atlas-ce-tracker" || host == "redis" || host == "scheduler" ||
         host == "localhost";
}

/// "host:port" items (a YAML list, or one string split at commas) as
/// sentinels; false when one is not host:port.
bool parse_sentinels(const std::vector<std::string>& items, std::vector<std::string>& out,
                     std::string& bad) {
  out.clear();
  for (auto& item : items) {
    std::string_view rest{item};
    while (!rest.empty()) {
      auto comma = rest.find(',');
      std::string one{rest.substr(0, comma)};
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
      one.erase(0, one.find_first_not_of(" \t"));
      one.erase(one.find_last_not_of(" \t") + 1);
      auto a = split_address(one);
      if (!a || !a->port || !a->scheme.empty()) {
        bad = one;
        return false;
      }
      out.push_back(a->host + ":" + std::to_string(*a->port));
    }
  }
  return true;
}

/// Loopback addresses tell nodes on one machine apart; "localhost" is 127.0.0.1.
bool same_host(std::string a, std::string b) {
  a = lower(a);
  b = lower(b);
  auto canonical = [](std::string& h) {
    if (h == "localhost")
      h = "127.0.0.1";
  };
  canonical(a);
  canonical(b);
  return a == b;
}

/// Whether `host` is this machine: loopback, the HOST_ADDRESS host, the host
/// name, or an address of a local interface.
bool names_this_host(std::string host, const std::string& own_host) {
  host = lower(host);
  if (host.empty())
    return false;
  if (host == lower(own_host) || host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0)
    return true;
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) == 0) {
    std::string n = lower(name);
    if (host == n || host == n.substr(0, n.find('.')))
      return true;
  }
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0)
    return false;
  bool found = false;
  for (ifaddrs* i = list; i && !found; i = i->ifa_next) {
    if (!i->ifa_addr)
      continue;
    char buf[INET6_ADDRSTRLEN] = {};
    const void* src = nullptr;
    if (i->ifa_addr->sa_family == AF_INET)
      src = &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr;
    else if (i->ifa_addr->sa_family == AF_INET6)
      src = &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr;
    if (src && inet_ntop(i->ifa_addr->sa_family, src, buf, sizeof buf))
      found = host == buf;
  }
  freeifaddrs(list);
  return found;
}

std::string safe_segment(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-')
      c = '_';
  return s;
}

} // namespace atlas::config_parts

namespace atlas {

bool is_loopback_host(const std::string& host) {
  auto h = yaml::lower(host);
  return h == "localhost" || h.rfind("127.", 0) == 0 || h == "::1" || h == "[::1]";
}

} // namespace atlas
