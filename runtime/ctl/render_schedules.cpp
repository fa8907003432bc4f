#include "runtime/ctl/render_schedules.hpp"

#include <algorithm>

#include "adapters/json.hpp"

namespace atlas::ctl {

namespace {

void by_id(std::vector<scheduled_job>& list) {
  std::sort(list.begin(), list.end(),
            [](const scheduled_job& a, const scheduled_job& b) { return a.id < b.id; });
}

std::string status_of(const scheduled_job& s) {
  if (s.cron.empty())
    return "no schedule";
  return s.paused ? "paused" : "active";
}

} // namespace

std::string schedules_text(std::vector<scheduled_job> list, const render_options& r) {
  if (list.empty())
    return "no scheduled jobs\n";
  by_id(list);
  std::vector<std::vector<cell>> rows;
  auto now = static_cast<int64_t>(r.now);
  for (auto& s : list) {
    auto next = next_due(s, now);
    auto status = status_of(s);
    std::string next_text = next == 0 ? "-"
                                      : format_local_time(static_cast<double>(next)) + " ("
                                          + format_age(r.now, static_cast<double>(next)) + ")";
    rows.push_back({{s.id, ""},
                    {s.project_name.empty() ? "-" : s.project_name, ""},
                    {s.owner.empty() ? "-" : s.owner, ""},
                    {s.cron.empty() ? "-" : s.cron, ""},
                    {status, status == "active" ? "32" : "33"},
                    {next_text, ""},
                    {std::to_string(s.runs), ""},
                    {s.last_job.empty() ? "-" : s.last_job, ""}});
  }
  return render_table({"ID", "PROJECT", "OWNER", "CRON (UTC)", "STATUS", "NEXT RUN", "RUNS",
                       "LAST RUN"},
                      rows, r.color);
}

std::string schedules_json(std::vector<scheduled_job> list, const render_options& r,
                           uint64_t unreadable) {
  by_id(list);
  json::writer w;
  w.begin_object().key("schedules").begin_array();
  for (auto& s : list) {
    auto next = next_due(s, static_cast<int64_t>(r.now));
    w.begin_object().kv("id", s.id).kv("project", s.project_name).kv("owner", s.owner);
    if (s.cron.empty())
      w.key("cron").null();
    else
      w.kv("cron", s.cron);
    w.kv("status", status_of(s));
    if (next == 0)
      w.key("next_run").null();
    else
      w.kv("next_run", next);
    w.kv("runs", s.runs).kv("last_job", s.last_job).kv("created", s.created).end_object();
  }
  w.end_array().kv("unreadable", unreadable).end_object();
  return w.take();
}

} // namespace atlas::ctl
