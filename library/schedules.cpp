#include "library/schedules.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "adapters/json.hpp"
#include "library/cron.hpp"
#include "library/job_codec.hpp"

namespace atlas {

namespace {

/// The fields a POST /scheduled_jobs body may have: POST /queued_jobs's and
/// `schedule`.
constexpr const char* known_fields[] = {"job_id", "spec", "metadata", "gpu_spec", "priority",
                                        "max_retries", "time_limit", "after", "params",
                                        "sweep_id", "schedule"};

/// A cron field's value as text: strings as given, numbers written out.
std::optional<std::string> field_text(const json::value& v) {
  if (v.is_string())
    return v.string;
  if (v.type == json::value::kind::integer)
    return std::to_string(v.integer);
  if (v.is_null())
    return std::string{};
  return std::nullopt;
}

/// The schedule member as an expression; nullopt (no schedule) for absent,
/// null, "" or {}.
result<std::optional<std::string>> schedule_of(const json::value* v) {
  if (v == nullptr || v->is_null() || (v->is_string() && v->string.empty())
      || (v->is_object() && v->object.empty()))
    return std::optional<std::string>{};
  std::string expr;
  if (v->is_string()) {
    expr = v->string;
  } else if (v->is_object()) {
    std::map<std::string, std::string> fields;
    for (auto& [k, x] : v->object) {
      auto text = field_text(x);
      if (!text)
        return status::fail("Bad schedule: field '" + k + "' must be a string or a whole number");
      fields[k] = *text;
    }
    std::string error;
    auto e = cron::from_fields(fields, error);
    if (!e)
      return status::fail("Bad schedule: " + error);
    expr = *e;
  } else {
    return status::fail("Bad schedule: expected a cron expression (\"*/5 * * * *\") or an "
                        "object of cron fields ({\"minute\": \"*/5\"})");
  }
  if (auto st = check_cron(expr); !st)
    return st;
  return std::optional<std::string>{expr};
}

void write_times(json::writer& w, const scheduled_job& s, int64_t now) {
  w.key("next_run_time").begin_array();
  std::optional<cron::schedule> parsed;
  std::string error;
  if (!s.paused && !s.cron.empty())
    parsed = cron::parse(s.cron, error);
  int64_t t = std::max(now, s.after);
  for (int i = 0; i < 3; ++i) {
    auto next = parsed ? cron::next_after(*parsed, t) : std::nullopt;
    if (next) {
      w.value(*next);
      t = *next;
    } else {
      w.null();
      parsed.reset();
    }
  }
  w.end_array();
}

} // namespace

std::string to_json(const scheduled_job& s) {
  json::writer w;
  w.begin_object().kv("id", s.id).kv("owner", s.owner).key("groups").begin_array();
  for (auto& g : s.groups)
    w.value(g);
  w.end_array().key("submission").raw(s.submission).kv("project_name", s.project_name)
    .kv("cron", s.cron).kv("paused", s.paused).kv("after", s.after).kv("created", s.created)
    .kv("runs", s.runs).kv("last_job", s.last_job).end_object();
  return w.take();
}

result<scheduled_job> scheduled_job_from_json(std::string_view text) {
  std::string error;
  auto v = json::parse(text, error);
  if (!v || !v->is_object())
    return status::fail("not a scheduled job: " + (error.empty() ? "not an object" : error));
  scheduled_job s;
  s.id = v->get_string("id").value_or("");
  if (!valid_job_id(s.id))
    return status::fail("not a scheduled job: bad id");
  s.owner = v->get_string("owner").value_or("");
  if (auto g = v->find("groups"); g != nullptr && g->is_array())
    for (auto& x : g->array)
      if (x.is_string())
        s.groups.push_back(x.string);
  auto sub = v->find("submission");
  if (sub == nullptr || !sub->is_object())
    return status::fail("scheduled job '" + s.id + "' has no submission");
  s.submission = sub->dump();
  s.project_name = v->get_string("project_name").value_or("");
  s.cron = v->get_string("cron").value_or("");
  if (auto p = v->find("paused"); p != nullptr && p->type == json::value::kind::boolean)
    s.paused = p->boolean;
  s.after = v->get_int("after").value_or(0);
  if (auto c = v->find("created"); c != nullptr && c->is_number())
    s.created = c->number;
  s.runs = static_cast<uint64_t>(std::max<int64_t>(0, v->get_int("runs").value_or(0)));
  s.last_job = v->get_string("last_job").value_or("");
  return s;
}

status check_cron(const std::string& expr) {
  if (expr.empty())
    return status::success();
  std::string error;
  auto parsed = cron::parse(expr, error);
  if (!parsed)
    return status::fail("Bad schedule: " + error);
  if (!cron::next_after(*parsed, 0) && !cron::next_after(*parsed, 1'700'000'000))
    return status::fail("Bad schedule: '" + expr + "' never fires");
  return status::success();
}

result<scheduled_job> scheduled_job_from_request(std::string_view body, std::string owner,
                                                 std::vector<std::string> groups, int64_t now) {
  std::string error;
  auto v = json::parse(body, error);
  if (!v)
    return status::fail(error);
  if (!v->is_object())
    return status::fail("Job must contain json payload");
  for (auto& [k, x] : v->object)
    if (std::find_if(std::begin(known_fields), std::end(known_fields),
                     [&](const char* f) { return k == f; }) == std::end(known_fields))
      return status::fail("Unknown field '" + k + "' in a scheduled job");
  auto id = v->get_string("job_id");
  if (!id || !valid_job_id(*id) || id->size() > max_schedule_id)
    return status::fail("Job must contain valid 'job_id', 'spec': 'job_id' must be a UUID or 1-"
                        + std::to_string(max_schedule_id) + " of [A-Za-z0-9_-]");
  auto cron_expr = schedule_of(v->find("schedule"));
  if (!cron_expr)
    return status::fail(cron_expr.error());
  json::value tmpl = *v;
  std::erase_if(tmpl.object, [](auto& kv) { return kv.first == "schedule"; });
  auto text = tmpl.dump();
  auto rec = job_from_submission(text); // a run must be a valid submission
  if (!rec)
    return status::fail(rec.error());
  scheduled_job s;
  s.id = *id;
  s.owner = std::move(owner);
  s.groups = std::move(groups);
  s.submission = std::move(text);
  s.project_name = rec->project_name;
  s.cron = cron_expr.value().value_or("");
  s.paused = s.cron.empty(); // as the original: no schedule, created paused
  s.after = now;
  s.created = static_cast<double>(now);
  return s;
}

result<std::string> schedule_from_body(std::string_view body) {
  std::string error;
  auto v = json::parse(body, error);
  if (!v || !v->is_object())
    return status::fail("Bad job schedule: expected {\"schedule\": ...}");
  for (auto& [k, x] : v->object)
    if (k != "schedule")
      return status::fail("Unknown field '" + k + "' (only 'schedule' can be changed)");
  auto expr = schedule_of(v->find("schedule"));
  if (!expr)
    return status::fail(expr.error());
  if (!expr.value())
    return status::fail("Bad job schedule: 'schedule' is missing or empty");
  return *expr.value();
}

std::string run_id(const std::string& schedule_id, int64_t due) {
  return schedule_id + "_" + cron::stamp(due);
}

result<job_record> run_of(const scheduled_job& s, int64_t due) {
  auto rec = job_from_submission(s.submission);
  if (!rec)
    return rec;
  rec->job_id = run_id(s.id, due);
  if (!s.owner.empty())
    rec->username = s.owner;
  rec->groups = s.groups;
  rec->schedule_id = s.id;
  return rec;
}

int64_t next_due(const scheduled_job& s, int64_t now) {
  if (s.paused || s.cron.empty())
    return 0;
  std::string error;
  auto parsed = cron::parse(s.cron, error);
  if (!parsed)
    return 0;
  return cron::next_after(*parsed, std::max(now, s.after)).value_or(0);
}

std::string answer_entry(const scheduled_job& s, int64_t now) {
  json::writer w;
  w.begin_object();
  write_times(w, s, now);
  w.key("schedule").begin_object();
  std::string error;
  auto parsed = s.cron.empty() ? std::nullopt : cron::parse(s.cron, error);
  const char* names[6] = {"second", "minute", "hour", "day", "month", "day_of_week"};
  for (size_t i = 0; i < 6; ++i)
    if (parsed)
      w.kv(names[i], parsed->fields[i]);
    else
      w.key(names[i]).null();
  w.kv("week", "*").kv("year", "*").key("start_date").null().key("end_date").null();
  if (s.cron.empty())
    w.key("cron").null();
  else
    w.kv("cron", s.cron);
  w.end_object();
  w.kv("status", s.paused ? "paused" : "active").key("properties").raw(s.submission)
    .kv("owner", s.owner).kv("runs", s.runs).kv("last_job", s.last_job);
  w.end_object();
  return w.take();
}

} // namespace atlas
