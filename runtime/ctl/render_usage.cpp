#include "runtime/ctl/render_usage.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iterator>

#include "adapters/json.hpp"
#include "runtime/ctl/render_detail.hpp"

namespace atlas::ctl {

using detail::printf_string;

namespace {

bool all_digits(const std::string& s, size_t from, size_t n) {
  for (size_t i = from; i < from + n; ++i)
    if (s[i] < '0' || s[i] > '9')
      return false;
  return true;
}

// "YYYY-MM-DD" to the epoch time of its first second (UTC), checked by
// formatting it back, so "2024-02-30" is refused.
result<double> day_start(const std::string& text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-' || !all_digits(text, 0, 4)
      || !all_digits(text, 5, 2) || !all_digits(text, 8, 2))
    return status::fail("expected YYYY-MM-DD or epoch seconds, got '" + text + "'");
  std::tm tm{};
  tm.tm_year = std::atoi(text.substr(0, 4).c_str()) - 1900;
  tm.tm_mon = std::atoi(text.substr(5, 2).c_str()) - 1;
  tm.tm_mday = std::atoi(text.substr(8, 2).c_str());
  auto t = ::timegm(&tm);
  if (usage::day_of(static_cast<double>(t)) != text)
    return status::fail("no such day: '" + text + "'");
  return static_cast<double>(t);
}

std::string name_of(const usage::totals& t, const std::string& by) {
  const auto& name = by == "project" ? t.project : by == "day" ? t.day : t.user;
  return name.empty() ? "(none)" : name;
}

std::string models_of(const usage::totals& t) {
  std::string out;
  for (auto& [model, seconds] : t.gpu_seconds_by_model)
    out += (out.empty() ? "" : ", ") + model + " " + format_amount(seconds);
  return out.empty() ? "-" : out;
}

std::string field(const json::value& v, std::string_view key) {
  return v.get_string(key).value_or("");
}

} // namespace

result<double> parse_when(const std::string& text, bool end_of_day) {
  if (text.find('-') != std::string::npos) {
    auto start = day_start(text);
    if (!start.ok() || !end_of_day)
      return start;
    return start.value() + 86399; // its last second
  }
  char* end = nullptr;
  double x = std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(x) || x < 0)
    return status::fail("expected YYYY-MM-DD or epoch seconds, got '" + text + "'");
  return x;
}

std::string format_bytes(uint64_t bytes) {
  if (bytes == 0)
    return "-";
  if (bytes < 1024)
    return std::to_string(bytes) + " B";
  static const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
  double x = static_cast<double>(bytes) / 1024;
  size_t u = 0;
  while (x >= 1024 && u + 1 < std::size(units)) {
    x /= 1024;
    ++u;
  }
  return printf_string("%.1f ", x) + units[u];
}

std::string format_amount(double s) {
  if (!std::isfinite(s) || s <= 0)
    return "-";
  if (s < 60)
    return printf_string("%.1fs", s);
  if (s < 3600)
    return printf_string("%.1fm", s / 60);
  return printf_string("%.1fh", s / 3600);
}

std::string usage_text(const std::vector<usage::totals>& rows, const std::string& by,
                       double since, double until, const render_options& o) {
  std::string out = "usage " + usage::day_of(since) + " .. " + usage::day_of(until)
                    + " (UTC days), by " + by + "\n";
  if (rows.empty())
    return out + "no jobs ended in these days\n";
  std::string name_header = by == "project" ? "PROJECT" : by == "day" ? "DAY" : "USER";
  usage::totals sum;
  std::vector<std::vector<cell>> table;
  auto row = [&](const std::string& name, const usage::totals& t) {
    table.push_back({name, printf_string("%.0f", t.jobs), format_amount(t.slot_seconds),
                     format_amount(t.gpu_seconds), format_amount(t.cpu_seconds),
                     format_bytes(t.peak_memory_bytes), models_of(t)});
  };
  for (auto& t : rows) {
    row(name_of(t, by), t);
    sum.jobs += t.jobs;
    sum.slot_seconds += t.slot_seconds;
    sum.gpu_seconds += t.gpu_seconds;
    sum.cpu_seconds += t.cpu_seconds;
    sum.peak_memory_bytes = std::max(sum.peak_memory_bytes, t.peak_memory_bytes);
    for (auto& [model, s] : t.gpu_seconds_by_model)
      sum.gpu_seconds_by_model[model] += s;
  }
  if (rows.size() > 1)
    row("total", sum);
  return out + render_table({name_header, "JOBS", "SLOT TIME", "GPU TIME", "CPU TIME",
                             "PEAK MEMORY", "GPU TIME BY MODEL"},
                            table, o.color);
}

std::string event_line(const std::string& event_json, const render_options& o) {
  std::string error;
  auto v = json::parse(event_json, error);
  if (!v || !v->is_object())
    return event_json;
  auto time = v->find("time");
  std::string line = format_local_time(time && time->is_number() ? time->number : 0);
  auto kind = field(*v, "kind");
  auto paint = [&](const std::string& text, const std::string& color) {
    return o.color && !color.empty() ? "\x1b[" + color + "m" + text + "\x1b[0m" : text;
  };
  auto add = [&](const std::string& text) {
    if (!text.empty())
      line += "  " + text;
  };
  if (kind == "job") {
    add("job");
    add(field(*v, "job_id"));
    auto from = field(*v, "from");
    auto state = field(*v, "state");
    add((from.empty() ? "" : from + "→") + paint(state, state_color(state)));
    add(field(*v, "slot"));
    add(field(*v, "reason"));
    if (auto rc = v->find("return_code"); rc && rc->is_number())
      add("return code " + std::to_string(rc->integer));
  } else if (kind == "node") {
    add("node");
    add(field(*v, "node"));
    add(field(*v, "event"));
    add(field(*v, "detail"));
  } else {
    add(kind.empty() ? "?" : kind);
    add(v->dump());
  }
  return line;
}

} // namespace atlas::ctl
