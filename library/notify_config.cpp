// Reads the `notifications:` section of atlas.config.yaml.

#include "library/notify_config.hpp"

#include "library/notify_policy.hpp"
#include "library/yaml_section.hpp"

namespace atlas {

namespace {

bool safe_name(const std::string& n) {
  return !n.empty() && n.size() <= 64
         && n.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
              == std::string::npos;
}

/// What both kinds share: filters and delivery limits.
void read_common(const yaml::section& s, notify_sink_settings& out) {
  if (s.strings("events", out.events))
    for (auto& e : out.events)
      if (notify::event_state_name(e).empty())
        return s.bad("events", "job states among queued, pending, running, completed, failed, "
                               "cancelled (or stopped), lost", s.get("events"));
  s.strings("projects", out.projects);
  s.strings("users", out.users);
  s.whole("timeout_s", out.timeout_s, 1, 3600, " of seconds");
  s.whole("connect_timeout_s", out.connect_timeout_s, 1, 3600, " of seconds");
  s.whole("max_queue", out.max_queue, 1, 1000000, " of events");
  s.whole("max_tries", out.max_tries, 1, 100, "");
  if (s.str("name", out.name) && !safe_name(out.name))
    s.bad("name", "a name of letters, digits, '_' or '-'", s.get("name"));
}

} // namespace

void read_notifications_section(const yaml::section& s, node_config& c) {
  s.only({"webhooks", "slack"});
  size_t i = 0;
  for (auto& w : s.maps("webhooks")) {
    w.only({"name", "url", "secret", "secret_env", "events", "projects", "users", "timeout_s",
            "connect_timeout_s", "max_queue", "max_tries"});
    notify_sink_settings k;
    k.kind = "webhook";
    k.name = "webhook-" + std::to_string(++i);
    read_common(w, k);
    if (!w.str("url", k.url))
      w.bad("url", "the URL notifications are POSTed to (required)", w.get("url"));
    w.str("secret", k.secret);
    w.str("secret_env", k.secret_env);
    if (!k.secret.empty() && !k.secret_env.empty())
      w.bad("secret_env", "either secret or secret_env, not both", w.get("secret_env"));
    c.notify_sinks.push_back(std::move(k));
  }
  if (auto sl = s.sub("slack")) {
    sl->only({"name", "token_env", "channel", "job_notification_channel", "events", "projects",
              "users", "api_url", "timeout_s", "connect_timeout_s", "max_queue", "max_tries"});
    notify_sink_settings k;
    k.kind = "slack";
    k.name = "slack";
    k.url = "https://slack.com/api/chat.postMessage";
    k.secret_env = "FOUNDATIONS_SLACK_TOKEN";
    read_common(*sl, k);
    sl->str("token_env", k.secret_env);
    // The original's setting name, accepted as well.
    if (!sl->str("channel", k.channel))
      sl->str("job_notification_channel", k.channel);
    sl->str("api_url", k.url);
    c.notify_sinks.push_back(std::move(k));
  }
}

std::string finish_notify_config(node_config& c, const std::map<std::string, std::string>& env) {
  for (size_t i = 0; i < c.notify_sinks.size(); ++i) {
    auto& k = c.notify_sinks[i];
    if (k.secret_env.empty())
      continue;
    auto it = env.find(k.secret_env);
    if (it != env.end() && !it->second.empty()) {
      k.secret = it->second;
      continue;
    }
    if (!c.is_master)
      continue; // workers send nothing
    auto key = k.kind == "slack" ? std::string{"notifications.slack.token_env"}
                                 : "notifications.webhooks[" + std::to_string(i) + "].secret_env";
    return key + ": the environment variable " + k.secret_env + " is not set (it holds the "
           + (k.kind == "slack" ? "Slack token" : "webhook's signing secret") + ")";
  }
  return {};
}

} // namespace atlas
