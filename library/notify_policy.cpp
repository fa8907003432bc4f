#include "library/notify_policy.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <ctime>

#include "adapters/json.hpp"

namespace atlas::notify {

namespace {

bool listed(const std::vector<std::string>& names, const std::string& x) {
  return names.empty() || std::find(names.begin(), names.end(), x) != names.end();
}

/// "<ms>-<n>" as a pair; "" and "0" are (0, 0).
std::pair<uint64_t, uint64_t> id_parts(const std::string& id) {
  uint64_t ms = 0, n = 0;
  auto dash = id.find('-');
  auto head = id.substr(0, dash);
  std::from_chars(head.data(), head.data() + head.size(), ms);
  if (dash != std::string::npos)
    std::from_chars(id.data() + dash + 1, id.data() + id.size(), n);
  return {ms, n};
}

/// "Completed" for "completed".
std::string title(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z')
    s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

/// As the original printed datetime.fromtimestamp(t): "2020-05-01 12:00:00.123456".
std::string local_time(double t) {
  auto secs = static_cast<time_t>(std::floor(t));
  auto micros = static_cast<long>(std::lround((t - std::floor(t)) * 1e6));
  if (micros >= 1000000) {
    ++secs;
    micros -= 1000000;
  }
  std::tm tm{};
  localtime_r(&secs, &tm);
  char buf[64];
  auto n = std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  std::string out(buf, n);
  if (micros > 0) {
    char frac[32];
    std::snprintf(frac, sizeof frac, ".%06ld", micros);
    out += frac;
  }
  return out;
}

} // namespace

std::optional<job_event> parse_job_event(const std::string& id, const std::string& json_text) {
  std::string err;
  auto v = json::parse(json_text, err);
  if (!v || !v->is_object() || v->get_string("kind").value_or("") != "job")
    return std::nullopt;
  job_event ev;
  ev.id = id;
  ev.job_id = v->get_string("job_id").value_or("");
  ev.state = v->get_string("state").value_or("");
  if (ev.job_id.empty() || ev.state.empty())
    return std::nullopt;
  ev.from = v->get_string("from").value_or("");
  ev.user = v->get_string("user").value_or("");
  ev.project = v->get_string("project").value_or("");
  ev.node = v->get_string("node").value_or("");
  ev.reason = v->get_string("reason").value_or("");
  if (auto rc = v->find("return_code"); rc != nullptr && rc->is_number())
    ev.return_code = rc->integer;
  if (auto t = v->find("time"); t != nullptr && t->is_number())
    ev.time = t->number;
  return ev;
}

std::string event_state_name(std::string_view entry) {
  if (entry == "stopped")
    return "cancelled";
  for (auto s : {"queued", "pending", "running", "completed", "failed", "cancelled", "lost"})
    if (entry == s)
      return s;
  return {};
}

bool wanted(const notify_sink_settings& sink, const job_event& ev) {
  bool state_ok = false;
  if (sink.events.empty())
    state_ok = std::any_of(std::begin(default_events), std::end(default_events),
                           [&](const char* s) { return ev.state == s; });
  else
    state_ok = std::any_of(sink.events.begin(), sink.events.end(),
                           [&](const std::string& e) { return event_state_name(e) == ev.state; });
  return state_ok && listed(sink.projects, ev.project) && listed(sink.users, ev.user);
}

std::string webhook_body(const job_event& ev) {
  json::writer w;
  w.begin_object().kv("event_id", ev.id).kv("job_id", ev.job_id).kv("state", ev.state)
    .kv("from", ev.from).kv("user", ev.user).kv("project", ev.project).kv("node", ev.node)
    .kv("reason", ev.reason).key("return_code");
  if (ev.return_code)
    w.value(*ev.return_code);
  else
    w.null();
  w.kv("time", ev.time).end_object();
  return w.take();
}

std::string slack_text(const job_event& ev) {
  return "Job " + title(ev.state) + "\nJob Id: " + ev.job_id + "\nTimestamp: " + local_time(ev.time)
         + "\nProject Name: " + ev.project;
}

std::string slack_body(const job_event& ev, const std::string& channel) {
  json::writer w;
  w.begin_object().kv("channel", channel).kv("text", slack_text(ev)).end_object();
  return w.take();
}

bool worth_retrying(long http_status, bool transport_error) {
  if (transport_error || http_status == 0)
    return true;
  if (http_status == 408 || http_status == 429)
    return true;
  return http_status >= 500;
}

std::chrono::milliseconds retry_delay(int next_try, std::chrono::milliseconds base,
                                      std::chrono::milliseconds cap) {
  auto d = base;
  for (int k = 2; k < next_try && d < cap; ++k)
    d *= 2;
  return std::min(d, cap);
}

bool id_before(const std::string& a, const std::string& b) {
  return id_parts(a) < id_parts(b);
}

} // namespace atlas::notify
