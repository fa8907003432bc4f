#include "library/tracking/listing_query.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <set>

#include "library/http_answers.hpp"
#include "library/job_codec.hpp"

namespace atlas::dashboard {

namespace {

const json::value* member(const json::value* v, std::string_view key) {
  return v != nullptr ? v->find(key) : nullptr;
}

column_value of_json(const json::value* v) {
  column_value c;
  if (v == nullptr || v->is_null())
    return c;
  if (v->is_number()) {
    c.rank = 0;
    c.n = v->number;
  } else {
    c.rank = 1;
    c.s = v->is_string() ? v->string : v->dump();
  }
  return c;
}

column_value number(double x) {
  column_value c;
  if (x > 0) {
    c.rank = 0;
    c.n = x;
  }
  return c;
}

column_value text(std::string s) {
  column_value c;
  c.rank = 1;
  c.s = std::move(s);
  return c;
}

std::string upper(std::string s) {
  for (auto& ch : s)
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    auto end = s.find(sep, start);
    out.push_back(s.substr(start, end - start));
    if (end == std::string::npos)
      return out;
    start = end + 1;
  }
}

/// Whether `option` (query text) equals the value, read as the value's type.
bool equals(const column_value& v, const std::string& option) {
  if (v.rank == 1)
    return v.s == option;
  if (v.rank == 0) {
    char* end = nullptr;
    double x = std::strtod(option.c_str(), &end);
    return end != option.c_str() && *end == '\0' && x == v.n;
  }
  return false;
}

bool less(const column_value& a, const column_value& b, bool desc) {
  if (a.rank != b.rank)
    return a.rank < b.rank; // jobs without a value stay last either way
  if (a.rank == 0)
    return desc ? a.n > b.n : a.n < b.n;
  return desc ? a.s > b.s : a.s < b.s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

} // namespace

column_value column_of(const job_record& r, const json::value* track, const std::string& column,
                       double now) {
  if (column == "job_id") return text(r.job_id);
  if (column == "user") return text(r.username);
  if (column == "project") return text(r.project_name);
  if (column == "status") return text(std::string(api_status(r.state)));
  if (column == "state") return text(std::string(to_string(r.state)));
  if (column == "creation_time") return number(r.queued_time);
  if (column == "start_time") return number(r.start_time);
  if (column == "completed_time") return number(r.end_time);
  if (column == "duration") {
    if (r.start_time <= 0)
      return {};
    double end = r.end_time > 0 ? r.end_time : now;
    column_value c;
    c.rank = 0;
    c.n = std::max(0.0, end - r.start_time);
    return c;
  }
  auto metric = [&](const std::string& name) {
    return member(member(member(track, "metrics"), name), "value");
  };
  auto param = [&](const std::string& name) { return member(member(track, "params"), name); };
  if (column.rfind("metric:", 0) == 0)
    return of_json(metric(column.substr(7)));
  if (column.rfind("param:", 0) == 0)
    return of_json(param(column.substr(6)));
  if (auto p = param(column))
    return of_json(p);
  return of_json(metric(column));
}

std::optional<listing_query> parse_listing_query(const std::map<std::string, std::string>& query,
                                                 std::string& error) {
  listing_query q;
  std::map<std::string, std::pair<std::string, std::string>> ranges; // column -> (starts, ends)
  for (auto& [key, value] : query) {
    if (key == "sort") {
      for (auto spec : split(value, ',')) {
        spec.erase(0, spec.find_first_not_of(' '));
        bool desc = !spec.empty() && spec[0] == '-';
        auto column = desc ? spec.substr(1) : spec;
        if (column.empty()) {
          error = "Bad sort: expected sort=<column>[,-<column>...]";
          return std::nullopt;
        }
        q.sorts.emplace_back(column, desc);
      }
    } else if (key == "limit") {
      auto n = parse_index(value);
      if (!n) {
        error = "limit must be a non-negative integer";
        return std::nullopt;
      }
      q.limit = *n;
    } else if (key == "tag") {
      q.tag = value;
    } else if (ends_with(key, "_contains")) {
      q.filters.push_back({key.substr(0, key.size() - 9), listing_filter::kind::contains, {value}, false});
    } else if (ends_with(key, "_starts")) {
      ranges[key.substr(0, key.size() - 7)].first = value;
    } else if (ends_with(key, "_ends")) {
      ranges[key.substr(0, key.size() - 5)].second = value;
    } else if (ends_with(key, "_isnull")) {
      auto v = upper(value);
      if (v != "TRUE" && v != "FALSE") {
        error = key + " must be true or false";
        return std::nullopt;
      }
      q.filters.push_back({key.substr(0, key.size() - 7), listing_filter::kind::is_null, {}, v == "TRUE"});
    } else {
      q.filters.push_back({key, listing_filter::kind::one_of, split(value, ','), false});
    }
  }
  for (auto& [column, range] : ranges) {
    if (range.first.empty() || range.second.empty()) {
      error = column + "_starts and " + column + "_ends go together";
      return std::nullopt;
    }
    q.filters.push_back({column, listing_filter::kind::range, {range.first, range.second}, false});
  }
  if (q.sorts.empty())
    q.sorts.emplace_back("creation_time", true);
  return q;
}

bool is_job_column(const std::string& column) {
  static const std::set<std::string> job_columns{"job_id", "user", "project", "status", "state",
                                                 "creation_time", "start_time", "completed_time",
                                                 "duration"};
  return job_columns.count(column) > 0;
}

std::string unknown_column(const listing_query& q, const std::set<std::string>& names) {
  auto known = [&](const std::string& c) {
    return is_job_column(c) || c.rfind("param:", 0) == 0 || c.rfind("metric:", 0) == 0
           || names.count(c);
  };
  for (auto& [column, desc] : q.sorts)
    if (!known(column))
      return column;
  for (auto& f : q.filters)
    if (!known(f.column))
      return f.column;
  return {};
}

bool passes(const listing_query& q, const job_record& r, const json::value* track, double now) {
  for (auto& f : q.filters) {
    auto v = column_of(r, track, f.column, now);
    switch (f.how) {
      case listing_filter::kind::one_of:
        // status also matches our state names (queued, running, cancelled, ...).
        if (std::none_of(f.options.begin(), f.options.end(), [&](auto& o) {
              return equals(v, o) || (f.column == "status" && to_string(r.state) == o);
            }))
          return false;
        break;
      case listing_filter::kind::contains: {
        std::string shown = v.s;
        if (v.rank == 0) {
          json::writer w;
          w.value(v.n);
          shown = w.take();
        }
        if (v.rank == 2 || upper(shown).find(upper(f.options[0])) == std::string::npos)
          return false;
        break;
      }
      case listing_filter::kind::range: {
        if (v.rank == 2)
          return false;
        if (v.rank == 1 && !(f.options[0] <= v.s && v.s <= f.options[1]))
          return false;
        if (v.rank == 0) {
          char *e1 = nullptr, *e2 = nullptr;
          double a = std::strtod(f.options[0].c_str(), &e1), b = std::strtod(f.options[1].c_str(), &e2);
          if (*e1 != '\0' || *e2 != '\0' || !(a <= v.n && v.n <= b))
            return false;
        }
        break;
      }
      case listing_filter::kind::is_null:
        if ((v.rank == 2) != f.null_wanted)
          return false;
        break;
    }
  }
  if (!q.tag.empty()) {
    auto colon = q.tag.find(':');
    auto v = member(member(track, "tags"), q.tag.substr(0, colon));
    if (v == nullptr)
      return false;
    if (colon != std::string::npos && (!v->is_string() || v->string != q.tag.substr(colon + 1)))
      return false;
  }
  return true;
}

bool sorts_before(const listing_query& q, const job_record& a, const json::value* ta,
                  const job_record& b, const json::value* tb, double now) {
  for (auto& [column, desc] : q.sorts) {
    auto x = column_of(a, ta, column, now);
    auto y = column_of(b, tb, column, now);
    if (less(x, y, desc))
      return true;
    if (less(y, x, desc))
      return false;
  }
  return false;
}

} // namespace atlas::dashboard
