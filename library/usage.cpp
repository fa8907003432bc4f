#include "library/usage.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <tuple>

#include "adapters/json.hpp"
#include "messages/redis_keys.hpp"

namespace atlas::usage {

namespace {

constexpr int64_t seconds_per_day = 86400;
// Epoch times are clamped to [1970, 9999] so a wild `since` cannot overflow
// the day arithmetic.
constexpr double last_epoch = 253402300799.0; // 9999-12-31 23:59:59

int64_t day_number(double epoch_seconds) {
  if (!std::isfinite(epoch_seconds) || epoch_seconds < 0)
    epoch_seconds = 0;
  epoch_seconds = std::min(epoch_seconds, last_epoch);
  return static_cast<int64_t>(std::floor(epoch_seconds / seconds_per_day));
}

// Days since 1970-01-01 to "YYYY-MM-DD" (H. Hinnant's civil_from_days):
// no gmtime, so no locale or thread concerns.
std::string day_text(int64_t z) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  const int64_t y = static_cast<int64_t>(yoe) + era * 400 + (m <= 2 ? 1 : 0);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
  return buf;
}

// The shortest text that reads back as `x` (HINCRBYFLOAT takes it).
std::string number_text(double x) {
  char buf[40];
  auto r = std::to_chars(buf, buf + sizeof buf, x);
  return r.ec == std::errc{} ? std::string(buf, r.ptr) : "0";
}

// Names go into tab-separated fields: a tab inside one would split it.
std::string field_safe(std::string s) {
  std::replace(s.begin(), s.end(), '\t', ' ');
  return s;
}

std::optional<double> parse_number(const std::string& s) {
  if (s.empty())
    return std::nullopt;
  char* end = nullptr;
  double x = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || !std::isfinite(x))
    return std::nullopt;
  return x;
}

// "<user>\t<project>\t<measure>" (measure may be empty for the peak zset's
// "<user>\t<project>").
struct field_parts {
  std::string user, project, measure;
};

std::optional<field_parts> split_field(const std::string& f, bool with_measure) {
  auto t1 = f.find('\t');
  if (t1 == std::string::npos)
    return std::nullopt;
  auto t2 = f.find('\t', t1 + 1);
  if (with_measure != (t2 != std::string::npos))
    return std::nullopt;
  field_parts p;
  p.user = f.substr(0, t1);
  if (!with_measure) {
    p.project = f.substr(t1 + 1);
    return p;
  }
  p.project = f.substr(t1 + 1, t2 - t1 - 1);
  p.measure = f.substr(t2 + 1);
  return p;
}

void add_measure(totals& t, const std::string& measure, double x) {
  static const std::string by_model = "gpu_seconds:";
  if (measure == "jobs")
    t.jobs += x;
  else if (measure == "slot_seconds")
    t.slot_seconds += x;
  else if (measure == "gpu_seconds")
    t.gpu_seconds += x;
  else if (measure == "cpu_seconds")
    t.cpu_seconds += x;
  else if (measure.size() > by_model.size() && measure.rfind(by_model, 0) == 0)
    t.gpu_seconds_by_model[measure.substr(by_model.size())] += x;
  // anything else: a measure from a newer version, not shown
}

void add_into(totals& into, const totals& x) {
  into.jobs += x.jobs;
  into.slot_seconds += x.slot_seconds;
  into.gpu_seconds += x.gpu_seconds;
  for (auto& [model, s] : x.gpu_seconds_by_model)
    into.gpu_seconds_by_model[model] += s;
  into.cpu_seconds += x.cpu_seconds;
  into.peak_memory_bytes = std::max(into.peak_memory_bytes, x.peak_memory_bytes);
}

double number_of(const json::value& row, std::string_view key) {
  auto* v = row.find(key);
  return v != nullptr && v->is_number() ? v->number : 0;
}

} // namespace

std::string day_of(double epoch_seconds) {
  return day_text(day_number(epoch_seconds));
}

totals of_job(const job_record& rec) {
  totals t;
  t.user = rec.username;
  t.project = rec.project_name;
  bool started = rec.start_time > 0 && rec.end_time >= rec.start_time
                 && std::isfinite(rec.start_time) && std::isfinite(rec.end_time);
  if (!started)
    return t;
  t.day = day_of(rec.end_time);
  t.jobs = 1;
  t.slot_seconds = rec.end_time - rec.start_time;
  t.gpu_seconds = t.slot_seconds * static_cast<double>(rec.gpus.size());
  if (!rec.gpus.empty())
    t.gpu_seconds_by_model[rec.gpu_model.empty() ? "unknown" : rec.gpu_model] = t.gpu_seconds;
  t.cpu_seconds = std::isfinite(rec.cpu_seconds) && rec.cpu_seconds > 0 ? rec.cpu_seconds : 0;
  t.peak_memory_bytes = rec.peak_memory_bytes;
  return t;
}

std::vector<cmd> record(const job_record& rec) {
  auto t = of_job(rec);
  if (t.jobs == 0)
    return {};
  const auto who = field_safe(t.user) + "\t" + field_safe(t.project);
  const auto hash = keys::usage_day(t.day);
  std::vector<cmd> out;
  auto add = [&](const std::string& measure, double x) {
    out.push_back({"HINCRBYFLOAT", hash, who + "\t" + measure, number_text(x)});
  };
  add("jobs", 1);
  add("slot_seconds", t.slot_seconds);
  if (t.gpu_seconds > 0) {
    add("gpu_seconds", t.gpu_seconds);
    for (auto& [model, s] : t.gpu_seconds_by_model)
      add("gpu_seconds:" + field_safe(model), s);
  }
  if (t.cpu_seconds > 0)
    add("cpu_seconds", t.cpu_seconds);
  if (t.peak_memory_bytes > 0)
    out.push_back({"ZADD", keys::usage_peak(t.day), "GT", std::to_string(t.peak_memory_bytes),
                   who});
  out.push_back({"SADD", keys::usage_days, t.day});
  return out;
}

std::vector<std::string> days_between(double since, double until, size_t max_days) {
  if (!std::isfinite(since) || !std::isfinite(until) || until < since || max_days == 0)
    return {};
  int64_t first = day_number(since);
  int64_t last = day_number(until);
  if (last - first + 1 > static_cast<int64_t>(max_days))
    first = last - static_cast<int64_t>(max_days) + 1; // the newest are kept
  std::vector<std::string> out;
  out.reserve(static_cast<size_t>(last - first + 1));
  for (int64_t d = first; d <= last; ++d)
    out.push_back(day_text(d));
  return out;
}

std::vector<cmd> reads(const std::vector<std::string>& days) {
  std::vector<cmd> out;
  out.reserve(days.size() * 2);
  for (auto& day : days) {
    out.push_back({"HGETALL", keys::usage_day(day)});
    out.push_back({"ZRANGE", keys::usage_peak(day), "0", "-1", "WITHSCORES"});
  }
  return out;
}

std::vector<totals> rows_from(const std::vector<std::string>& days,
                              std::span<const redis_reply> replies) {
  std::map<std::tuple<std::string, std::string, std::string>, totals> rows;
  auto row = [&](const std::string& day, const field_parts& p) -> totals& {
    auto& t = rows[{day, p.user, p.project}];
    t.day = day;
    t.user = p.user;
    t.project = p.project;
    return t;
  };
  // Pairs of a flat array reply (HGETALL, ZRANGE WITHSCORES in RESP2);
  // anything else (nil, an error reply) counts as empty.
  auto pairs = [](const redis_reply& r, auto&& each) {
    if (r.type != redis_reply::kind::array)
      return;
    for (size_t i = 0; i + 1 < r.elements.size(); i += 2)
      each(r.elements[i].str, r.elements[i + 1].str);
  };
  for (size_t i = 0; i < days.size() && 2 * i + 1 < replies.size(); ++i) {
    const auto& day = days[i];
    pairs(replies[2 * i], [&](const std::string& field, const std::string& value) {
      auto p = split_field(field, true);
      auto x = parse_number(value);
      if (p && x)
        add_measure(row(day, *p), p->measure, *x);
    });
    pairs(replies[2 * i + 1], [&](const std::string& member, const std::string& score) {
      auto p = split_field(member, false);
      auto x = parse_number(score);
      if (p && x && *x > 0) {
        auto& t = row(day, *p);
        t.peak_memory_bytes = std::max(t.peak_memory_bytes, static_cast<uint64_t>(*x));
      }
    });
  }
  std::vector<totals> out;
  out.reserve(rows.size());
  for (auto& [key, t] : rows)
    out.push_back(std::move(t));
  return out;
}

result<std::vector<totals>> aggregate(const std::vector<totals>& rows, const std::string& by) {
  std::string totals::*name = nullptr;
  if (by == "user")
    name = &totals::user;
  else if (by == "project")
    name = &totals::project;
  else if (by == "day")
    name = &totals::day;
  else
    return status::fail("expected user, project or day to sum by, got '" + by + "'");
  std::map<std::string, totals> sums;
  for (auto& r : rows) {
    auto& t = sums[r.*name];
    t.*name = r.*name;
    add_into(t, r);
  }
  std::vector<totals> out;
  out.reserve(sums.size());
  for (auto& [key, t] : sums)
    out.push_back(std::move(t));
  if (by != "day") // days stay in calendar order (the map's)
    std::stable_sort(out.begin(), out.end(), [](const totals& a, const totals& b) {
      if (a.gpu_seconds != b.gpu_seconds)
        return a.gpu_seconds > b.gpu_seconds;
      return a.slot_seconds > b.slot_seconds;
    });
  return out;
}

std::string to_json(const std::vector<totals>& rows, const std::string& by, double since,
                    double until) {
  json::writer w;
  w.begin_object().kv("by", by).kv("since", since).kv("until", until).key("rows").begin_array();
  for (auto& r : rows) {
    w.begin_object();
    if (by.empty() || by == "day")
      w.kv("day", r.day);
    if (by.empty() || by == "user")
      w.kv("user", r.user);
    if (by.empty() || by == "project")
      w.kv("project", r.project);
    w.kv("jobs", r.jobs).kv("slot_seconds", r.slot_seconds).kv("gpu_seconds", r.gpu_seconds);
    w.key("gpu_seconds_by_model").begin_object();
    for (auto& [model, s] : r.gpu_seconds_by_model)
      w.kv(model, s);
    w.end_object();
    w.kv("cpu_seconds", r.cpu_seconds).kv("peak_memory_bytes", r.peak_memory_bytes);
    w.end_object();
  }
  w.end_array().end_object();
  return w.take();
}

result<std::vector<totals>> from_json(const std::string& body) {
  std::string error;
  auto doc = json::parse(body, error);
  if (!doc)
    return status::fail("usage: not JSON: " + error);
  auto* rows = doc->find("rows");
  if (!doc->is_object() || rows == nullptr || !rows->is_array())
    return status::fail("usage: expected an object with \"rows\"");
  std::vector<totals> out;
  out.reserve(rows->array.size());
  for (auto& row : rows->array) {
    if (!row.is_object())
      return status::fail("usage: a row is not an object");
    totals t;
    t.day = row.get_string("day").value_or("");
    t.user = row.get_string("user").value_or("");
    t.project = row.get_string("project").value_or("");
    t.jobs = number_of(row, "jobs");
    t.slot_seconds = number_of(row, "slot_seconds");
    t.gpu_seconds = number_of(row, "gpu_seconds");
    t.cpu_seconds = number_of(row, "cpu_seconds");
    double peak = number_of(row, "peak_memory_bytes");
    t.peak_memory_bytes = peak > 0 ? static_cast<uint64_t>(peak) : 0;
    if (auto* models = row.find("gpu_seconds_by_model"); models && models->is_object())
      for (auto& [model, s] : models->object)
        if (s.is_number())
          t.gpu_seconds_by_model[model] = s.number;
    out.push_back(std::move(t));
  }
  return out;
}

std::optional<std::string> read_rows(redis_writer& redis, double since, double until) {
  auto days = days_between(since, until);
  auto replies = redis.reads(reads(days));
  if (!replies)
    return std::nullopt;
  return to_json(rows_from(days, *replies), "", since, until);
}

} // namespace atlas::usage
