#include "library/tracking/views.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <ctime>
#include <set>

#include "library/http_answers.hpp"
#include "library/job_codec.hpp"
#include "library/tracking/listing_query.hpp"

namespace atlas::dashboard {

namespace {

double duration_of(const job_record& r, double now) {
  if (r.start_time <= 0)
    return 0;
  double end = r.end_time > 0 ? r.end_time : now;
  return std::max(0.0, end - r.start_time);
}

/// The original's duration text: "0d0h1m5s".
std::string duration_text(double s) {
  auto t = static_cast<int64_t>(s);
  return std::to_string(t / 86400) + "d" + std::to_string(t / 3600 % 24) + "h"
         + std::to_string(t / 60 % 60) + "m" + std::to_string(t % 60) + "s";
}

/// The original's extract_type: "bool", "number", "string", "array <type of
/// the first element>", else "unknown".
std::string type_of(const json::value& v) {
  switch (v.type) {
    case json::value::kind::boolean: return "bool";
    case json::value::kind::integer:
    case json::value::kind::number: return "number";
    case json::value::kind::string: return "string";
    case json::value::kind::array:
      return v.array.empty() ? "array" : "array " + type_of(v.array.front());
    default: return "unknown";
  }
}

const json::value* member(const json::value* v, std::string_view key) {
  return v != nullptr ? v->find(key) : nullptr;
}

/// A metric's listing value, as the original's: the scalar when it was logged
/// once, else the list of its values (the last max_listed_metric_values); a
/// scalar string is cut to 100 characters as the original did.
json::value metric_value(const json::value* track, const std::string& name,
                         const json::value& latest_entry) {
  auto all = member(member(track, "values"), name);
  auto values = all ? all->find("values") : nullptr;
  if (all && all->get_int("count").value_or(0) > 1 && values && values->is_array()
      && !values->array.empty())
    return *values;
  auto latest = latest_entry.find("value");
  if (!latest)
    return json::value{};
  json::value v = *latest;
  if (v.is_string()) {
    size_t chars = 0, at = 0; // UTF-8: count code points, not bytes
    for (; at < v.string.size(); ++at)
      if ((static_cast<unsigned char>(v.string[at]) & 0xC0) != 0x80 && chars++ == 100)
        break;
    v.string.resize(at);
  }
  return v;
}

/// Writes the listing's fields of one job (without the closing brace).
void write_job(json::writer& w, const job_record& r, const json::value* track, double now) {
  w.begin_object();
  w.kv("job_id", r.job_id).kv("user", r.username).kv("project", r.project_name);
  w.kv("status", api_status(r.state)).kv("state", to_string(r.state));
  w.key("creation_time"); // seconds since the epoch, as the original's
  if (r.queued_time > 0)
    w.value(r.queued_time);
  else
    w.null();
  w.key("start_time");
  naive_utc_time_value(w, r.start_time);
  w.key("completed_time");
  naive_utc_time_value(w, r.end_time);
  auto d = duration_of(r, now);
  w.key("duration"); // null before it started, as the original
  if (r.start_time > 0)
    w.value(duration_text(d));
  else
    w.null();
  w.kv("duration_s", d);
  w.kv("creation_ts", r.queued_time).kv("start_ts", r.start_time).kv("completed_ts", r.end_time);
  if (!r.sweep_id.empty()) // the listing links a trial to its sweep's view
    w.kv("sweep_id", r.sweep_id);
  w.key("return_code");
  if (r.has_return_code)
    w.value(r.return_code);
  else
    w.null();
  w.key("job_parameters").begin_array();
  if (auto p = member(track, "params"); p && p->is_object())
    for (auto& [k, v] : p->object)
      w.begin_object().kv("name", k).key("value").raw(v.dump()).kv("type", type_of(v)).end_object();
  w.end_array();
  w.key("output_metrics").begin_array();
  if (auto m = member(track, "metrics"); m && m->is_object())
    for (auto& [k, v] : m->object) {
      auto value = metric_value(track, k, v);
      auto latest = v.find("value");
      auto all = member(member(track, "values"), k);
      // Ours: the step and value of the latest, and how often it was logged.
      w.begin_object().kv("name", k).key("value").raw(value.dump()).kv("type", type_of(value))
        .kv("step", v.get_int("step").value_or(0)).key("latest")
        .raw(latest ? latest->dump() : "null")
        .kv("count", all ? all->get_int("count").value_or(1) : int64_t{1}).end_object();
    }
  w.end_array();
  w.key("tags").begin_object();
  if (auto t = member(track, "tags"); t && t->is_object())
    for (auto& [k, v] : t->object)
      w.kv(k, v.is_string() ? v.string : v.dump());
  w.end_object();
  w.key("artifacts").begin_array();
  if (auto a = member(track, "artifacts"); a && a->is_object())
    for (auto& [k, v] : a->object) {
      auto path = v.get_string("path").value_or("");
      auto slash = path.rfind('/');
      // The original's fields (filename: the file's name, archive_key: the
      // key it was saved under), ours (path, size, key), and a uri that
      // downloads it from this API (the original's pointed at its archive server).
      w.begin_object().kv("filename", slash == std::string::npos ? path : path.substr(slash + 1))
        .kv("archive_key", k).kv("artifact_type", artifact_type(path))
        .kv("uri", "/api/v2beta/projects/" + r.project_name + "/job_listing/" + r.job_id
                     + "/artifacts/" + k)
        .kv("key", k).kv("path", path).kv("size", v.get_int("size").value_or(0))
        .end_object();
    }
  w.end_array();
}

} // namespace

void time_value(json::writer& w, double t) {
  if (t <= 0) {
    w.null();
    return;
  }
  std::time_t secs = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  w.value(buf);
}

void naive_utc_time_value(json::writer& w, double t) {
  if (t <= 0) {
    w.null();
    return;
  }
  std::time_t secs = static_cast<std::time_t>(t);
  auto micros = static_cast<long>(std::llround((t - static_cast<double>(secs)) * 1e6));
  if (micros >= 1000000) { // rounded up to the next second
    ++secs;
    micros = 0;
  }
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[40];
  auto n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  if (micros > 0)
    std::snprintf(buf + n, sizeof(buf) - n, ".%06ld", micros);
  w.value(buf);
}

std::string notes_json(const json::value& notes) {
  json::writer w;
  w.begin_array();
  for (auto& n : notes.array) {
    auto date = n.find("date");
    // Stored as seconds (a number, or its text as the store writes it).
    std::optional<double> secs_f;
    if (date && date->is_number())
      secs_f = date->number;
    else if (date && date->is_string() && !date->string.empty()) {
      char* end = nullptr;
      double d = std::strtod(date->string.c_str(), &end);
      if (end && *end == '\0')
        secs_f = d;
    }
    w.begin_object().key("date");
    if (secs_f) { // Python's str(datetime): microseconds when not 0
      auto micros = static_cast<int64_t>(std::llround(*secs_f * 1e6));
      std::time_t secs = static_cast<std::time_t>(micros / 1000000);
      std::tm tm{};
      gmtime_r(&secs, &tm);
      char buf[40];
      auto len = std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
      if (micros % 1000000 != 0)
        std::snprintf(buf + len, sizeof(buf) - len, ".%06lld",
                      static_cast<long long>(micros % 1000000));
      w.value(buf);
    } else {
      w.raw(date ? date->dump() : "null");
    }
    w.kv("message", n.get_string("message").value_or(""))
      .kv("author", n.get_string("author").value_or("")).key("time");
    if (secs_f)
      w.value(*secs_f);
    else
      w.null();
    w.end_object();
  }
  w.end_array();
  return w.take();
}

std::string artifact_type(const std::string& path) {
  auto dot = path.rfind('.');
  if (dot == std::string::npos || path.find('/', dot) != std::string::npos)
    return "unknown";
  auto ext = path.substr(dot + 1);
  for (auto& c : ext)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const std::set<std::string> images{"png", "jpg", "jpeg", "gif", "svg", "webp"};
  static const std::set<std::string> audio{"wav", "mp3"};
  return images.count(ext) ? "image" : audio.count(ext) ? "audio" : "unknown";
}

std::string projects_json(const std::vector<job_record>& recs) {
  std::map<std::string, project_view> by_name;
  for (auto& r : recs) {
    auto& p = by_name[r.project_name];
    p.name = r.project_name;
    if (p.created_at == 0 || (r.queued_time > 0 && r.queued_time < p.created_at)) {
      p.created_at = r.queued_time;
      p.owner = r.username;
    }
    p.last_activity = std::max({p.last_activity, r.queued_time, r.start_time, r.end_time});
    ++p.jobs;
    if (!is_terminal(r.state))
      ++p.active_jobs;
  }
  std::vector<project_view> views;
  for (auto& [name, p] : by_name)
    views.push_back(std::move(p));
  return projects_json(std::move(views));
}

std::string projects_json(std::vector<project_view> projects) {
  std::sort(projects.begin(), projects.end(), [](auto& a, auto& b) { return a.name < b.name; });
  std::stable_sort(projects.begin(), projects.end(),
                   [](auto& a, auto& b) { return a.last_activity > b.last_activity; });
  json::writer w;
  w.begin_array();
  for (auto& p : projects) {
    w.begin_object().kv("name", p.name).kv("owner", p.owner).key("created_at");
    time_value(w, p.created_at);
    w.key("last_activity");
    time_value(w, p.last_activity);
    w.kv("jobs", p.jobs).kv("active_jobs", p.active_jobs).end_object();
  }
  w.end_array();
  return w.take();
}

std::string job_listing_json(const std::string& project, const std::vector<job_record>& recs,
                             const json::value& summary,
                             const std::map<std::string, std::string>& query, double now,
                             std::string& error, listing_page* page) {
  auto q = parse_listing_query(query, error);
  if (!q)
    return {};
  std::set<std::string> names; // the project's parameter and metric names
  for (auto& r : recs)
    if (auto track = summary.find(r.job_id))
      for (auto part : {"params", "metrics"})
        if (auto m = member(track, part); m && m->is_object())
          for (auto& [k, v] : m->object)
            names.insert(k);
  bool ordered = page && page->indexed; // rows come in the index's order, columns checked
  if (auto bad = ordered ? std::string{} : unknown_column(*q, names); !bad.empty()) {
    error = "unknown column '" + bad + "' (job_id, user, project, status, state, creation_time, "
            "start_time, completed_time, duration, param:<name>, metric:<name> or a parameter "
            "or metric name of the project)";
    return {};
  }
  struct row {
    const job_record* rec;
    const json::value* track;
  };
  std::vector<row> rows;
  for (auto& r : recs) {
    const json::value* track = summary.find(r.job_id);
    if (passes(*q, r, track, now))
      rows.push_back({&r, track});
  }
  if (!ordered)
    std::stable_sort(rows.begin(), rows.end(), [&](const row& a, const row& b) {
      return sorts_before(*q, *a.rec, a.track, *b.rec, b.track, now);
    });
  if (page && !page->indexed) { // one page of the filtered, sorted rows
    page->total = rows.size();
    auto from = std::min<uint64_t>(page->offset, rows.size());
    auto to = std::min<uint64_t>(rows.size(), from + page->limit);
    rows = std::vector<row>(rows.begin() + static_cast<ptrdiff_t>(from),
                            rows.begin() + static_cast<ptrdiff_t>(to));
    page->next = to < page->total ? "@" + std::to_string(to) : "";
  }
  auto limit = q->limit;
  if (rows.size() > limit)
    rows.resize(limit);
  // Column names across the project's jobs, first seen first.
  std::vector<std::pair<std::string, std::string>> metric_names, param_names;
  std::set<std::string> seen_m, seen_p;
  for (auto& r : rows) {
    if (auto m = member(r.track, "metrics"); m && m->is_object())
      for (auto& [k, v] : m->object)
        if (seen_m.insert(k).second)
          metric_names.emplace_back(k, type_of(metric_value(r.track, k, v)));
    if (auto p = member(r.track, "params"); p && p->is_object())
      for (auto& [k, v] : p->object)
        if (seen_p.insert(k).second)
          param_names.emplace_back(k, type_of(v));
  }
  json::writer w;
  w.begin_object().kv("name", project).key("jobs").begin_array();
  for (auto& r : rows) {
    write_job(w, *r.rec, r.track, now);
    w.end_object();
  }
  w.end_array().key("output_metric_names").begin_array();
  for (auto& [n, t] : metric_names)
    w.begin_object().kv("name", n).kv("type", t).end_object();
  w.end_array().key("parameters").begin_array();
  for (auto& [n, t] : param_names)
    w.begin_object().kv("name", n).kv("type", t).end_object();
  w.end_array();
  if (page) {
    w.kv("total", page->total).key("next_cursor");
    if (page->next.empty())
      w.null();
    else
      w.value(page->next);
    w.kv("version", page->version);
    if (!page->indexed)
      w.kv("scanned_jobs", page->scanned).kv("project_jobs", page->project_jobs);
  }
  w.end_object();
  return w.take();
}

std::string job_detail_json(const job_record& rec, const json::value& detail, double now) {
  json::writer w;
  write_job(w, rec, &detail, now);
  w.kv("node", rec.node).kv("slot", rec.slot).kv("reason", rec.reason);
  w.key("series");
  if (auto s = detail.find("series"))
    w.raw(s->dump());
  else
    w.raw("{}");
  w.end_object();
  return w.take();
}

std::string overview_json(const std::vector<job_record>& recs, const json::value& summary,
                          const std::vector<std::string>& only) {
  std::vector<const job_record*> sorted;
  for (auto& r : recs)
    sorted.push_back(&r);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](auto* a, auto* b) { return a->queued_time < b->queued_time; });
  std::vector<std::string> names;
  std::map<std::string, std::vector<std::pair<std::string, std::string>>> values;
  for (auto* r : sorted) {
    auto m = member(summary.find(r->job_id), "metrics");
    if (!m || !m->is_object())
      continue;
    for (auto& [k, v] : m->object) {
      if (!values.count(k))
        names.push_back(k);
      auto value = v.find("value");
      values[k].emplace_back(r->job_id, value ? value->dump() : "null");
    }
  }
  json::writer w;
  w.begin_object().key("all_metric_names").begin_array();
  for (auto& n : names)
    w.value(n);
  w.end_array().key("metric_query").begin_array();
  for (auto& n : only.empty() ? names : only) {
    w.begin_object().kv("metric_name", n).key("values").begin_array();
    for (auto& [id, v] : values[n])
      w.begin_array().value(id).raw(v).end_array();
    w.end_array().end_object();
  }
  w.end_array().end_object();
  return w.take();
}

} // namespace atlas::dashboard
