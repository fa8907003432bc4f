// The `foundations` commands that manage jobs already on the scheduler:
// list, stop, delete job and clear-queue.

#include "runtime/cli/commands.hpp"

#include "runtime/cli/format.hpp"
#include "runtime/cli/sweep_plan.hpp"
#include "library/http_answers.hpp"
#include "library/job_codec.hpp"

#include <algorithm>
#include <ctime>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace atlas::cli {
namespace {

using json::value;

std::string local_time(double epoch) {
  std::time_t t = static_cast<std::time_t>(epoch);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

} // namespace

namespace {

/// DELETE <scheduler>/<listing>/<id>, then one line saying what was done.
int delete_route(context& ctx, const args& a, const char* listing, const char* done) {
  int code = 0;
  auto where = job_target_of(ctx, a, code);
  if (!where)
    return code;
  auto r = http_client::del(where->scheduler.scheduler_url + "/" + listing + "/" + where->id,
                            options(ctx));
  if (!r.ok())
    return fail(ctx, r, where->id);
  ctx.out << done << " job '" << where->id << "'" << std::endl;
  return 0;
}

} // namespace

namespace {

/// `stop <env> --sweep S`: stops (or cancels, when queued) every trial of
/// sweep S that has not ended; one that ends meanwhile is not counted.
int stop_sweep(context& ctx, const args& a) {
  auto sweep = a.flag("sweep");
  if (a.positional.size() != 1)
    return ctx.err << "error: stop --sweep takes <env> and no job id\n", 2;
  if (!valid_job_id(sweep))
    return ctx.err << "error: '" << sweep << "' is not a sweep id (expected letters, digits, '-' or '_')\n", 2;
  auto sc = scheduler_for(ctx, a.positional.at(0));
  if (!sc)
    return 1;
  // Only the jobs not ended: a sweep's trials to stop are among them.
  auto r = http_client::get(sc->scheduler_url + "/api/v1/jobs?unfinished=true", options(ctx));
  if (!r.ok())
    return fail(ctx, r);
  std::string error;
  auto ids = active_trials(r.body, sweep, error);
  if (!ids)
    return ctx.err << "error: " << error << "\n", 1;
  size_t stopped = 0, failed = 0;
  for (const auto& id : *ids) {
    auto d = http_client::del(sc->scheduler_url + "/running_jobs/" + id, options(ctx));
    if (d.ok())
      ++stopped;
    else if (d.status != 404 && d.status != 409) { // 404/409: it ended meanwhile
      ++failed;
      fail(ctx, d, id);
    }
  }
  ctx.out << "Stopped " << stopped << " job" << (stopped == 1 ? "" : "s") << " of sweep '"
          << sweep << "'" << std::endl;
  return failed == 0 ? 0 : 1;
}

} // namespace

int stop(context& ctx, const args& a) {
  if (a.has("sweep"))
    return stop_sweep(ctx, a);
  if (a.positional.size() != 2)
    return ctx.err << "error: stop needs <env> and a job id (or --sweep <sweep id>)\n", 2;
  return delete_route(ctx, a, "running_jobs", "Stopped");
}

int delete_job(context& ctx, const args& a) {
  return delete_route(ctx, a, "completed_jobs", "Deleted");
}

int clear_queue(context& ctx, const args& a) {
  auto sc = scheduler_for(ctx, a.positional.at(0));
  if (!sc)
    return 1;
  auto r = http_client::del(sc->scheduler_url + "/api/v1/queued_jobs", options(ctx));
  if (!r.ok())
    return fail(ctx, r);
  auto v = json_body(ctx, r);
  if (!v)
    return 1;
  int64_t n = v->get_int("removed").value_or(0);
  ctx.out << "Removed " << n << " queued job" << (n == 1 ? "" : "s") << std::endl;
  return 0;
}

int list(context& ctx, const args& a) {
  auto sc = scheduler_for(ctx, a.positional.at(0));
  if (!sc)
    return 1;
  // One page, newest first: a cluster's whole history is never sent at once.
  uint64_t limit = 100;
  if (a.has("limit")) {
    auto n = parse_index(a.flag("limit"));
    if (!n || *n == 0 || *n > 1000)
      return ctx.err << "error: --limit takes a number of jobs from 1 to 1000\n", 2;
    limit = *n;
  }
  auto r = http_client::get(sc->scheduler_url + "/api/v1/jobs?limit=" + std::to_string(limit),
                            options(ctx));
  if (!r.ok())
    return fail(ctx, r);
  auto v = json_body(ctx, r);
  if (!v)
    return 1;
  const value* jobs = v->find("jobs");
  if (!jobs || !jobs->is_array())
    return ctx.err << "error: the scheduler's job list has no \"jobs\" array\n", 1;
  auto number = [](const value& j, const char* k) {
    const value* x = j.find(k);
    return x && x->is_number() ? std::optional<double>{x->number} : std::nullopt;
  };
  auto text = [](const value& j, const char* k) {
    if (auto s = j.get_string(k))
      return *s;
    const value* meta = j.find("metadata");
    return meta ? meta->get_string(k).value_or("") : std::string{};
  };
  std::vector<const value*> rows;
  for (const auto& j : jobs->array)
    if (j.is_object())
      rows.push_back(&j);
  std::stable_sort(rows.begin(), rows.end(), [&](const value* x, const value* y) {
    return number(*x, "queued_time").value_or(-1) > number(*y, "queued_time").value_or(-1);
  });
  if (rows.empty())
    return ctx.out << "No jobs" << std::endl, 0;
  std::vector<std::vector<std::string>> table{{"JOB ID", "PROJECT", "USER", "STATUS", "SUBMITTED", "DURATION"}};
  const double now = static_cast<double>(std::time(nullptr));
  for (const value* j : rows) {
    std::string status = text(*j, "status"), state = text(*j, "state");
    if (!state.empty() && state != status)
      status += " (" + state + ")";
    auto queued = number(*j, "queued_time"), start = number(*j, "start_time"), end = number(*j, "end_time");
    table.push_back({text(*j, "job_id"), text(*j, "project_name"), text(*j, "username"), status,
                     queued ? local_time(*queued) : "-",
                     start ? format_duration(static_cast<long long>(end.value_or(now) - *start)) : "-"});
  }
  std::vector<size_t> width(table[0].size(), 0);
  for (const auto& row : table)
    for (size_t i = 0; i < row.size(); ++i)
      width[i] = std::max(width[i], row[i].size());
  for (const auto& row : table) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i)
      line += i + 1 < row.size() ? row[i] + std::string(width[i] - row[i].size() + 2, ' ') : row[i];
    ctx.out << line << "\n";
  }
  if (auto total = v->get_int("total"); total && *total > static_cast<int64_t>(rows.size()))
    ctx.out << "(the newest " << rows.size() << " of " << *total << " jobs; --limit N shows up to 1000)\n";
  ctx.out << std::flush;
  return 0;
}

} // namespace atlas::cli
