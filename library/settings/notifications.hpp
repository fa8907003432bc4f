#pragma once

// Notifications of job transitions (library/notifier.hpp): the `notifications:`
// section of atlas.config.yaml, read by library/notify_config.cpp.

#include <string>
#include <vector>

namespace atlas {

/// One place notifications go: a generic webhook or Slack.
struct notify_sink_settings {
  std::string name;       // its cursor in Redis and its label in /metrics: "slack", "webhook-1" or `name:`
  std::string kind;       // "webhook" or "slack"
  std::string url;        // webhooks: where to POST; slack: the chat.postMessage URL (api_url)
  std::string secret;     // webhook HMAC key / Slack token, resolved; never logged
  std::string secret_env; // the variable it came from (secret_env / token_env), for messages
  std::string channel;    // slack only
  std::vector<std::string> events;   // job states sent; empty: queued, running, completed, failed, cancelled
  std::vector<std::string> projects; // empty: every project
  std::vector<std::string> users;    // empty: every user
  int timeout_s = 10;         // total time of one try (connect included)
  int connect_timeout_s = 5;  // connecting, within timeout_s
  int max_queue = 1000;       // events waiting for this sink; when full the oldest is dropped
  int max_tries = 5;          // tries per event (the original tried Slack 5 times)
};

struct notification_settings {
  std::vector<notify_sink_settings> notify_sinks; // notifications.webhooks, then notifications.slack

  /// "" or what is wrong, naming the setting.
  std::string validate() const;
};

} // namespace atlas
