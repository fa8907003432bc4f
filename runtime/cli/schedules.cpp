// The `foundations schedule` commands (create is submit() with --cron, in
// commands.cpp): list, pause, resume, update and delete scheduled jobs
// through the scheduler's /scheduled_jobs routes.

#include "runtime/cli/commands.hpp"

#include <cctype>
#include <cstdio>
#include <ctime>
#include <iomanip>
#include <ostream>
#include <string>

#include "adapters/json.hpp"

namespace atlas::cli {

namespace {

std::string utc_time(const json::value& v) {
  if (!v.is_number())
    return "-";
  std::time_t t = static_cast<std::time_t>(v.number);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

/// Sends `method` with `body` to /scheduled_jobs/<id>, then prints `done`.
int change(context& ctx, const args& a, const char* method, const std::string& body,
           const std::string& done) {
  int code = 0;
  auto where = job_target_of(ctx, a, code);
  if (!where)
    return code;
  auto url = where->scheduler.scheduler_url + "/scheduled_jobs/" + where->id;
  auto r = http_client::request(method, url, body, body.empty() ? "" : "application/json",
                                options(ctx));
  if (r.status == 404)
    return ctx.err << "error: scheduled job '" << where->id << "' not found\n", 1;
  if (!r.ok())
    return fail(ctx, r, where->id);
  ctx.out << done << " scheduled job '" << where->id << "'" << std::endl;
  return 0;
}

} // namespace

int schedule_create(context& ctx, const args& a) {
  if (a.flag("cron").empty())
    return ctx.err << "error: --cron is required (e.g. --cron \"0 3 * * *\")\n", 2;
  return submit(ctx, a);
}

int schedule_list(context& ctx, const args& a) {
  auto sc = scheduler_for(ctx, a.positional.at(0));
  if (!sc)
    return 1;
  std::string url = sc->scheduler_url + "/scheduled_jobs";
  if (a.has("project")) {
    std::string q;
    for (unsigned char c : a.flag("project")) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.')
        q += static_cast<char>(c);
      else {
        char hex[4];
        std::snprintf(hex, sizeof hex, "%%%02X", c);
        q += hex;
      }
    }
    url += "?project=" + q;
  }
  auto r = http_client::get(url, options(ctx));
  if (!r.ok())
    return fail(ctx, r);
  auto all = json_body(ctx, r);
  if (!all || !all->is_object())
    return 1;
  ctx.out << std::left << std::setw(38) << "SCHEDULED JOB" << std::setw(8) << "STATUS" << std::setw(22)
          << "SCHEDULE (UTC)" << std::setw(21) << "NEXT RUN (UTC)" << std::setw(6) << "RUNS"
          << "PROJECT\n";
  for (auto& [id, e] : all->object) {
    auto* sched = e.find("schedule");
    auto* cron = sched ? sched->find("cron") : nullptr;
    auto* next = e.find("next_run_time");
    auto* props = e.find("properties");
    auto* meta = props ? props->find("metadata") : nullptr;
    ctx.out << std::setw(38) << id << std::setw(8) << e.get_string("status").value_or("?")
            << std::setw(22) << (cron && cron->is_string() ? cron->string : "-") << std::setw(21)
            << (next && next->is_array() && !next->array.empty() ? utc_time(next->array[0]) : "-")
            << std::setw(6) << e.get_int("runs").value_or(0)
            << (meta ? meta->get_string("project_name").value_or("") : "") << "\n";
  }
  ctx.out << std::flush;
  return 0;
}

int schedule_pause(context& ctx, const args& a) {
  return change(ctx, a, "PUT", R"({"status":"paused"})", "Paused");
}

int schedule_resume(context& ctx, const args& a) {
  return change(ctx, a, "PUT", R"({"status":"active"})", "Resumed");
}

int schedule_update(context& ctx, const args& a) {
  if (a.flag("cron").empty())
    return ctx.err << "error: --cron is required\n", 2;
  json::writer w;
  w.begin_object().kv("schedule", a.flag("cron")).end_object();
  return change(ctx, a, "PATCH", w.str(), "Rescheduled");
}

int schedule_delete(context& ctx, const args& a) {
  return change(ctx, a, "DELETE", "", "Deleted");
}

} // namespace atlas::cli
