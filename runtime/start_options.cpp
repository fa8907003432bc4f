#include "runtime/start_options.hpp"

#include <cstdlib>

namespace atlas {

namespace {

/// The original's options for services Atlas does not run, and what does
/// their work here.
const std::map<std::string, std::string>& replaced() {
  static const std::map<std::string, std::string> m = {
    {"-a", "-a/--archive-port: there is no archive server; artifacts are served by each node's "
           "API (GET /job_bundle/<job_id>, `foundations get job`)"},
    {"-t", "-t/--disable-tensorboard: no TensorBoard server runs with Atlas; "
           "`foundations tensorboard <env> <job_id>...` runs one on your machine"},
    {"-T", "-T/--tensorboard-port: no TensorBoard server runs with Atlas; "
           "`foundations tensorboard <env> <job_id>...` runs one on your machine"},
    {"-u", "-u/--auth-server-port: Atlas does not start Keycloak; point `issuer` in "
           "$FOUNDATIONS_HOME/config/auth.config.yaml at your Keycloak realm"},
  };
  return m;
}

const std::map<std::string, std::string>& long_names() {
  static const std::map<std::string, std::string> m = {
    {"--authentication", "-p"}, {"--enable-gpu", "-g"}, {"--dashboard-port", "-d"},
    {"--scheduler-host", "-s"}, {"--logs", "-l"},       {"--archive-port", "-a"},
    {"--disable-tensorboard", "-t"}, {"--tensorboard-port", "-T"}, {"--auth-server-port", "-u"},
  };
  return m;
}

bool is_port(const std::string& s) {
  if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string::npos)
    return false;
  auto n = std::strtol(s.c_str(), nullptr, 10);
  return n >= 0 && n <= 65535;
}

/// HOST_ADDRESS with its host replaced by `host` (default scheme, port 5000).
std::string with_host(const std::string& address, const std::string& host) {
  std::string scheme = "http://", rest = ":5000/";
  auto sep = address.find("://");
  if (!address.empty() && sep != std::string::npos) {
    scheme = address.substr(0, sep + 3);
    auto after = address.find_first_of(":/", sep + 3);
    rest = after == std::string::npos ? "/" : address.substr(after);
  }
  return scheme + host + rest;
}

} // namespace

start_options parse_start_options(const std::vector<std::string>& words,
                                  const std::map<std::string, std::string>& env) {
  start_options o;
  for (size_t i = 0; i < words.size() && o.error.empty(); ++i) {
    auto word = words[i];
    std::string value;
    bool has_value = false;
    if (auto eq = word.find('='); word.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = word.substr(eq + 1);
      word = word.substr(0, eq);
      has_value = true;
    }
    if (auto l = long_names().find(word); l != long_names().end())
      word = l->second;
    auto take_value = [&]() -> bool {
      if (has_value)
        return true;
      if (i + 1 >= words.size()) {
        o.error = word + " needs a value";
        return false;
      }
      value = words[++i];
      return true;
    };
    if (auto r = replaced().find(word); r != replaced().end()) {
      o.error = r->second;
    } else if (word == "-p") {
      o.flags.auth = true;
    } else if (word == "-g") {
      o.flags.gpu = true;
    } else if (word == "--foreground" || word == "-l") {
      o.foreground = true; // -l: the original streamed its services' logs; ours stay attached
    } else if (word == "--role") {
      if (take_value())
        o.flags.role = value;
    } else if (word == "-d") {
      if (take_value() && !is_port(value))
        o.error = "-d/--dashboard-port: expected a port number (0 turns the dashboard off), got '"
                  + value + "'";
      else if (o.error.empty())
        o.env["ATLAS_DASHBOARD_PORT"] = value;
    } else if (word == "-s") {
      if (take_value() && (value.empty() || value.find_first_of("/: ") != std::string::npos))
        o.error = "-s/--scheduler-host: expected a host name or IPv4 address, got '" + value + "'";
      else if (o.error.empty()) {
        auto h = env.find("HOST_ADDRESS");
        o.env["HOST_ADDRESS"] = with_host(h == env.end() ? "" : h->second, value);
      }
    } else {
      o.error = "unknown option '" + words[i] + "'";
    }
  }
  if (o.error.empty() && o.flags.role != "auto" && o.flags.role != "master"
      && o.flags.role != "worker")
    o.error = "--role: expected auto, master or worker, got '" + o.flags.role + "'";
  return o;
}

} // namespace atlas
